"""softvc-train-units: offline speech units for data without HuBERT weights (the tiny corpus, tests).

1. discrete: MFCC + deltas (50 Hz) of the target speaker's training audio -> scikit-learn MiniBatchKMeans ->
   ``kmeans.pt`` (bshall/hubert kmeans100 format, ``softvc-encode discrete --kmeans``): the target's unit inventory;
2. soft: a small content encoder trained the HuBERT-Soft way on those labels -> ``soft_encoder.pt``
   (``softvc-encode soft --checkpoint``; ``softvc-encode discrete --checkpoint`` gives the units it predicts).
   With ``--extra_train``, it learns on other voices too (speaker-independent units): an utterance of another voice
   whose text is also a training sentence learns the target's units of that sentence, aligned by DTW
   (``espnet_softvc.units.label_transfer``); one without such a partner learns its own k-means units.
3. ``--probe``: the speaker probe (``espnet_softvc.units.probe``, lower is better) of mean log-mels (the
   speaker-dependent reference), the k-means units, the soft units and the encoder's predicted units.
``train_log.yaml`` holds the k-means facts, the encoder's losses and dev accuracy, and the probe.
A set is a Kaldi data dir (``wav.scp``; ``text`` and ``utt2spk`` used when there), a ``wav.scp``, or a directory of
audio files (speaker = file name up to its first ``-``).
"""

import argparse
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from espnet2.utils.types import str2bool
from tqdm import tqdm

from espnet_softvc.data.phones import frame_labels, phones_path, read_segments
from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.units.extractor import UnitExtractor
from espnet_softvc.units.hubert import HOP
from espnet_softvc.units.kmeans import learn_kmeans, mfcc, save_kmeans
from espnet_softvc.units.label_transfer import transfer_labels
from espnet_softvc.units.perturb import Perturbation
from espnet_softvc.units.probe import speaker_probe
from espnet_softvc.units.soft_encoder import train_soft_encoder
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path, find_files, load_audio
from espnet_softvc.utils.kaldi_data import is_pipe, load_wav_entry, read_scp
from espnet_softvc.utils.shapes import N_UNITS


@dataclass
class Utterance:
    utt: str
    wav: torch.Tensor  # (S,) 16 kHz
    speaker: str
    text: str | None = None
    phones: list | None = None  # [(phone, end seconds), ...] where a ``.phones`` file lies beside the wav


def _segments(wav):
    """The phone segmentation beside a wav (a path or a wav.scp value; ``data.phones``), or None (a pipe has none)."""
    path = None if is_pipe(str(wav)) else phones_path(Path(wav))
    return read_segments(path) if path is not None and path.is_file() else None


def load_set(source, extension=".wav"):
    """Data dir, wav.scp or audio directory -> list of ``Utterance`` (each >= 320 samples at 16 kHz)."""
    source = Path(source)
    scp = source / "wav.scp" if (source / "wav.scp").is_file() else source if source.is_file() else None
    if scp is None:
        paths = find_files(source, extension)
        utts = [
            Utterance(p.stem, load_audio(p), p.stem.split("-")[0], phones=_segments(p))
            for p in tqdm(paths, desc=f"loading {source}")
        ]
    else:
        entries = read_scp(scp)
        texts = read_scp(source / "text") if (source / "text").is_file() else {}
        spk = read_scp(source / "utt2spk") if (source / "utt2spk").is_file() else {}
        utts = [
            Utterance(u, load_wav_entry(u, v), spk.get(u, u.split("-")[0]), texts.get(u), _segments(v))
            for u, v in tqdm(entries.items(), desc=f"loading {source}")
        ]
    short = next((u.utt for u in utts if u.wav.numel() < HOP), None)
    if short is not None:
        raise UserError(f"{source}: {short}: audio too short for one unit ({HOP} samples at 16 kHz)")
    return utts


