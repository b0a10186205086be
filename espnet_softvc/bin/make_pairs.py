"""Seeded noisy/clean log-mel pairs for training the denoiser (``espnet_softvc.postnet.pairs``).

python -m espnet_softvc.bin.make_pairs data/train/wav.scp dump/denoise/train --copies 2 --seed 0 [--noise_dir MUSAN]
    [--front_ends rnnoise deepfilternet3] [--nj 2]
"""

import argparse
from pathlib import Path

import torch

from espnet_softvc.postnet.fusion import FRONT_ENDS
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
    parser.add_argument(
        "--front_ends", nargs="*", choices=FRONT_ENDS, default=[], help="fusion pairs: these denoisers' mels too"
    )
    parser.add_argument("--nj", type=int, default=1, help="worker processes")
    args = parser.parse_args(argv)
    recorded = recorded_noises(args.noise_dir) if args.noise_dir is not None else ()
    with torch.inference_mode():
        wavs = read_wavs(args.source)
        count = make_pairs(wavs, args.out_dir, args.copies, args.seed, recorded, args.front_ends, args.nj)
    print(f"wrote {count} noisy/clean pairs to {args.out_dir}")


if __name__ == "__main__":
    main()
