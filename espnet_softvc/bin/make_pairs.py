"""Seeded noisy/clean log-mel pairs for training the denoiser (``espnet_softvc.postnet.pairs``).

python -m espnet_softvc.bin.make_pairs data/train/wav.scp dump/denoise/train --copies 2 --seed 0 [--noise_dir MUSAN]
"""

import argparse
from pathlib import Path

import torch

from espnet_softvc.postnet.pairs import make_pairs, read_wavs, recorded_noises
from espnet_softvc.utils.errors import cli


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Seeded noisy/clean mel pairs for the denoiser.")
    parser.add_argument("source", type=Path, help="Kaldi wav.scp or a directory of wavs")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--copies", type=int, default=2, help="corruptions per utterance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--noise_dir", type=Path, help="recorded noise, MUSAN layout (its noise/ part) or any folder of wavs"
    )
    args = parser.parse_args(argv)
    recorded = recorded_noises(args.noise_dir) if args.noise_dir is not None else ()
    with torch.inference_mode():
        count = make_pairs(read_wavs(args.source), args.out_dir, args.copies, args.seed, recorded)
    print(f"wrote {count} noisy/clean pairs to {args.out_dir}")


if __name__ == "__main__":
    main()
