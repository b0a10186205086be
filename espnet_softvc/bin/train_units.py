"""softvc-train-units: offline speech units for data without HuBERT weights (the tiny corpus, tests).

1. discrete: MFCC + deltas (50 Hz) of the training audio -> scikit-learn MiniBatchKMeans -> ``kmeans.pt``
   (bshall/hubert kmeans100 format, ``softvc-encode discrete --kmeans``);
2. soft: a small content encoder trained the HuBERT-Soft way on those labels -> ``soft_encoder.pt``
   (``softvc-encode soft --checkpoint``); ``train_log.yaml`` holds its losses and dev accuracy.
Inputs are a directory of audio files or a Kaldi ``wav.scp``.
"""

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from espnet_softvc.units.extractor import UnitExtractor
from espnet_softvc.units.hubert import HOP
from espnet_softvc.units.kmeans import learn_kmeans, mfcc, save_kmeans
from espnet_softvc.units.soft_encoder import train_soft_encoder
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path, find_files, load_audio
from espnet_softvc.utils.kaldi_data import read_scp


def load_set(source, extension):
    """Directory (rglob ``*extension``) or wav.scp -> list of 16 kHz wavs (each >= 320 samples)."""
    source = Path(source)
    paths = list(read_scp(source).values()) if source.is_file() else find_files(source, extension)
    wavs = [load_audio(p) for p in tqdm(paths, desc=f"loading {source}")]
    short = [p for p, w in zip(paths, wavs) if w.numel() < HOP]
    if short:
        raise UserError(f"{short[0]}: audio too short for one unit ({HOP} samples at 16 kHz)")
    return wavs


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Learn offline MFCC k-means units and a small soft encoder.")
    parser.add_argument("train", type=Path, help="training audio: a directory or a Kaldi wav.scp.")
    parser.add_argument("out_dir", type=Path, help="writes kmeans.pt, soft_encoder.pt, train_log.yaml here.")
    parser.add_argument("--dev", type=Path, help="validation audio (directory or wav.scp); keeps the best encoder.")
    parser.add_argument("--extension", default=".wav", help="extension of the audio files in directories.")
    parser.add_argument("--num_clusters", type=int, default=100, help="k-means clusters = discrete unit ids.")
    parser.add_argument("--steps", type=int, default=400, help="soft-encoder training steps (0: k-means only).")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--segment", type=int, default=50, help="training crop length in units (20 ms each).")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps.")
    parser.add_argument("--valid_interval", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    start = time.time()

    train = load_set(args.train, args.extension)
    feats = [mfcc(w).numpy() for w in tqdm(train, desc="mfcc")]
    kmeans = learn_kmeans(np.concatenate(feats), args.num_clusters, args.seed)
    save_kmeans(kmeans, args.out_dir / "kmeans.pt")
    labeller = UnitExtractor("discrete", kmeans=args.out_dir / "kmeans.pt")  # exactly the units dumps will hold
    labels = [torch.from_numpy(labeller(w)) for w in train]
    used = len(set(torch.cat(labels).tolist()))
    log = {
        "kmeans": {
            "clusters": args.num_clusters,
            "used_on_train": used,
            "train_frames": sum(map(len, labels)),
            "seconds": round(time.time() - start, 1),
        }
    }
    logging.info("k-means: %d clusters, %d used on train", args.num_clusters, used)

    if args.steps > 0:
        dev = None
        if args.dev is not None:
            dev_wavs = load_set(args.dev, args.extension)
            dev = dev_wavs, [torch.from_numpy(labeller(w)) for w in dev_wavs]
        model, history = train_soft_encoder(
            train,
            labels,
            args.num_clusters,
            dev,
            args.steps,
            args.batch_size,
            args.segment,
            args.lr,
            args.warmup,
            args.valid_interval,
            args.seed,
        )
        with atomic_path(args.out_dir / "soft_encoder.pt") as tmp:
            torch.save(model.checkpoint(steps=args.steps), tmp)
        log["soft_encoder"] = {"history": history, "seconds": round(time.time() - start, 1)}
    with atomic_path(args.out_dir / "train_log.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(log, sort_keys=False))
    print(f"wrote {args.out_dir}/kmeans.pt" + (f" and {args.out_dir}/soft_encoder.pt" if args.steps > 0 else ""))


if __name__ == "__main__":
    main()
