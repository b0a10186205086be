"""Vocoders for Soft-VC log-mels: ``load_vocoder(path)`` -> callable (T, 128) natural-log mel -> (S,) 16 kHz wav.

Griffin-Lim (ESPnet's ``Spectrogram2Waveform`` on the Soft-VC mel parameters) is the offline default.
"""
import math

import torch
from espnet2.utils.griffin_lim import Spectrogram2Waveform

from espnet_softvc.feats.log_mel import HOP, N_FFT, N_MELS, SAMPLE_RATE
from espnet_softvc.utils.errors import UserError


class GriffinLim:
    """Griffin-Lim on the Soft-VC mel: pseudo-inverse mel basis (slaney), n_fft 1024, hop 160, 16 kHz."""

    sample_rate = SAMPLE_RATE

    def __init__(self, n_iter=32):
        self.spec2wav = Spectrogram2Waveform(
            n_fft=N_FFT, n_shift=HOP, fs=SAMPLE_RATE, n_mels=N_MELS, win_length=N_FFT, window="hann",
            fmin=0, fmax=SAMPLE_RATE // 2, griffin_lim_iters=n_iter,
        )  # fmt: skip

    def __call__(self, logmel):
        """(T, 128) natural-log mel -> (S,) waveform; ESPnet's helper expects log10."""
        return self.spec2wav(torch.as_tensor(logmel).float().cpu() / math.log(10))


def load_vocoder(vocoder_file=None, device="cpu"):
    """The vocoder in ``vocoder_file``; Griffin-Lim when None."""
    if vocoder_file is None:
        return GriffinLim()
    raise UserError(f"{vocoder_file}: vocoder files are not supported yet (only Griffin-Lim)")
