"""Denoising postnet: noisy Soft-VC log-mel (B, T, 128) -> cleaner log-mel (B, T, 128), residual in log space.

The network sees three level-normalised views of each utterance: the log-mel, its per-bin noise floor
(:func:`~espnet_softvc.postnet.baselines.noise_floor`, broadcast over time) and the spectral-subtraction
estimate; it predicts a bounded log-gain per bin (mostly an attenuation mask, at most ``max_log_gain`` boost).
The last layer starts at zero, so an untrained postnet is the identity: the path that leaves clean speech alone.
Two bodies: ``conv`` (Tacotron-2 postnet style, 1-D convs over time) and ``unet`` (2-D U-Net over bins x frames).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from espnet_softvc.postnet.baselines import LOG_MIN, noise_floor
from espnet_softvc.utils.shapes import N_MELS, valid_mask

N_VIEWS = 3


class ConvBody(nn.Module):
    """Tacotron-2 postnet shape: ``layers`` Conv1d over time, BatchNorm + tanh between. (B, 3, F, T) -> (B, F, T)."""

    def __init__(self, channels=160, layers=5, kernel_size=5):
        super().__init__()
        sizes = [N_VIEWS * N_MELS] + [channels] * (layers - 1)
        pad = kernel_size // 2
        self.convs = nn.ModuleList(nn.Conv1d(i, o, kernel_size, padding=pad) for i, o in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(o) for o in sizes[1:])
        self.out = nn.Conv1d(channels, N_MELS, kernel_size, padding=pad)

    def forward(self, x):
        x = x.flatten(1, 2)
        for conv, norm in zip(self.convs, self.norms):
            x = torch.tanh(norm(conv(x)))
        return self.out(x)


class UNetBody(nn.Module):
    """2-D U-Net over (bins, frames), two 2x down/up-samplings with skips. (B, 3, F, T) -> (B, F, T)."""

    def __init__(self, channels=16):
        super().__init__()
        c = channels

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GELU(), nn.Conv2d(o, o, 3, padding=1), nn.GELU())

        self.enc1, self.enc2, self.mid = block(N_VIEWS, c), block(c, 2 * c), block(2 * c, 4 * c)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, 2), block(4 * c, 2 * c)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * c, c, 2, 2), block(2 * c, c)
        self.out = nn.Conv2d(c, 1, 1)

    def forward(self, x):
        frames = x.size(-1)
        x = F.pad(x, (0, -frames % 4))
        e1 = self.enc1(x)
        e2 = self.enc2(F.avg_pool2d(e1, 2))
        m = self.mid(F.avg_pool2d(e2, 2))
        d2 = self.dec2(torch.cat((self.up2(m), e2), 1))
        d1 = self.dec1(torch.cat((self.up1(d2), e1), 1))
        return self.out(d1)[:, 0, :, :frames]


BODIES = {"conv": ConvBody, "unet": UNetBody}


class DenoisingPostnet(nn.Module):
    """Residual log-gain postnet; ``arch`` in ``BODIES``, ``body_conf`` its keyword arguments."""

    def __init__(self, arch="conv", body_conf=None, max_log_gain=0.5, gain_floor=0.05):
        super().__init__()
        if arch not in BODIES:
            raise ValueError(f"unknown postnet arch {arch!r} (choose from {', '.join(BODIES)})")
        self.body = BODIES[arch](**(body_conf or {}))
        nn.init.zeros_(self.body.out.weight)
        nn.init.zeros_(self.body.out.bias)
        self.max_log_gain, self.gain_floor = max_log_gain, gain_floor
        # the log-gain is m - softplus(m - z - z0): about z for z << m, never above m, exactly 0 at z = 0
        self.zero_offset = max_log_gain - math.log(math.expm1(max_log_gain))

    def views(self, mel, lengths=None):
        """(B, T, 128) log-mel -> (B, 3, 128, T): mel, noise floor, spectral subtraction, minus the utterance mean."""
        floor = noise_floor(mel, lengths)[:, None]  # (B, 1, 128) linear
        subtracted = torch.maximum(mel.exp() - floor, self.gain_floor * mel.exp()).clamp(min=1e-5).log()
        views = torch.stack((mel, floor.log().expand_as(mel), subtracted), 1)
        mask = _mask(mel, lengths).to(mel.dtype)
        level = (mel * mask).sum((1, 2)) / (mask.sum((1, 2)) * N_MELS)
        return (views - level[:, None, None, None]).transpose(2, 3) / 4.0

    def forward(self, mel, lengths=None):
        """mel (B, T, 128) natural-log mel, lengths (B,) or None -> denoised (B, T, 128); padding stays as given."""
        z = self.body(self.views(mel, lengths)).transpose(1, 2)
        m = self.max_log_gain
        log_gain = m - F.softplus(m - z - self.zero_offset)
        out = (mel + log_gain).clamp(min=LOG_MIN)
        return torch.where(_mask(mel, lengths), out, mel)


def _mask(mel, lengths):
    """(B, T, 1) bool: True on real frames."""
    if lengths is None:
        return torch.ones_like(mel[..., :1], dtype=torch.bool)
    return valid_mask(lengths, mel.size(1)).to(mel.device)[..., None]


def denoise_loss(est, ref, lengths=None, l1_weight=0.1, snr_weight=1.0):
    """Matches the metric: ``snr_weight`` x minus the per-utterance mel-SNR (dB, linear magnitudes, saturating at
    40 dB) plus ``l1_weight`` x the log-mel L1 (the acoustic-model postnet, whose target is L1, weighs L1 only).

    est, ref (B, T, 128) log-mels; returns (loss, stats) with stats mel_snr (dB) and l1 (both batch means).
    """
    mask = _mask(est, lengths).to(est.dtype)
    error = ((est.exp() - ref.exp()).square() * mask).sum((1, 2))
    signal = (ref.exp().square() * mask).sum((1, 2))
    snr = 10 * torch.log10(signal / (error + 1e-4 * signal))  # saturates at 40 dB: clean inputs do not dominate
    l1 = ((est - ref).abs() * mask).sum() / (mask.sum() * N_MELS)
    return -snr_weight * snr.mean() + l1_weight * l1, {"mel_snr": snr.mean().detach(), "l1": l1.detach()}
