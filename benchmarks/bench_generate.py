"""Speed of the decoding loop (softvc/fast.py) against this machine's limits and the original loop, in one run.

    python benchmarks/bench_generate.py [--quick] [--checkpoint hubert-soft-0321fd7e.pt] [--seconds 5]

1. Model: --checkpoint (original format), else a soft model trained here first and cached in --work_dir (a minute
   or two): --utts utterances of the built-in flite ARCTIC corpus, their log-mels, stand-in soft units (a fixed random
   projection of the mel averaged over frame pairs, 50 Hz), --train_steps AdamW steps of the original recipe (batch
   4, 0.8 s crops). Random weights are not enough: a trained LSTM saturates its gates and feeds back its own mel, which
   is where reduced precision drifts.
2. Limits, measured here at each thread count: the read bandwidth of a 512 MB buffer (DRAM) and of a buffer as
   large as each mode's per-frame decoder weights read over and over (L3-resident where it fits), best of several
   passes of the C++ extension's streaming read or torch.sum, whichever is faster. A mode's limit is the time to read
   its weights once per frame: fp32 (51 MB at the paper's sizes, more than the 32 MB L3) at the DRAM bandwidth, the
   others at their own buffer's (bf16 / fp16 26 MB, int8 13 MB). The fp32 FMA peak (torch.mm on cache-resident
   blocks) gives the compute bound of the float modes, which batch 16 meets before the memory limit.
3. Timing: per thread count and batch, the original loop (``Decoder.generate``: one nn.LSTM call per layer per frame)
   on the first --original_seconds, and every mode of ``fast.decode`` on --seconds of audio, interleaved, best of
   --repeats. Decoder only (the encoder output is computed once; ``generate`` adds the encoder's time).

Columns: ms/frame = seconds per decoder step (all rows of the batch); limit = the mode's memory limit per step;
x limit = ms/frame / limit; x compute = ms/frame / compute bound (float modes); speed-up = original loop's time per
step / the mode's; max/mean diff = abs mel difference from the original loop on the frames both ran. Modes: fp32,
bf16, fp16, int8 on the default backend (C++ where built), fp32-ts = the TorchScript fallback loop.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from espnet_softvc.data.corpus import build
from espnet_softvc.feats.log_mel import wav_to_mel
from espnet_softvc.softvc import fast
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.softvc.original_format import load_original, save_original

FRAMES_PER_SECOND = 100
DRAM_BYTES = 512 * 2**20


def stand_in_units(mel, projection):
    """(T, 128) log-mel -> (T // 2, 256) soft-unit stand-ins (50 Hz)."""
    n = mel.size(0) // 2
    return mel[: 2 * n].view(n, 2, 128).mean(1) @ projection


def corpus(work_dir, num_utts):
    build(work_dir / "corpus", num_utts=num_utts, others=(), num_test=0, multi=())
    wavs = sorted((work_dir / "corpus" / "wavs").rglob("*.wav"))
    mels = [torch.from_numpy(wav_to_mel(p)).T.contiguous() for p in wavs]
    projection = torch.randn(128, 256, generator=torch.Generator().manual_seed(0)) / 128**0.5
    return mels, [stand_in_units(m, projection) for m in mels]


def train(mels, units, steps, batch=4, seconds=0.8):
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
        if step % 25 == 0 or step == steps:
            print(f"  train step {step}/{steps}: L1 {loss.item():.3f}", flush=True)
    return model.eval(), loss.item()


def cached_model(work_dir, mels, units, steps):
    """(model, origin): the soft model ``train`` gives after ``steps``, cached as ``work_dir/trained-<steps>.pt``."""
    path = work_dir / f"trained-{steps}.pt"
    if not path.exists():
        print(f"training a soft model for {steps} steps on {len(mels)} utterances ...", flush=True)
        trained, loss = train(mels, units, steps)
        save_original(trained, path, steps, loss)
    return load_original(path, "soft"), f"{path} (trained here, {steps} steps)"


def weight_bytes(decoder, precision):
    """Bytes of decoder weights one step reads: prenet layer 2 and the LSTMs (without lstm1's encoder columns,
    projected before the loop) at the precision's width, prenet layer 1 and proj at float32."""
    width = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}[precision]
    hidden, pre = decoder.lstm1.hidden_size, decoder.prenet.net[3].out_features
    small = decoder.prenet.net[0].weight.numel() + decoder.proj.weight.numel()
    main = decoder.prenet.net[3].weight.numel() + 4 * hidden * (pre + hidden) + 2 * 4 * hidden * 2 * hidden
    return width * main + 4 * small, main + small  # bytes, multiply-adds per batch row


