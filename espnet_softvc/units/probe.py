"""Speaker probe: how much of the speaker's identity is left in speech units (lower is better).

Each utterance becomes one vector, the mean of its units over time: soft (N, D) -> (D,) mean; discrete (N,) ids
-> (K,) histogram (the mean of the one-hot units); any other (N, D) float features (e.g. log-mel frames) -> (D,)
mean. A multinomial logistic regression (scikit-learn, standardized inputs) predicts the speaker from that vector;
the probe is its accuracy under stratified k-fold cross-validation. Speaker-dependent features (mean log-mels) give
close to 1; units that carry only content give close to chance (the largest speaker's share). Use sets whose
speakers read the same sentences (the built-in corpus' ``test`` and ``others`` are parallel), so content cannot
tell the speakers apart.
"""

from collections import Counter

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import N_UNITS


def utterance_vector(units, num_units=N_UNITS):
    """(N,) integer ids -> (num_units,) histogram summing to 1; (N, D) floats -> (D,) mean. float64."""
    units = np.asarray(units)
    if units.size == 0 or units.shape[0] == 0:
        raise UserError("speaker probe: an utterance has no units")
    if units.ndim == 1 and np.issubdtype(units.dtype, np.integer):
        if units.min() < 0 or units.max() >= num_units:
            raise UserError(f"speaker probe: unit id out of range 0..{num_units - 1}")
        return np.bincount(units, minlength=num_units) / len(units)
    if units.ndim != 2 or not np.issubdtype(units.dtype, np.floating):
        raise UserError(f"speaker probe: expected (N,) ids or (N, D) floats, got {units.dtype} {units.shape}")
    return units.astype(np.float64).mean(0)


def speaker_probe(units, speakers, folds=5, seed=0, num_units=N_UNITS):
    """Cross-validated accuracy of a linear classifier predicting the speaker from utterance-mean units.

    units: list of per-utterance units ((N_i,) ids or (N_i, D) floats, one kind for all); speakers: a speaker
    label per utterance (>= 2 speakers, >= 2 utterances each). Returns ``{"accuracy", "chance", "speakers",
    "utterances", "folds"}``; folds = min(``folds``, utterances of the smallest speaker).
    """
    if len(units) != len(speakers):
        raise UserError(f"speaker probe: {len(units)} utterances but {len(speakers)} speaker labels")
    counts = Counter(speakers)
    if len(counts) < 2:
        raise UserError(f"speaker probe: needs at least 2 speakers, got {len(counts)} ({', '.join(map(str, counts))})")
    smallest = min(counts, key=counts.get)
    if counts[smallest] < 2:
        raise UserError(f"speaker probe: speaker {smallest} has {counts[smallest]} utterance, needs at least 2")
    x = np.stack([utterance_vector(u, num_units) for u in units])
    if len({v.shape for v in x}) != 1:
        raise UserError("speaker probe: utterances have units of different widths")
    y = np.asarray(speakers)
    folds = min(folds, counts[smallest])
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = cross_val_score(classifier, x, y, cv=splits)
    return {
        "accuracy": float(scores.mean()),
        "chance": max(counts.values()) / len(y),
        "speakers": len(counts),
        "utterances": len(y),
        "folds": folds,
    }
