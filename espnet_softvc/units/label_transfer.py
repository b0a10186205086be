"""Parallel label transfer: the target speaker's units for another voice reading the same sentence.

A content encoder trained on other voices with their own MFCC k-means labels learns speaker-dependent labels
(another voice falls into other clusters), so its units keep the speaker. When another voice reads a sentence the
target speaker also read, we instead give it the target's labels, time-aligned by dynamic time warping over
per-utterance mean- and variance-normalized MFCCs (``librosa.sequence.dtw``): the encoder then learns to map every
voice onto the target's units, the units the acoustic model is trained on. Synthetic corpora make such parallel
sentences for free (the built-in corpus' voices read the same prompts).
"""

import numpy as np
from librosa.sequence import dtw

from espnet_softvc.units.kmeans import mfcc


def cmvn(feats):
    """(N, D) -> (N, D): zero mean, unit variance per dimension over the utterance."""
    return (feats - feats.mean(0)) / (feats.std(0) + 1e-5)


def align(source, reference):
    """For each frame of ``source`` (N, D) the index of its DTW-matched frame of ``reference`` (M, D): (N,) int64.

    Where DTW matches one source frame to several reference frames, the middle one is taken."""
    _, path = dtw(cmvn(source).T, cmvn(reference).T, metric="euclidean")
    matches = [[] for _ in range(len(source))]
    for i, j in path[::-1]:
        matches[i].append(j)
    return np.array([m[len(m) // 2] for m in matches], dtype=np.int64)


def transfer_labels(source_wav, reference_wav, reference_labels):
    """The reference's labels (M,) moved onto the frames of ``source_wav``: 16 kHz (S,) wavs -> (floor(S / 320),)."""
    index = align(mfcc(source_wav).numpy(), mfcc(reference_wav).numpy())
    return np.asarray(reference_labels)[index]
