"""softvc-encode: encode an audio dataset into speech units (like bshall/hubert encode.py).

Walks ``in-dir`` for ``*{extension}``, resamples to 16 kHz, mirrors relative paths into ``out-dir`` as .npy:
soft (N, 256) float32, discrete (N,) int64, N = floor(samples at 16 kHz / 320).
"""

import argparse
import functools
from pathlib import Path

from espnet_softvc.units.extractor import cached_extractor
from espnet_softvc.utils.errors import cli
from espnet_softvc.utils.io import check_outputs, find_files, mirror, save_npy
from espnet_softvc.utils.workers import run_jobs


def _process(path, in_dir, out_dir, encoder):
    save_npy(mirror(path, in_dir, out_dir), cached_extractor(*encoder).from_file(path))


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Encode an audio dataset into soft or discrete speech units.")
    parser.add_argument("model", choices=["soft", "discrete"], help="HuBERT-Soft or HuBERT-Discrete units.")
    parser.add_argument("in_dir", metavar="in-dir", type=Path, help="path to the dataset directory.")
    parser.add_argument("out_dir", metavar="out-dir", type=Path, help="path to the output directory.")
    parser.add_argument("--extension", default=".wav", help="extension of the audio files (default .wav).")
    parser.add_argument("--checkpoint", help="HuBERT-Soft/-Discrete checkpoint or a softvc-train-units encoder.")
    parser.add_argument("--kmeans", help="k-means file (discrete): kmeans100-50f36a95.pt or an offline MFCC one.")
    parser.add_argument("--nj", type=int, default=1, help="number of parallel processes (CPU).")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu).")
    args = parser.parse_args(argv)
    encoder = (args.model, args.checkpoint, args.kmeans, args.device)
    extractor = cached_extractor(*encoder)  # load (and check) the files once, before the workers fork
    paths = find_files(args.in_dir, args.extension)
    outs = [mirror(path, args.in_dir, args.out_dir) for path in paths]
    check_outputs(outs, [*paths, *filter(None, (args.checkpoint, args.kmeans))], args.out_dir)
    nj = args.nj if extractor.device.type == "cpu" else 1
    run_jobs(
        functools.partial(_process, in_dir=args.in_dir, out_dir=args.out_dir, encoder=encoder),
        paths,
        nj,
        "units",
        args.out_dir,
    )
    print(f"wrote {len(paths)} {args.model} unit files to {args.out_dir}")


if __name__ == "__main__":
    main()
