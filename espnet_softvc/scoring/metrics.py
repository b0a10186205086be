"""Distances between two Soft-VC log-mels (natural log of mel magnitudes), as plain functions.

Every function takes ``est`` and ``ref`` of the same shape (T, 128) (numpy arrays or torch tensors, any float
dtype) and returns a Python float. Linear magnitudes are ``M = exp(log_mel)`` (DESIGN §8).
"""
import math

import torch

from espnet_softvc.utils.errors import UserError

N_MELS = 128
DB = 10 / math.log(10)  # natural log -> decibels (power)


def _pair(est, ref, name="mel"):
    est, ref = (torch.as_tensor(x, dtype=torch.float64) for x in (est, ref))
    if est.shape != ref.shape or est.dim() != 2 or est.shape[1] != N_MELS or est.shape[0] == 0:
        raise UserError(f"{name}: expected two (T, {N_MELS}) log-mels of equal shape, got "
                        f"{tuple(est.shape)} and {tuple(ref.shape)}")  # fmt: skip
    if not (torch.isfinite(est).all() and torch.isfinite(ref).all()):
        raise UserError(f"{name}: log-mel contains NaN or Inf")
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


def mel_cepstrum(log_mel, order=24):
    """Mel-cepstrum (T, order + 1) of a (T, 128) natural-log mel, c0 first.

    The real cepstrum of the even-extended log-mel: c_d = 1/128 sum_k ln M_k cos(pi d (k + 1/2) / 128) (a DCT-II
    scaled like the inverse DFT, the scale SPTK-style mel-cepstra have), so MCD values are on the usual dB scale.
    """
    log_mel = torch.as_tensor(log_mel, dtype=torch.float64)
    n = torch.arange(N_MELS, dtype=torch.float64)
    k = torch.arange(order + 1, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / N_MELS * (n + 0.5) * k) / N_MELS
    return log_mel @ basis.T


def mel_cepstral_distortion(est, ref, order=24):
    """MCD in dB over c1..c_order of :func:`mel_cepstrum` (c0, the energy, excluded), frame-aligned (no DTW).

    MCD = 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2), averaged over frames.
    """
    est, ref = _pair(est, ref)
    diff = (mel_cepstrum(est, order) - mel_cepstrum(ref, order))[:, 1:]
    return float(DB * (2 * diff.square().sum(1)).sqrt().mean())


MEL_METRICS = {"mel_snr": mel_snr, "seg_mel_snr": segmental_mel_snr, "lsd": log_spectral_distance, "l1": l1,
               "mcd": mel_cepstral_distortion}  # fmt: skip


def mel_scores(est, ref):
    """All mel metrics of ``est`` against ``ref`` as a dict (keys of ``MEL_METRICS``)."""
    return {name: fn(est, ref) for name, fn in MEL_METRICS.items()}

