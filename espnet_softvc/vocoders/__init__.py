"""Vocoders for Soft-VC log-mels: ``load_vocoder(path)`` -> callable (T, 128) natural-log mel -> (S,) 16 kHz wav.

- None: Griffin-Lim (ESPnet's mel inversion on the Soft-VC mel parameters), the offline default. Its phase
  init is seeded, so the same mel always gives the same wav.
- ``*.pkl``: a ParallelWaveGAN-format vocoder (``config.yml`` beside), as ESPnet uses them.
- any other file: an original bshall/hifigan generator checkpoint (``hifigan-hubert-soft-65f03469.pt``).
"""

import math
from functools import partial
from pathlib import Path

import librosa
import torch
from espnet2.utils.griffin_lim import logmel2linear

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import HOP, N_FFT, N_MELS, SAMPLE_RATE
from espnet_softvc.utils.torch_files import torch_load
from espnet_softvc.vocoders.hifigan import generator_state_dict, load_hifigan
from espnet_softvc.vocoders.parallel_wavegan import load_parallel_wavegan


class GriffinLim:
    """Griffin-Lim on the Soft-VC mel: pseudo-inverse slaney mel basis, n_fft 1024, hop 160, 16 kHz, seeded."""

    sample_rate = SAMPLE_RATE

    def __init__(self, n_iter=32, seed=0):
        self.n_iter, self.seed = n_iter, seed
        self.to_linear = partial(
            logmel2linear, fs=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0, fmax=SAMPLE_RATE // 2
        )

    def __call__(self, logmel):
        """(T, 128) natural-log mel -> (S,) waveform; ESPnet's mel inversion expects log10."""
        spc = self.to_linear(torch.as_tensor(logmel).float().cpu().numpy() / math.log(10))  # (T, 513)
        wav = librosa.griffinlim(
            spc.T,
            n_iter=self.n_iter,
            hop_length=HOP,
            win_length=N_FFT,
            window="hann",
            center=spc.shape[0] > 1,
            random_state=self.seed,
        )
        return torch.from_numpy(wav).float()


def load_vocoder(vocoder_file=None, device="cpu", vocoder_config=None):
    """The vocoder in ``vocoder_file`` on ``device``; Griffin-Lim when None. Wrong files raise ``UserError``."""
    if vocoder_file is None:
        return GriffinLim()
    path = Path(vocoder_file)
    if path.suffix == ".pkl":
        return load_parallel_wavegan(path, vocoder_config, device)
    obj = torch_load(path)
    state_dict = generator_state_dict(obj)
    if state_dict is not None:
        return load_hifigan(state_dict, path, device)
    weights = obj.get("acoustic-model", obj) if isinstance(obj, dict) else {}
    acoustic = any(str(k).endswith("decoder.proj.weight") for k in weights)
    found = "a Soft-VC acoustic model" if acoustic else "no HiFi-GAN generator weights"
    raise UserError(f"{path}: not a HiFi-GAN vocoder checkpoint ({found}); e.g. hifigan-hubert-soft-65f03469.pt")
