"""softvc-mels: extract Soft-VC log-mels for an audio dataset (like bshall/acoustic-model mels.py).

Walks ``in-dir`` for ``*.wav``, resamples to 16 kHz, mirrors relative paths, writes float32 (128, T) .npy.
"""

import argparse
import functools
from pathlib import Path

from espnet_softvc.feats.log_mel import wav_to_mel
from espnet_softvc.utils.errors import cli
from espnet_softvc.utils.io import check_outputs, find_files, mirror, save_npy
from espnet_softvc.utils.workers import run_jobs


def _process(path, in_dir, out_dir):
    save_npy(mirror(path, in_dir, out_dir), wav_to_mel(path))


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Extract mel-spectrograms for an audio dataset.")
    parser.add_argument("in_dir", metavar="in-dir", type=Path, help="path to the dataset directory.")
    parser.add_argument("out_dir", metavar="out-dir", type=Path, help="path to the output directory.")
    parser.add_argument("--extension", default=".wav", help="extension of the audio files (default .wav).")
    parser.add_argument("--nj", type=int, default=1, help="number of parallel processes.")
    args = parser.parse_args(argv)
    paths = find_files(args.in_dir, args.extension)
    check_outputs([mirror(path, args.in_dir, args.out_dir) for path in paths], paths, args.out_dir)
    run_jobs(
        functools.partial(_process, in_dir=args.in_dir, out_dir=args.out_dir), paths, args.nj, "mels", args.out_dir
    )
    print(f"wrote {len(paths)} mels to {args.out_dir}")


if __name__ == "__main__":
    main()