def read_seconds(nbytes, threads, repeats):
    """Best seconds to read an nbytes buffer once (extension's streaming read or torch.sum) at ``threads``."""
    buf = torch.ones(nbytes // 4)
    torch.set_num_threads(threads)
    best = float("inf")
    for _ in range(repeats):
        if fast.EXTENSION:
            best = min(best, fast._decode_ext.stream_read(buf.data_ptr(), buf.numel() * 4, 2, threads))
        start = time.perf_counter()
        buf.sum()
        best = min(best, time.perf_counter() - start)
    return best


def fma_peak(threads, repeats=5, n=256, blocks=64):
    """fp32 multiply-adds per second of torch.mm on cache-resident n x n blocks at ``threads``."""
    torch.set_num_threads(threads)
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(blocks):
            torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return blocks * n**3 / best


def limits(decoder, modes, threads, repeats):
    """{"dram": B/s, "peak": MAC/s, mode: (limit seconds per step, bytes, buffer B/s)} at ``threads``."""
    dram = DRAM_BYTES / read_seconds(DRAM_BYTES, threads, max(2, repeats // 2))
    out = {"dram": dram, "peak": fma_peak(threads)}
    for mode in modes:
        nbytes, macs = weight_bytes(decoder, mode)
        bandwidth = dram if mode == "fp32" else nbytes / read_seconds(nbytes, threads, 4 * repeats)
        out[mode] = (nbytes / bandwidth, nbytes, bandwidth, macs)
    return out


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter audio, fewer repeats")
    parser.add_argument("--checkpoint", type=Path, help="a trained soft model, original format (else train one)")
    parser.add_argument("--work_dir", type=Path, default=Path("/tmp/bench_generate"))
    parser.add_argument("--utts", type=int, default=40, help="corpus utterances to train on")
    parser.add_argument("--train_steps", type=int, default=80)
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 and all cores")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=None, help="audio per row (default 5, --quick 2)")
    parser.add_argument("--original_seconds", type=float, default=None, help="default 1 (--quick 0.5)")
    parser.add_argument("--repeats", type=int, default=None, help="default 4 (--quick 2); the minimum is kept")
    parser.add_argument("--wait_load", type=float, default=None, help="first wait (up to 30 min) for this load average")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    original_seconds = min(seconds, args.original_seconds or (0.5 if args.quick else 1.0))
    repeats = args.repeats or (2 if args.quick else 4)
    cores = len(os.sched_getaffinity(0))
    threads = args.threads or sorted({1, cores})
    modes = list(fast.PRECISIONS)

    if args.checkpoint:
        model, origin = load_original(args.checkpoint, "soft"), str(args.checkpoint)
        generator = torch.Generator().manual_seed(0)
        units = [torch.randn(int(seconds * FRAMES_PER_SECOND // 2) * 4, 256, generator=generator)]
    else:
        mels, units = corpus(args.work_dir, args.utts)
        model, origin = cached_model(args.work_dir, mels, units, args.train_steps)
    decoder = model.decoder.eval()
    deadline = time.time() + 1800
    while args.wait_load is not None and os.getloadavg()[0] > args.wait_load and time.time() < deadline:
        time.sleep(10)
    stream = torch.cat(units)  # all utterances back to back, cut into rows
    n = int(seconds * FRAMES_PER_SECOND // 2)
    frames, original_frames = 2 * n, int(original_seconds * FRAMES_PER_SECOND)
    print(
        f"model: {origin}; torch {torch.__version__}, {cores} cores, C++ extension "
        f"{'built' if fast.EXTENSION else 'NOT built (TorchScript fallback)'}; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"per step: {frames} frames per row ({seconds:g} s), the original loop on the first {original_frames}")
    header = f"{'threads':>7}{'batch':>6}  {'mode':<8}{'ms/frame':>9}{'limit':>8}{'x limit':>9}{'x compute':>10}"
    header += f"{'speed-up':>10}{'max diff':>10}{'mean diff':>10}"
    for nthreads in threads:
        lim = limits(decoder, modes, nthreads, repeats)
        print(
            f"\n{nthreads} thread(s): DRAM {lim['dram'] / 1e9:.1f} GB/s, fp32 FMA peak {lim['peak'] / 1e9:.1f} GMAC/s; "
            + ", ".join(f"{m} weights {lim[m][1] / 2**20:.1f} MiB read at {lim[m][2] / 1e9:.1f} GB/s" for m in modes)
        )
        print(header + "\n" + "-" * len(header), flush=True)
        for batch in args.batches:
            torch.set_num_threads(nthreads)
            units_b = torch.stack([stream[(b * 997) % (len(stream) - n) :][:n] for b in range(batch)])
            with torch.inference_mode():
                xs = model.encoder(units_b)
                calls = {"original": lambda xs=xs: decoder.generate(xs[:, :original_frames])}
                calls.update({m: lambda m=m, xs=xs: fast.decode(decoder, xs, m) for m in modes})
                calls["fp32-ts"] = lambda xs=xs: fast.decode(decoder, xs, "fp32", backend="torchscript")
                for fn in calls.values():  # warm-up: fused weights built, threads started, pages touched
                    fn()
                best, outs = {}, {}
                for _ in range(repeats):  # interleaved: a load change hits every mode alike
                    for name, fn in calls.items():
                        sec, outs[name] = timed(fn)
                        best[name] = min(best.get(name, float("inf")), sec)
            per_step = {k: v / (original_frames if k == "original" else frames) for k, v in best.items()}
            ref = outs["original"]
            for name in calls:
                t = per_step[name]
                mode = name.removesuffix("-ts")
                limit = lim[mode][0] if mode in modes else None
                compute = batch * lim[mode][3] / lim["peak"] if mode in ("fp32", "bf16", "fp16") else None
                diff = (outs[name][:, :original_frames] - ref).abs()
                cells = [
                    f"{nthreads:>7}{batch:>6}  {name:<8}{t * 1e3:>9.3f}",
                    f"{limit * 1e3:>8.3f}{t / limit:>9.2f}" if limit else f"{'':>17}",
                    f"{t / compute:>10.2f}" if compute else f"{'':>10}",
                    f"{per_step['original'] / t:>10.1f}",
                    f"{diff.max().item():>10.1e}{diff.mean().item():>10.1e}" if name != "original" else "",
                ]
                print("".join(cells), flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
