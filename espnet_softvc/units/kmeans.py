"""k-means files (bshall/hubert's ``kmeans100`` format) and the offline MFCC features they can cluster.

A k-means file is a dict ``{"n_features_in_": D, "_n_threads": int, "cluster_centers_": (K, D) tensor}`` that
becomes a fitted scikit-learn ``KMeans`` (as bshall/hubert's ``kmeans100()`` does). Ours add
``"features": "mfcc"``; the original file has no such key and clusters HuBERT layer-7 features (D = 768).

Offline features are those of ESPnet's (and fairseq's) first HuBERT iteration: Kaldi MFCC (13, no energy) with
deltas and delta-deltas (39 dims), but with a 20 ms shift instead of 10 ms and taken on the 40-sample-padded
wav, so frame n covers the same 25 ms as HuBERT frame n: N = floor(S / 320) frames at 50 Hz.
"""

import torch
import torch.nn.functional as F
import torchaudio
from sklearn.cluster import KMeans, MiniBatchKMeans

from espnet_softvc.units.hubert import PAD
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path
from espnet_softvc.utils.shapes import SAMPLE_RATE
from espnet_softvc.utils.torch_files import torch_load

MFCC_DIM = 39


def mfcc(wav):
    """16 kHz wav (S,) -> (floor(S / 320), 39) float32: MFCC + deltas + delta-deltas."""
    wav = F.pad(wav, (PAD, PAD)).unsqueeze(0)
    feats = torchaudio.compliance.kaldi.mfcc(
        wav, sample_frequency=SAMPLE_RATE, frame_length=25.0, frame_shift=20.0, use_energy=False, dither=0.0
    ).T  # (13, N)
    deltas = torchaudio.functional.compute_deltas(feats)
    return torch.cat([feats, deltas, torchaudio.functional.compute_deltas(deltas)]).T.contiguous()


def learn_kmeans(features, num_clusters=100, seed=0, batch_size=10000):
    """scikit-learn ``MiniBatchKMeans`` on the (frames, D) ``features`` of a training set (as ESPnet's recipes)."""
    if len(features) < num_clusters:
        raise UserError(f"k-means: only {len(features)} training frames for {num_clusters} clusters")
    kmeans = MiniBatchKMeans(num_clusters, batch_size=batch_size, n_init=3, max_no_improvement=100, random_state=seed)
    return kmeans.fit(features)


def save_kmeans(kmeans, path, features="mfcc"):
    """Write ``kmeans`` in the kmeans100 file format (plus the ``features`` it clusters), atomically."""
    checkpoint = {
        "n_features_in_": int(kmeans.n_features_in_),
        "_n_threads": 1,
        "cluster_centers_": torch.from_numpy(kmeans.cluster_centers_).float(),
        "features": features,
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: the temporary name stays out of the zip
        torch.save(checkpoint, f)


def load_kmeans(path):
    """Read a k-means file as a fitted ``KMeans``; returns ``(kmeans, features)`` (features "hubert" or "mfcc")."""
    return kmeans_from(torch_load(path), path)


def is_kmeans(obj):
    """Whether a loaded checkpoint object is a k-means file (``cluster_centers_`` + ``n_features_in_``)."""
    return isinstance(obj, dict) and "cluster_centers_" in obj and "n_features_in_" in obj


def kmeans_from(checkpoint, path):
    """``load_kmeans`` on an object already read from ``path`` with ``torch_load``."""
    try:
        centers = checkpoint["cluster_centers_"].float().numpy()
        n_features = int(checkpoint["n_features_in_"])
        features = checkpoint.get("features", "hubert")
    except (KeyError, TypeError, AttributeError):
        raise UserError(f"{path}: not a k-means file (expected n_features_in_, _n_threads, cluster_centers_)") from None
    if centers.ndim != 2 or centers.shape[1] != n_features or features not in ("hubert", "mfcc"):
        raise UserError(f"{path}: inconsistent k-means file (centers {centers.shape}, n_features_in_ {n_features})")
    kmeans = KMeans(centers.shape[0])
    kmeans.__dict__.update(n_features_in_=n_features, _n_threads=int(checkpoint.get("_n_threads", 1)))
    kmeans.cluster_centers_ = centers
    return kmeans, features
