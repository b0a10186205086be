"""Mel distances of generated log-mels to the ground truth, read from Kaldi or ESPnet scp files."""

from pathlib import Path

import kaldiio
import numpy as np

from espnet_softvc.scoring import metrics
from espnet_softvc.utils.errors import UserError


def read_mels(scp):
    """``{uttid: (T, 128) float64}`` from a Kaldi ark scp (dumps) or ESPnet's npy scp (decodes); order kept."""
    mels = {}
    try:
        lines = Path(scp).read_text().splitlines()
    except OSError as e:
        raise UserError(f"{scp}: cannot read ({e.strerror or e})") from None
    for line in filter(str.strip, lines):
        utt, _, value = line.strip().partition(" ")
        try:
            mel = np.load(value.strip()) if value.strip().endswith(".npy") else kaldiio.load_mat(value.strip())
        except Exception as e:  # kaldiio / numpy raise many types for bad files
            raise UserError(f"{scp}: {utt}: cannot read {value.strip()} ({type(e).__name__}: {e})") from None
        mels[utt] = np.asarray(mel, dtype=np.float64)
    if not mels:
        raise UserError(f"{scp}: no utterances")
    return mels


def score(generated, reference, name="decode"):
    """Mean over the generated utterances of l1, mel_snr, lsd (common length), mcd (DTW) and length_error (%)."""
    missing = sorted(set(generated) - set(reference))
    if missing:
        raise UserError(f"{name}: {missing[0]} has no ground-truth mel ({len(missing)} utterances)")
    scores = {key: [] for key in ("l1", "mel_snr", "lsd", "mcd", "length_error")}
    for utt, est in generated.items():
        ref = reference[utt]
        n = min(len(est), len(ref))
        scores["l1"].append(metrics.l1(est[:n], ref[:n]))
        scores["mel_snr"].append(metrics.mel_snr(est[:n], ref[:n]))
        scores["lsd"].append(metrics.log_spectral_distance(est[:n], ref[:n]))
        scores["mcd"].append(metrics.mel_cepstral_distortion(est, ref))
        scores["length_error"].append(100 * abs(len(est) - len(ref)) / len(ref))
    return {key: float(np.mean(values)) for key, values in scores.items()}
