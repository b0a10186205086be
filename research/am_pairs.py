"""Acoustic-model training pairs for the postnet: free-running Soft-VC output next to the ground-truth mel.

Research stand-in for the recipe (which decodes with the real trained model): a discrete ``AcousticModel`` is
trained for a few minutes on 1 s crops of the corpus with simple units (k-means(100) over 50 Hz pairs of log-mel
frames),
then the fused free-running decoder runs on dev and ``--max_train`` train utterances (batches of 16 cut to
their shortest utterance). Writes ``train.npz`` / ``dev.npz`` with ``gen_<id>`` and
``ref_<id>`` (T, 128) arrays, the format ``postnet.train --am_pairs`` and ``denoise_eval --am_pairs`` read.

    python research/am_pairs.py CORPUS_DIR OUT_DIR --minutes 6
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans
from tqdm import tqdm

from espnet_softvc.feats.log_mel import wav_to_mel
from espnet_softvc.softvc.fast import decode
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.utils.errors import cli
from espnet_softvc.utils.io import atomic_path, find_files


def mel_units(mels, seed=0):
    """k-means(100) ids of every 2-frame pair: list of (T, 128) -> list of (T // 2,) int64 (T truncated to 2N)."""
    pairs = [m[: len(m) // 2 * 2].reshape(-1, 256) for m in mels]
    kmeans = MiniBatchKMeans(100, random_state=seed, n_init=3).fit(np.concatenate(pairs))
    return [kmeans.predict(p).astype(np.int64) for p in pairs]


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Train a quick acoustic model and dump free-running mels.")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=50, help="units per training crop (1 s)")
    parser.add_argument("--max_train", type=int, default=48, help="train utterances to generate")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    splits = {s: find_files(args.corpus / "wavs" / s, ".wav") for s in ("train", "dev")}
    mels = {s: [wav_to_mel(p).T for p in paths] for s, paths in splits.items()}
    units = mel_units(mels["train"] + mels["dev"])
    units = {"train": units[: len(mels["train"])], "dev": units[len(mels["train"]) :]}
    model = AcousticModel(discrete=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, betas=(0.8, 0.99), weight_decay=1e-5)
    rng, start, step = np.random.default_rng(0), time.time(), 0
    while time.time() - start < args.minutes * 60:
        batch = rng.choice(len(units["train"]), args.batch_size, replace=False)
        starts = [rng.integers(len(units["train"][i]) - args.crop + 1) for i in batch]  # random 2*crop-frame crops
        u = torch.as_tensor(np.stack([units["train"][i][s : s + args.crop] for i, s in zip(batch, starts)]))
        crops = [mels["train"][i][2 * s : 2 * (s + args.crop)] for i, s in zip(batch, starts)]
        target = torch.as_tensor(np.stack(crops))
        loss = (model(u, torch.nn.functional.pad(target[:, :-1], (0, 0, 1, 0))) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
    print(f"acoustic model: {step} steps, last teacher-forced L1 {float(loss):.3f}")
    with atomic_path(args.out_dir / "am.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    for split in ("train", "dev"):
        model.eval()
        arrays, order = {}, np.argsort([len(u) for u in units[split]])[: args.max_train]
        for group in tqdm(np.array_split(order, -(-len(order) // 16)), desc=f"generate {split}"):
            n = min(len(units[split][i]) for i in group)  # a batch shares one length (InstanceNorm sees no padding)
            with torch.inference_mode():
                batch = torch.as_tensor(np.stack([units[split][i][:n] for i in group]))
                gen = decode(model.decoder, model.encoder(batch))
            for i, mel in zip(group, gen):
                arrays[f"gen_{splits[split][i].stem}"] = mel.numpy()
                arrays[f"ref_{splits[split][i].stem}"] = mels[split][i][: 2 * n]
        with atomic_path(args.out_dir / f"{split}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)


if __name__ == "__main__":
    main()
