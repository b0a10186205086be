"""Offline content encoder: which levers make its units speaker- and channel-independent (issue 31).

Trains the soft encoder of ``softvc-train-units`` on a finished default run's data with the chosen levers and
measures, on held-out voices only (never on real recordings: those are for checking):
- dev accuracy: the target's own dev units;
- agreement: on ``others`` (held-out voices reading the test prompts), the share of frames whose predicted unit is
  the one the encoder predicts on the target's own reading of the same sentence (DTW-aligned over MFCCs), per voice;
- the speaker probe of soft and predicted units on test + others.

    python research/encoder_units.py RUN_DIR OUT [--extra DIR ...] [--perturb] [--steps N] [--speeds 0.9 1.1]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.bin.train_units import extra_labels, load_set, phone_labels
from espnet_softvc.data.phones import NUM_LABELS
from espnet_softvc.units.extractor import UnitExtractor
from espnet_softvc.units.kmeans import mfcc
from espnet_softvc.units.label_transfer import align
from espnet_softvc.units.perturb import Perturbation, speed
from espnet_softvc.units.probe import speaker_probe
from espnet_softvc.units.soft_encoder import train_soft_encoder


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--extra", type=Path, nargs="*", default=[])
    p.add_argument("--no_multi", action="store_true")
    p.add_argument("--perturb", action="store_true")
    p.add_argument("--p_warp", type=float, default=0.9)
    p.add_argument("--p_channel", type=float, default=1.0, help="scales the channel probabilities")
    p.add_argument("--speeds", type=float, nargs="*", default=[])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--targets", choices=["kmeans", "phones"], default="kmeans")
    a = p.parse_args()
    torch.set_num_threads(2)
    start = time.time()
    run = a.run
    train = load_set(run / "dump/train")
    dev = load_set(run / "dump/dev")
    extras = [] if a.no_multi else load_set(run / "data/multi")
    for e in a.extra:
        extras += load_set(e)
    if a.targets == "phones":
        labeller, num_labels = None, NUM_LABELS
        labels = [phone_labels(u) for u in train]
        dev_pair = [u.wav for u in dev], [phone_labels(u) for u in dev]
    else:
        labeller, num_labels = UnitExtractor("discrete", kmeans=run / "exp/units/kmeans.pt"), 100
        labels = [torch.from_numpy(labeller(u.wav)) for u in train]
        dev_pair = [u.wav for u in dev], [torch.from_numpy(labeller(u.wav)) for u in dev]
    extras, more, parallel, segmented, _ = extra_labels(extras, train, labels, labeller)
    wavs, ys = [u.wav for u in train + extras], labels + more
    for f in a.speeds:
        for w, y in list(zip(wavs, ys)):
            sw, sy = speed(w, y, f)
            wavs.append(sw)
            ys.append(sy)
    perturb = None
    if a.perturb:
        c = a.p_channel
        perturb = Perturbation(
            p_warp=a.p_warp,
            p_room=0.3 * c,
            p_noise=0.5 * c,
            p_band=0.2 * c,
            p_mulaw=0.1 * c,
            babble=[u.wav for u in train[:200]],
        )
    model, history = train_soft_encoder(
        wavs, ys, num_labels, dev_pair, a.steps, a.batch_size, 50, a.lr, 100, 100, 0, "logmel", perturb
    )
    a.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.checkpoint(steps=a.steps), a.out / "soft_encoder.pt")
    train_seconds = time.time() - start
    soft = UnitExtractor("soft", checkpoint=a.out / "soft_encoder.pt")
    pred = UnitExtractor("discrete", checkpoint=a.out / "soft_encoder.pt")
    test = {u.utt.split("-")[1]: u for u in load_set(run / "data/test")}
    others = load_set(run / "data/others")
    agree = {}
    for u in tqdm(others, desc="agreement"):
        ref = test[u.utt.split("-")[1]]
        index = align(mfcc(u.wav).numpy(), mfcc(ref.wav).numpy())
        a_ids, r_ids = pred(u.wav), pred(ref.wav)
        agree.setdefault(u.speaker, []).append(float((a_ids == r_ids[index]).mean()))
    probe_set = list(test.values()) + others
    spk = [u.speaker for u in probe_set]
    result = {
        "args": {k: str(v) for k, v in vars(a).items()},
        "dev_accuracy": max(h.get("dev_accuracy", 0) for h in history),
        "agreement": {s: round(float(np.mean(v)), 3) for s, v in agree.items()},
        "agreement_mean": round(float(np.mean([np.mean(v) for v in agree.values()])), 3),
        "probe_soft": speaker_probe([soft(u.wav) for u in probe_set], spk)["accuracy"],
        "probe_pred": speaker_probe([pred(u.wav) for u in probe_set], spk)["accuracy"],
        "train_utts": len(wavs),
        "parallel": parallel,
        "segmented": segmented,
        "train_seconds": round(train_seconds),
    }
    (a.out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