def sentence(text):
    """Text normalized for finding the same sentence read by another voice: lower case, letters and digits."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()) if text else None


def phone_labels(u):
    """(floor(S / 320),) phone labels of an utterance with a segmentation (``data.phones``)."""
    return torch.from_numpy(frame_labels(u.phones, u.wav.numel() // HOP))


def extra_labels(extras, train, train_labels, labeller):
    """Labels of the other voices: with phone targets (``labeller`` None) their own segmentation where they have one;
    else the target's, DTW-aligned, for a sentence the target read; else (k-means targets) their own k-means units.
    Returns (kept utterances, their labels, parallel count, phone-segmented count, left-out ids): an utterance with
    phone targets that has neither a segmentation nor a train sentence (e.g. its partner was removed as too long) is
    left out."""
    by_text = {sentence(u.text): i for i, u in enumerate(train) if u.text}
    kept, labels, left_out, parallel, segmented = [], [], [], 0, 0
    for u in tqdm(extras, desc="labels of other voices"):
        i = by_text.get(sentence(u.text))
        if labeller is None and u.phones is not None:
            label = phone_labels(u)
            segmented += 1
        elif i is not None and u.speaker != train[i].speaker:
            label = torch.from_numpy(transfer_labels(u.wav, train[i].wav, train_labels[i].numpy()))
            parallel += 1
        elif labeller is not None:
            label = torch.from_numpy(labeller(u.wav))
        else:
            left_out.append(u.utt)
            continue
        kept.append(u)
        labels.append(label)
    return kept, labels, parallel, segmented, left_out


def probe(utts, out_dir, soft):
    """Speaker probe of mean log-mels and of each kind of unit learned here on ``utts``: {name: result}."""
    speakers = [u.speaker for u in utts]
    encoders = {"kmeans": UnitExtractor("discrete", kmeans=out_dir / "kmeans.pt")}
    if soft:
        encoders["soft"] = UnitExtractor("soft", checkpoint=out_dir / "soft_encoder.pt")
        encoders["predicted"] = UnitExtractor("discrete", checkpoint=out_dir / "soft_encoder.pt")
    results = {"mel": speaker_probe([logmel(u.wav, u.utt).T for u in utts], speakers)}
    for name, encoder in encoders.items():
        results[name] = speaker_probe([encoder(u.wav, u.utt) for u in tqdm(utts, desc=f"probe {name}")], speakers)
    return results


def get_parser():
    parser = argparse.ArgumentParser(description="Learn offline MFCC k-means units and a small soft encoder.")
    parser.add_argument("train", type=Path, help="target-speaker training audio: data dir, wav.scp or directory.")
    parser.add_argument("out_dir", type=Path, help="writes kmeans.pt, soft_encoder.pt, train_log.yaml here.")
    parser.add_argument("--dev", type=Path, help="validation audio (target speaker); keeps the best encoder.")
    parser.add_argument(
        "--extra_train",
        type=Path,
        nargs="+",
        default=[],
        help="other voices for the soft encoder (data dirs with text: parallel sentences learn the target's units).",
    )
    parser.add_argument(
        "--probe",
        type=Path,
        nargs="+",
        default=[],
        help="sets for the speaker probe (>= 2 speakers, best reading the same sentences), e.g. data/test data/others",
    )
    parser.add_argument(
        "--targets",
        choices=["kmeans", "phones"],
        default="kmeans",
        help="what the soft encoder learns to predict: the k-means units of the target's MFCCs, or phones (and "
        "which half of a phone) from the .phones segmentations beside the wavs (the built-in corpus' flite "
        "voices); voices without one learn the target's labels of the same sentence (DTW).",
    )
    parser.add_argument(
        "--perturb",
        type=str2bool,
        default=False,
        help="change each training crop's voice (vocal-tract warp) and channel (room, noise, band limit, mu-law) "
        "at random, targets unchanged (espnet_softvc.units.perturb).",
    )
    parser.add_argument("--extension", default=".wav", help="extension of the audio files in directories.")
    parser.add_argument("--num_clusters", type=int, default=100, help="k-means clusters = discrete unit ids.")
    parser.add_argument("--steps", type=int, default=1000, help="soft-encoder training steps (0: k-means only).")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--segment", type=int, default=50, help="training crop length in units (20 ms each).")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps.")
    parser.add_argument("--valid_interval", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--frontend",
        choices=["conv", "logmel"],
        default="logmel",
        help="soft encoder input: Soft-VC log-mel frames (learns in minutes on a CPU), or HuBERT's conv feature "
        "extractor on the wav (learns far more slowly from little speech).",
    )
    return parser


@cli
def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    start = time.time()

    train = load_set(args.train, args.extension)
    extras = [u for source in args.extra_train for u in load_set(source, args.extension)]
    probe_set = [u for source in args.probe for u in load_set(source, args.extension)]
    feats = [mfcc(u.wav).numpy() for u in tqdm(train, desc="mfcc")]
    kmeans = learn_kmeans(np.concatenate(feats), args.num_clusters, args.seed)
    save_kmeans(kmeans, args.out_dir / "kmeans.pt")
    kmeans_units = UnitExtractor("discrete", kmeans=args.out_dir / "kmeans.pt")  # exactly the units dumps hold
    kmeans_labels = [torch.from_numpy(kmeans_units(u.wav)) for u in train]
    used = len(set(torch.cat(kmeans_labels).tolist()))
    log = {
        "kmeans": {
            "clusters": args.num_clusters,
            "used_on_train": used,
            "train_frames": sum(map(len, feats)),
            "seconds": round(time.time() - start, 1),
        }
    }
    logging.info("k-means: %d clusters, %d used on train", args.num_clusters, used)

    if args.steps > 0:
        if args.targets == "phones":
            missing = next((u.utt for u in train if u.phones is None), None)
            if missing is not None:
                raise UserError(f"{args.train}: --targets phones: {missing} has no phone segmentation (.phones file)")
            # N_UNITS label embeddings, NUM_LABELS of them used: its predicted labels are 100-unit discrete units
            labeller, num_labels, labels_of = None, N_UNITS, phone_labels
        else:
            labeller, num_labels = kmeans_units, args.num_clusters
            labels_of = lambda u: torch.from_numpy(kmeans_units(u.wav))  # noqa: E731
        labels = kmeans_labels if args.targets == "kmeans" else [labels_of(u) for u in train]
        dev = None
        if args.dev is not None:
            dev_set = load_set(args.dev, args.extension)
            if args.targets == "phones" and any(u.phones is None for u in dev_set):
                raise UserError(f"{args.dev}: --targets phones: every dev utterance needs its phone segmentation")
            dev = [u.wav for u in dev_set], [labels_of(u) for u in dev_set]
        extras, more, parallel, segmented, left_out = extra_labels(extras, train, labels, labeller)
        if left_out:
            logging.info(
                "%d other-voice utterances left out: no phone segmentation and no train sentence (first: %s)",
                len(left_out),
                left_out[0],
            )
        if extras:
            speakers = sorted({u.speaker for u in extras})
            log["extra_train"] = {
                "utterances": len(extras),
                "parallel": parallel,
                "segmented": segmented,
                "left_out": len(left_out),
                "speakers": speakers,
            }
            logging.info(
                "other voices: %d utterances (%d with phones, %d parallel), %d speakers",
                len(extras),
                segmented,
                parallel,
                len(speakers),
            )
        perturb = None
        if args.perturb:
            perturb = Perturbation(babble=[u.wav for u in train], seed=args.seed)
        model, history = train_soft_encoder(
            [u.wav for u in train + extras],
            labels + more,
            num_labels,
            dev,
            args.steps,
            args.batch_size,
            args.segment,
            args.lr,
            args.warmup,
            args.valid_interval,
            args.seed,
            args.frontend,
            perturb,
        )
        with atomic_path(args.out_dir / "soft_encoder.pt") as tmp:
            torch.save(model.checkpoint(steps=args.steps), tmp)
        log["soft_encoder"] = {"history": history, "seconds": round(time.time() - start, 1)}
    elif extras:
        raise UserError("--extra_train trains the soft encoder: give --steps > 0")
    if probe_set:
        results = probe(probe_set, args.out_dir, args.steps > 0)
        log["probe"] = results
        for name, result in results.items():
            print(
                f"speaker probe {name}: accuracy {result['accuracy']:.3f} (chance {result['chance']:.3f}, "
                f"{result['speakers']} speakers, {result['utterances']} utterances, {result['folds']}-fold)"
            )
    with atomic_path(args.out_dir / "train_log.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(log, sort_keys=False))
    print(f"wrote {args.out_dir}/kmeans.pt" + (f" and {args.out_dir}/soft_encoder.pt" if args.steps > 0 else ""))


if __name__ == "__main__":
    main()
