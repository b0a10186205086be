"""Distances between two Soft-VC log-mels (natural log of mel magnitudes), as plain functions.

Every function takes ``est`` and ``ref`` of the same shape (T, 128) (numpy arrays or torch tensors, any float
dtype) and returns a Python float. Linear magnitudes are ``M = exp(log_mel)`` (DESIGN §8).
"""

import math

import torch

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import N_MELS

DB = 10 / math.log(10)  # natural log -> decibels (power)
MCD_ORDER = 24  # c1..c24
MCD_SCALE = DB * math.sqrt(2)  # 10 sqrt(2) / ln 10


def _finite(mel, name):
    mel = torch.as_tensor(mel, dtype=torch.float64)
    if mel.dim() != 2 or mel.shape[1] != N_MELS or mel.shape[0] == 0:
        raise UserError(f"{name}: expected a (T, {N_MELS}) log-mel, got {tuple(mel.shape)}")
    if not torch.isfinite(mel).all():
        raise UserError(f"{name}: log-mel contains NaN or Inf")
    return mel


def _pair(est, ref, name="mel"):
    est, ref = _finite(est, name), _finite(ref, name)
    if est.shape != ref.shape:
        raise UserError(f"{name}: expected two log-mels of equal shape, got {tuple(est.shape)} and {tuple(ref.shape)}")
    return est, ref


def mel_snr(est, ref):
    """mel-SNR in dB: 10 log10( sum M_ref^2 / sum (M_est - M_ref)^2 ) over all frames and bins (inf if equal)."""
    est, ref = _pair(est, ref)
    signal, error = ref.exp().square().sum(), (est.exp() - ref.exp()).square().sum()
    return float(DB * (signal.log() - error.log())) if error > 0 else math.inf


def mel_snr_improvement(est, noisy, ref):
    """mel_snr(est, ref) - mel_snr(noisy, ref): what a denoiser gained, in dB."""
    return mel_snr(est, ref) - mel_snr(noisy, ref)


def segmental_mel_snr(est, ref, low=-10.0, high=35.0):
    """Mean over frames of the per-frame mel-SNR in dB, each clamped to [low, high] (the usual segSNR)."""
    est, ref = _pair(est, ref)
    signal = ref.exp().square().sum(1)
    error = (est.exp() - ref.exp()).square().sum(1).clamp(min=1e-20)
    return float((DB * (signal.log() - error.log())).clamp(low, high).mean())


def log_spectral_distance(est, ref):
    """LSD in dB: per frame sqrt(mean over bins of (20 log10 M_est - 20 log10 M_ref)^2), averaged over frames."""
    est, ref = _pair(est, ref)
    return float((2 * DB * (est - ref)).square().mean(1).sqrt().mean())


def l1(est, ref):
    """Mean absolute difference of the log-mels (the Soft-VC training loss, per bin and frame)."""
    est, ref = _pair(est, ref)
    return float((est - ref).abs().mean())


def mel_cepstrum(log_mel, order=MCD_ORDER):
    """Mel-cepstrum (T, order + 1) of a (T, 128) natural-log mel, c0 first: the orthonormal DCT-II of the log-mel
    (scipy ``dct(norm="ortho")``), the mel-cepstrum of the field's MCD."""
    log_mel = torch.as_tensor(log_mel, dtype=torch.float64)
    n = torch.arange(log_mel.shape[-1], dtype=torch.float64)
    k = torch.arange(order + 1, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / log_mel.shape[-1] * (n + 0.5) * k) * math.sqrt(2 / log_mel.shape[-1])
    basis[0] /= math.sqrt(2)
    return log_mel @ basis.T


def dtw_path(est, ref, order=MCD_ORDER):
    """DTW alignment (euclidean on mel-cepstra c1..c_order, librosa) of two log-mels (T1, 128), (T2, 128):
    (L, 2) frame index pairs, in time order."""
    import librosa

    ceps = [mel_cepstrum(_finite(m, "mel"), order)[:, 1:].numpy() for m in (est, ref)]
    _, path = librosa.sequence.dtw(X=ceps[0].T, Y=ceps[1].T, metric="euclidean")
    return path[::-1].copy()


def mel_cepstral_distortion(est, ref, order=MCD_ORDER, dtw=True):
    """MCD in dB, the field's definition (ESPnet's ``evaluate_mcd``): mel-cepstra c1..c_order (c0, the energy,
    excluded) aligned by DTW (:func:`dtw_path`), then per aligned frame pair
    10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2), averaged. est (T1, 128), ref (T2, 128); ``dtw=False`` compares
    frame by frame (T1 == T2)."""
    ceps = [mel_cepstrum(_finite(m, "mel"), order)[:, 1:] for m in (est, ref)]
    if dtw:
        path = torch.as_tensor(dtw_path(est, ref, order))
        ceps = [ceps[0][path[:, 0]], ceps[1][path[:, 1]]]
    elif ceps[0].shape != ceps[1].shape:
        raise UserError(f"mel: frame-by-frame MCD needs equal lengths, got {len(ceps[0])} and {len(ceps[1])}")
    return float(MCD_SCALE * (ceps[0] - ceps[1]).square().sum(1).sqrt().mean())


MEL_METRICS = {
    "mel_snr": mel_snr,
    "seg_mel_snr": segmental_mel_snr,
    "lsd": log_spectral_distance,
    "l1": l1,
    "mcd": mel_cepstral_distortion,
}


def mel_scores(est, ref):
    """All mel metrics of ``est`` against ``ref`` as a dict (keys of ``MEL_METRICS``)."""
    return {name: fn(est, ref) for name, fn in MEL_METRICS.items()}
