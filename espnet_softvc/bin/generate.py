"""softvc-generate: mel-spectrograms from speech units (like bshall/acoustic-model generate.py).

Reads (N, 256) float (soft) or (N,) integer (discrete) unit .npy files, writes (128, 2N) mel .npy files,
mirroring relative paths. With ``--vocoder PATH`` (HiFi-GAN .pt or ParallelWaveGAN .pkl) a 16 kHz ``<name>.wav``
is written beside each ``<name>.npy`` mel.
"""

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

from espnet_softvc.softvc import fast
from espnet_softvc.tasks.load import load_acoustic
from espnet_softvc.utils.errors import cli
from espnet_softvc.utils.io import check_outputs, find_files, load_npy, mirror, save_npy, save_wav
from espnet_softvc.utils.shapes import check_units
from espnet_softvc.vocoders import load_vocoder


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate spectrograms from input speech units (discrete or soft).")
    parser.add_argument("model", choices=["soft", "discrete"], help="available models (HuBERT-Soft or HuBERT-Discrete)")
    parser.add_argument("in_dir", metavar="in-dir", type=Path, help="path to the dataset directory.")
    parser.add_argument("out_dir", metavar="out-dir", type=Path, help="path to the output directory.")
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        help="original Soft-VC acoustic-model checkpoint (or an ESPnet model file with config.yaml beside it).",
    )
    parser.add_argument("--vocoder", type=Path, help="also write <name>.wav with this vocoder (HiFi-GAN .pt, PWG .pkl)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=fast.PRECISIONS,
        help="fp32: exact (default); bf16 / int8 (CPU): faster, see README 'Fast generation'",
    )
    args = parser.parse_args(argv)

    paths = find_files(args.in_dir, ".npy")
    outs = [mirror(path, args.in_dir, args.out_dir) for path in paths]
    wavs = [out.with_suffix(".wav") for out in outs] if args.vocoder else []
    check_outputs([*outs, *wavs], [*paths, args.checkpoint, *([args.vocoder] if args.vocoder else [])], args.out_dir)
    acoustic = load_acoustic(args.checkpoint, args.model, args.device)
    vocoder = load_vocoder(args.vocoder, args.device) if args.vocoder else None
    for path, out in zip(tqdm(paths, desc="generate"), outs):
        units = check_units(load_npy(path), args.model, path, batched=False)
        mel = acoustic.generate(units.to(args.device), precision=args.precision)  # (1, 2N, 128)
        save_npy(out, mel[0].T.cpu().numpy())
        if vocoder is not None:
            save_wav(out.with_suffix(".wav"), vocoder(mel[0]).numpy(), vocoder.sample_rate)
    print(f"wrote {len(paths)} mels to {args.out_dir}")


if __name__ == "__main__":
    main()
