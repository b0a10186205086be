"""The original Soft-VC log-mel front end (bshall/acoustic-model mels.py), also as an ESPnet feature extractor.

16 kHz, n_fft = win = 1024, hop 160, 128 slaney mels, magnitude (power 1), reflect-pad 432, ln(max(mel, 1e-5)).
"""

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
from espnet2.tts.feats_extract.abs_feats_extract import AbsFeatsExtract

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import load_audio
from espnet_softvc.utils.shapes import HOP, LOG_FLOOR, N_FFT, N_MELS, SAMPLE_RATE

PAD = (N_FFT - HOP) // 2


class LogMelSpectrogram(nn.Module):
    def __init__(self):
        super().__init__()
        self.melspectrogram = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=N_FFT,
            win_length=N_FFT,
            hop_length=HOP,
            center=False,
            power=1.0,
            norm="slaney",
            n_mels=N_MELS,
            mel_scale="slaney",
        )

    def forward(self, wav):
        """16 kHz wav (..., S) -> log-mel (..., 128, floor(S / 160)); S must exceed 432 samples (27 ms)."""
        wav = F.pad(wav.unsqueeze(-2), (PAD, PAD), "reflect").squeeze(-2)
        return torch.log(torch.clamp(self.melspectrogram(wav), min=LOG_FLOOR))


@functools.lru_cache(maxsize=1)
def _logmel():
    return LogMelSpectrogram()


def logmel(wav, name="audio"):
    """Soft-VC log-mel (128, T) numpy of a 16 kHz wav (S,), T = floor(S / 160); ``name`` goes into errors."""
    if wav.numel() <= PAD:
        raise UserError(f"{name}: audio too short ({wav.numel()} samples at 16 kHz, need more than {PAD})")
    with torch.inference_mode():
        return _logmel()(wav).numpy()


def wav_to_mel(path):
    """Soft-VC log-mel (128, T) of an audio file (any sample rate, any channel count)."""
    return logmel(load_audio(path), path)


class SoftVCLogMel(AbsFeatsExtract):
    """ESPnet ``feats_extract`` giving Soft-VC mels (B, T, 128) from raw speech at ``fs`` (resampled to 16 kHz).

    Each utterance is processed alone so its mel equals the one ``softvc-mels`` writes, whatever the padding.
    """

    def __init__(self, fs=SAMPLE_RATE):
        super().__init__()
        self.fs = int(fs)
        self.logmel = LogMelSpectrogram()

    def output_size(self):
        return N_MELS

    def get_parameters(self):
        return dict(
            fs=SAMPLE_RATE,
            n_fft=N_FFT,
            n_shift=HOP,
            win_length=N_FFT,
            window="hann",
            n_mels=N_MELS,
            fmin=0,
            fmax=SAMPLE_RATE // 2,
        )

    def forward(self, input, input_lengths=None):
        """input (B, S) at ``fs``, input_lengths (B,) -> feats (B, T, 128), feats_lengths (B,)."""
        if input_lengths is None:
            input_lengths = input.new_full((input.size(0),), input.size(1), dtype=torch.long)
        mels = []
        for wav, length in zip(input, input_lengths):
            wav = wav[: int(length)]
            if self.fs != SAMPLE_RATE:
                wav = torchaudio.functional.resample(wav, self.fs, SAMPLE_RATE)
            mels.append(self.logmel(wav).transpose(0, 1))
        lengths = torch.tensor([m.size(0) for m in mels], device=input.device)
        return nn.utils.rnn.pad_sequence(mels, batch_first=True), lengths
