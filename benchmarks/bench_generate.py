"""Speed and deviation of ``AcousticModel.generate`` (fused loop, softvc/fast.py) against the original loop.

    python benchmarks/bench_generate.py [--quick] [--checkpoint hubert-soft-0321fd7e.pt] [--threads 2]

Without --checkpoint a soft model is trained here first (cached in --work_dir): the tiny espeak-ng corpus, its
log-mels, and stand-in soft units = a fixed random projection of the mel averaged over frame pairs (50 Hz), then
--train_steps AdamW steps of the original recipe (batch 4, 1.5 s crops). Random weights are not enough: a trained LSTM
saturates its gates and feeds back its own mel, which is where reduced precision drifts.

Columns: rtf = seconds of compute per second of audio (all rows of the batch); speed-up = time of the ORIGINAL loop
(restated below, one nn.LSTM call per layer per frame) / time of the mode, same batch and length; max/mean diff =
abs mel difference from the exact fused fp32 output (for fp32: from the original loop); peak MB = growth of the
process peak RSS during the call (CPU) or peak CUDA memory. The original loop costs the same per frame at any length,
so beyond --original_seconds it runs (and is compared) on the first --original_seconds only, its time scaled (*).
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from espnet_softvc.data.corpus import build
from espnet_softvc.feats.log_mel import wav_to_mel
from espnet_softvc.softvc.checkpoint import load_original, save_original
from espnet_softvc.softvc.model import AcousticModel

FRAMES_PER_SECOND = 100


def original_generate(model, units, frames):
    """bshall/acoustic-model's generate restated, stopped after `frames`: (B, N, 256) -> (B, frames, 128)."""
    dec = model.decoder
    xs = model.encoder(units)[:, :frames]
    m, h1, h2, h3, out = xs.new_zeros(xs.size(0), 128), None, None, None, []
    for x in torch.unbind(xs, dim=1):
        x1, h1 = dec.lstm1(torch.cat((x, dec.prenet(m)), dim=1).unsqueeze(1), h1)
        x2, h2 = dec.lstm2(x1, h2)
        x = x1 + x2
        x3, h3 = dec.lstm3(x, h3)
        m = dec.proj(x + x3).squeeze(1)
        out.append(m)
    return torch.stack(out, dim=1)


def stand_in_units(mel, projection):
    """(T, 128) log-mel -> (T // 2, 256) soft-unit stand-ins (50 Hz)."""
    n = mel.size(0) // 2
    return mel[: 2 * n].view(n, 2, 128).mean(1) @ projection


def corpus(work_dir, num_utts):
    build(work_dir / "corpus", num_utts)
    mels = [torch.from_numpy(wav_to_mel(p)).T.contiguous() for p in sorted((work_dir / "corpus").rglob("*.wav"))]
    projection = torch.randn(128, 256, generator=torch.Generator().manual_seed(0)) / 128**0.5
    return mels, [stand_in_units(m, projection) for m in mels]


def train(mels, units, steps, batch=4, seconds=1.5):
    """Teacher-forced training with the original optimizer and loss on random ``seconds`` crops."""
    torch.manual_seed(0)
    model = AcousticModel()
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, betas=(0.8, 0.99), eps=1e-8, weight_decay=1e-5)
    n = int(seconds * FRAMES_PER_SECOND // 2)
    pool = [i for i, u in enumerate(units) if u.size(0) >= n]
    for step in range(1, steps + 1):
        rng = np.random.default_rng(step)
        picks = rng.choice(pool, batch)
        starts = [rng.integers(units[i].size(0) - n + 1) for i in picks]
        u = torch.stack([units[i][s : s + n] for i, s in zip(picks, starts)])
        target = torch.stack([mels[i][2 * s : 2 * s + 2 * n] for i, s in zip(picks, starts)])
        inputs = torch.nn.functional.pad(target[:, :-1], (0, 0, 1, 0))
        loss = (model(u, inputs) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == steps:
            print(f"  train step {step}/{steps}: L1 {loss.item():.3f}", flush=True)
    return model.eval(), loss.item()


def peak_rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024


def measure(fn, repeats, device):
    """(min seconds over repeats, output, peak memory growth MB)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS (Linux)
        base = peak_rss_mb()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda" else peak_rss_mb() - base
    return best, out, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s and 10 s, fewer training steps and repeats")
    parser.add_argument("--checkpoint", type=Path, help="a trained soft model, original format (else train one)")
    parser.add_argument("--work_dir", type=Path, default=Path("/tmp/bench_generate"))
    parser.add_argument("--train_steps", type=int, default=None, help="default 200 (--quick 60)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, nargs="+", default=None, help="default 2 10 60 (--quick 2 10)")
    parser.add_argument("--original_seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (--quick 2); the minimum is kept")
    args = parser.parse_args()
    steps = args.train_steps or (60 if args.quick else 200)
    seconds = args.seconds or ([2, 10] if args.quick else [2, 10, 60])
    repeats = args.repeats or (2 if args.quick else 3)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    modes = ["fp32", "bf16"] + (["int8"] if device.type == "cpu" else [])

    mels, units = corpus(args.work_dir, 20 if args.quick else 60)
    if args.checkpoint:
        model, origin = load_original(args.checkpoint, "soft"), str(args.checkpoint)
    else:
        path = args.work_dir / f"trained-{steps}.pt"
        if not path.exists():
            print(f"training a soft model for {steps} steps on {len(mels)} tiny-corpus utterances ...", flush=True)
            model, loss = train(mels, units, steps)
            save_original(model, path, steps, loss)
        model, origin = load_original(path, "soft"), f"{path} (trained here, {steps} steps)"
    model.to(device)
    stream = torch.cat(units).to(device)  # all utterances back to back, cut into the benchmark lengths
    print(
        f"model: {origin}; device {device}, {args.threads} threads, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    columns = [("mode", 9), ("batch", 6), ("audio s", 8), ("rtf", 9), ("speed-up", 10), ("max diff", 10)]
    columns += [("mean diff", 11), ("peak MB", 9)]
    header = "".join(f"{name:<{w}}" if name == "mode" else f"{name:>{w}}" for name, w in columns)
    print(header + "\n" + "-" * len(header), flush=True)
    for batch in args.batches:
        for sec in seconds:
            n = int(sec * FRAMES_PER_SECOND // 2)
            rows = torch.stack([stream[(b * 997) % (len(stream) - n) :][:n] for b in range(batch)])
            audio = batch * sec
            frames = min(2 * n, int(args.original_seconds * FRAMES_PER_SECOND))
            with torch.inference_mode():
                t_orig, ref, peak = measure(lambda r=rows, f=frames: original_generate(model, r, f), 1, device)
            scaled = 2 * n / frames
            t_orig *= scaled
            mark = "*" if scaled > 1 else ""
            print(f"{'original':<9}{batch:>6}{sec:>8g}{t_orig / audio:>8.3f}{mark:1}{1:>10.1f}{'':>21}{peak:>9.0f}")
            exact = None
            for mode in modes:
                model.generate(rows[:, :5], precision=mode)  # fused weights built outside the timing
                t, out, peak = measure(lambda r=rows, m=mode: model.generate(r, precision=m), repeats, device)
                other = ref if mode == "fp32" else exact
                diff = (out[:, : other.size(1)] - other).abs()
                exact = out if mode == "fp32" else exact
                print(
                    f"{mode:<9}{batch:>6}{sec:>8g}{t / audio:>9.4f}{t_orig / t:>10.1f}"
                    f"{diff.max().item():>10.1e}{diff.mean().item():>11.1e}{peak:>9.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
