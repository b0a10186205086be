"""Classical denoisers for Soft-VC log-mels, the baselines of the denoising postnet.

Mel-domain ones map a (T, 128) natural-log mel tensor to a (T, 128) log-mel; ``noisereduce_mel`` works on the
16 kHz waveform (spectral gating) and then takes our mel. All parameters are the textbook defaults, fixed
before any evaluation (none was tuned on the evaluation noise).
"""

import math

import torch

from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.utils.shapes import LOG_FLOOR, valid_mask

LOG_MIN = math.log(LOG_FLOOR)


def noise_floor(log_mel, lengths=None, fraction=0.1):
    """Per-bin noise magnitude: mean linear mel of the ``fraction`` lowest-energy frames of each utterance.

    log_mel (T, 128) -> (128,), or (B, T, 128) with lengths (B,) -> (B, 128); padded frames are ignored.
    """
    if log_mel.dim() == 2:
        return noise_floor(log_mel[None], None, fraction)[0]
    batch, frames, _ = log_mel.shape
    lengths = torch.as_tensor([frames] * batch if lengths is None else lengths, device=log_mel.device)
    mag = log_mel.exp()
    valid = valid_mask(lengths, frames)
    energy = mag.square().sum(-1).masked_fill(~valid, math.inf)
    rank = energy.argsort(1).argsort(1)
    quiet = (rank < (lengths[:, None] * fraction).ceil().clamp(min=1)).to(mag.dtype)  # (B, T)
    return (quiet[..., None] * mag).sum(1) / quiet.sum(1, keepdim=True)


def _log(mag):
    return mag.clamp(min=LOG_FLOOR).log()


def spectral_subtraction(log_mel, gain_floor=0.05):
    """Magnitude subtraction of :func:`noise_floor`, at least ``gain_floor`` of the input left in each bin."""
    mag = log_mel.exp()
    return _log(torch.maximum(mag - noise_floor(log_mel), gain_floor * mag))


def wiener(log_mel, alpha=0.98, gain_floor=0.05):
    """Wiener gain xi / (1 + xi) per bin, a-priori SNR xi by the decision-directed rule (Ephraim-Malah)."""
    power, noise = log_mel.exp().square(), noise_floor(log_mel).square()
    gains, previous = [], torch.zeros_like(noise)
    for frame in power:
        posterior = frame / noise
        xi = alpha * previous / noise + (1 - alpha) * (posterior - 1).clamp(min=0)
        gain = (xi / (1 + xi)).clamp(min=gain_floor)
        previous = gain.square() * frame
        gains.append(gain)
    return _log(log_mel.exp() * torch.stack(gains))


def bias_subtraction(log_mel, strength=1.0):
    """WaveGlow-denoiser style: subtract ``strength`` x the mel of the "silence" frame (the least energetic one)."""
    mag = log_mel.exp()
    bias = mag[mag.square().sum(-1).argmin()]
    return _log((mag - strength * bias).clamp(min=0))


def noisereduce_mel(wav):
    """``noisereduce`` spectral gating (non-stationary, its defaults) on a 16 kHz waveform, then our log-mel."""
    import noisereduce

    clean = noisereduce.reduce_noise(y=wav.numpy(), sr=16000)
    return torch.from_numpy(logmel(torch.as_tensor(clean, dtype=torch.float32)).T)


MEL_BASELINES = {"spectral_subtraction": spectral_subtraction, "wiener": wiener, "bias_subtraction": bias_subtraction}
