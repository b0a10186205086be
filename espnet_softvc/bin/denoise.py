"""softvc-denoise: run the denoising postnet on log-mels from any source.

    softvc-denoise IN_DIR OUT_DIR --model_file M [--train_config C]     # *.npy (128, T), paths mirrored
    python -m espnet_softvc.bin.denoise feats.scp OUT_DIR --model_file M --train_config C
                                                                       # Kaldi (T, 128) -> OUT_DIR/feats.{ark,scp}
The model is an ESPnet model file of ``SoftVCTask`` (a standalone denoiser, or Soft-VC with a ``postnet``) with its
``config.yaml``, or, without ``--train_config``, a postnet checkpoint ``{"config", "model"}`` (research/).
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.tasks.load import load_postnet
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import find_files, load_npy, save_npy
from espnet_softvc.utils.kaldi_data import ark_scp_writer
from espnet_softvc.utils.shapes import N_MELS


def check_mel(mel, name):
    """A (T, 128) finite float log-mel as a tensor; anything else raises a one-line ``UserError``."""
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[1] != N_MELS:
        raise UserError(f"{name}: expected a log-mel with {N_MELS} bins, got shape {mel.shape}")
    if mel.shape[0] == 0:
        raise UserError(f"{name}: empty log-mel (0 frames)")
    if not np.isfinite(mel).all():
        raise UserError(f"{name}: log-mel contains NaN or Inf")
    return torch.as_tensor(mel, dtype=torch.float32)


@torch.inference_mode()
def denoise(postnet, mel, name="mel"):
    """(T, 128) log-mel -> denoised (T, 128) numpy float32."""
    return postnet(check_mel(mel, name)[None])[0].numpy()


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Denoise Soft-VC log-mels with the denoising postnet.")
    parser.add_argument("in_dir", metavar="in-dir", type=Path, help="directory of (128, T) .npy mels, or a feats.scp")
    parser.add_argument("out_dir", metavar="out-dir", type=Path, help="output directory")
    parser.add_argument("--model_file", type=Path, required=True)
    parser.add_argument("--train_config", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    postnet = load_postnet(args.model_file, args.train_config)
    if args.in_dir.is_file() and args.in_dir.suffix == ".scp":
        import kaldiio

        try:
            reader = kaldiio.load_scp(str(args.in_dir))
            keys = list(reader)
        except (OSError, ValueError) as e:
            raise UserError(f"{args.in_dir}: not a readable Kaldi scp ({e})") from None
        with ark_scp_writer(args.out_dir / "feats.ark", args.out_dir / "feats.scp") as writer:
            for key in tqdm(keys, desc="denoise"):
                writer[key] = denoise(postnet, reader[key], f"{args.in_dir}:{key}")
        print(f"wrote {len(keys)} denoised mels to {args.out_dir / 'feats.scp'}")
        return
    paths = find_files(args.in_dir, ".npy")
    for path in tqdm(paths, desc="denoise"):
        mel = load_npy(path)
        if mel.ndim != 2 or mel.shape[0] != N_MELS:
            raise UserError(f"{path}: expected a ({N_MELS}, T) log-mel, got shape {mel.shape}")
        save_npy(args.out_dir / path.relative_to(args.in_dir), denoise(postnet, mel.T, path).T)
    print(f"wrote {len(paths)} denoised mels to {args.out_dir}")


if __name__ == "__main__":
    main()
