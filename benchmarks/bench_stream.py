"""Streaming (chunked) acoustic model (softvc/stream.py) against offline generation, batch 1, in one run.

    python benchmarks/bench_stream.py [--checkpoint hubert-soft-0321fd7e.pt] [--utts 3] [--repeats 3]

Model: --checkpoint (original format), else bench_generate's soft model of the paper's size trained on the flite
ARCTIC corpus and cached in --work_dir (the same cache as bench_generate: trained there or here, a minute or two).
Input: the stand-in soft units (bench_generate) of --utts utterances of median length of that corpus, each streamed as
one utterance (fresh state): pushed --chunks units at a time (20 ms each), the last push final; "whole" is one
final push of the whole utterance, which must equal offline.

Timing: per precision (fp32, bf16, int8) and chunk, the time to stream every utterance, and offline (``generate``:
encoder, then the fused C++ decoder loop) in the same loop, interleaved, best of --repeats, on --threads threads
(default 1: one stream per core; the streamed decoder steps the C++ kernels frame by frame on one thread anyway).
RTF = compute seconds / audio seconds.

Columns: chunk; look-ahead of the acoustic model (encoder convolutions: 5 units); latency = chunk + look-ahead
(algorithmic, units in -> mel out); pipeline = algorithmic latency of the whole ``Speech2Speech`` stream with its
default look-aheads (MFCC or transformer units 82.5 ms, vocoder 40 ms; ``stream_latency_ms``); RTF per precision
streamed, and offline; max / mean abs deviation of the fp32 streamed log-mel from the fp32 offline one over all
frames, and the mean over the frames after the first second (the cumulative instance statistics converge): from a
cold start (the default; "whole" must be ~1e-6), then with a prior (``prior_statistics`` of the other utterances of
the corpus, weighted as 10 s; not timed: the same work).
"""

import argparse
import os
import time
from pathlib import Path

import torch
from bench_generate import FRAMES_PER_SECOND, cached_model, corpus

from espnet_softvc.bin.vc_inference import stream_latency_ms
from espnet_softvc.softvc import fast
from espnet_softvc.softvc.original_format import load_original
from espnet_softvc.softvc.stream import LOOKAHEAD_MS, AcousticStream, prior_statistics

PRECISIONS = ("fp32", "bf16", "int8")


def streamed(model, units, chunk, precision, prior=None):
    """units (1, N, 256) pushed ``chunk`` at a time (None: all at once) -> (1, 2N, 128)."""
    acoustic, n = AcousticStream(model, precision, prior=prior), units.size(1)
    chunk = chunk or n
    return torch.cat([acoustic.push(units[:, i : i + chunk], i + chunk >= n) for i in range(0, n, chunk)], 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained soft model, original format (else train one)")
    parser.add_argument("--work_dir", type=Path, default=Path("/tmp/bench_generate"))
    parser.add_argument("--train_utts", type=int, default=40, help="corpus utterances (training and input)")
    parser.add_argument("--train_steps", type=int, default=80)
    parser.add_argument("--utts", type=int, default=2, help="utterances streamed (those of median length)")
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="units (20 ms) per push")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a stream per core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    mels, units = corpus(args.work_dir, args.train_utts)
    if args.checkpoint:
        model, origin = load_original(args.checkpoint, "soft"), str(args.checkpoint)
    else:
        model, origin = cached_model(args.work_dir, mels, units, args.train_steps)
    model.eval()
    middle = (len(units) - args.utts) // 2
    picked = sorted(range(len(units)), key=lambda i: len(units[i]))[middle : middle + args.utts]
    inputs = [units[i][None] for i in picked]
    with torch.inference_mode():  # the other utterances' statistics, weighted as PRIOR_SECONDS
        prior = prior_statistics(model.encoder, [u for i, u in enumerate(units) if i not in picked])
    seconds = sum(u.size(1) for u in inputs) * 2 / FRAMES_PER_SECOND
    configs = ["offline", *args.chunks, None]  # None: the whole utterance in one push

    calls = {}
    for precision in PRECISIONS:
        calls[("offline", precision)] = lambda p=precision: [model.generate(u, p) for u in inputs]
        for chunk in configs[1:]:
            calls[(chunk, precision)] = lambda c=chunk, p=precision: [streamed(model, u, c, p) for u in inputs]
    print(
        f"model: {origin}; torch {torch.__version__}, {torch.get_num_threads()} threads, C++ extension "
        f"{'built' if fast.EXTENSION else 'NOT built'}; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"input: {len(inputs)} utterances, {seconds:.2f} s of audio, batch 1; best of {args.repeats}", flush=True)
    with torch.inference_mode():
        for fn in calls.values():  # warm-up: fused weights, TorchScript, pages
            fn()
        best, outs = {}, {}
        for _ in range(args.repeats):  # interleaved: a load change hits every configuration alike
            for key, fn in calls.items():
                start = time.perf_counter()
                outs[key] = fn()
                best[key] = min(best.get(key, float("inf")), time.perf_counter() - start)

    rtf = {key: t / seconds for key, t in best.items()}
    offline = outs[("offline", "fp32")]

    def deviation(out, skip=0):
        return torch.cat([(o[0] - r[0])[skip:].abs().flatten() for o, r in zip(out, offline)])

    header = f"{'chunk ms':>9}{'look-ahead':>11}{'latency':>8}{'pipeline':>9}"
    header += "".join(f"{'RTF ' + p:>10}" for p in PRECISIONS)
    header += f"{'max dev':>9}{'mean dev':>9}{'mean 1s+':>9}{'prior max':>10}{'mean':>9}{'mean 1s+':>9}"
    print("\n" + header + "\n" + "-" * len(header))
    for chunk in configs:
        if chunk == "offline" or chunk is None:
            cells = [f"{chunk or 'whole':>9}{'':>11}{'':>8}{'':>9}"]
        else:
            ms = 20 * chunk
            cells = [f"{ms:>9}{LOOKAHEAD_MS:>11}{ms + LOOKAHEAD_MS:>8}{stream_latency_ms(ms):>9.0f}"]
        cells += [f"{rtf[(chunk, p)]:>10.3f}" for p in PRECISIONS]
        cold = outs[(chunk, "fp32")]
        cells += [f"{deviation(cold).max():>9.2e}{deviation(cold).mean():>9.2e}"]
        cells += [f"{deviation(cold, FRAMES_PER_SECOND).mean():>9.2e}"]
        if chunk != "offline":
            with torch.inference_mode():
                warm = [streamed(model, u, chunk, "fp32", prior) for u in inputs]
            cells += [f"{deviation(warm).max():>10.2e}{deviation(warm).mean():>9.2e}"]
            cells += [f"{deviation(warm, FRAMES_PER_SECOND).mean():>9.2e}"]
        print("".join(cells), flush=True)
    offline = torch.cat([o[0] for o in offline])
    print(
        "\nscale: offline log-mel std " + f"{offline.std().item():.2f}; offline bf16 / int8 vs fp32 max / mean: ",
        end="",
    )
    for p in PRECISIONS[1:]:
        d = (torch.cat([o[0] for o in outs[("offline", p)]]) - offline).abs()
        print(f"{p} {d.max().item():.2e} / {d.mean().item():.2e}  ", end="")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
