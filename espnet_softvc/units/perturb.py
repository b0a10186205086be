"""Speaker and channel perturbation of the content encoder's training audio; the targets stay unchanged.

The levers of NANSY / ContentVec / SPIN, made cheap enough for a CPU: the encoder must give the same units whatever
the voice and the recording, so it learns from audio whose voice and channel are changed at random while its labels
(the target speaker's units) are kept.

- Voice (``warp_mel``, on the encoder's log-mel input): the frequency axis is scaled by ``alpha`` (vocal-tract
  length perturbation, VTLP): formants and harmonics move together, as between a child, a woman and a man.
- Channel (``Perturbation.channel``, on the wav): a synthetic room (exponentially decaying noise as impulse response,
  RT60 0.1-0.9 s), additive noise at 5-40 dB SNR (white, pink, brown, hum, or babble made of other training
  utterances), a band limit (3.4-8 kHz low-pass, as telephone and 8 kHz recordings), mu-law 8-bit coding.
  No recorded noise or room: the project's real recordings are for checking, never for training.
A static EQ needs no lever: the encoder's front end removes each utterance's mean log-mel.
"""

import math
import random

import librosa
import torch
import torchaudio

from espnet_softvc.utils.shapes import N_MELS, SAMPLE_RATE

MEL_HZ = torch.from_numpy(  # centre frequency of each Soft-VC mel bin (slaney scale, 128 bins, 0-8 kHz)
    librosa.mel_frequencies(N_MELS + 2, fmin=0.0, fmax=SAMPLE_RATE / 2, htk=False)[1:-1]
).float()


def warp_mel(mel, alpha):
    """(B, M, T) log-mel, (B,) warp factors -> (B, M, T): bin ``i`` takes the value at frequency ``f_i / alpha``.

    The warp is piecewise linear (VTLP): scaled below 7 kHz, then a straight line to 8 kHz, so the band stays full.
    alpha > 1 raises the formants and the pitch (a shorter vocal tract), alpha < 1 lowers them."""
    hz = MEL_HZ.to(mel.device)[None]  # (1, M)
    nyquist, knee = SAMPLE_RATE / 2, 7000.0
    alpha = alpha[:, None].to(mel)
    low = hz / alpha
    high = knee / alpha + (hz - knee) * (nyquist - knee / alpha) / (nyquist - knee)
    source = torch.where(hz <= knee, low, high).clamp(0, nyquist)  # (B, M) source frequency of each bin
    index = torch.searchsorted(hz[0].contiguous(), source.contiguous()).clamp(1, hz.size(1) - 1)  # upper neighbour
    f0, f1 = hz[0][index - 1], hz[0][index]
    w = ((source - f0) / (f1 - f0).clamp(min=1e-6)).clamp(0, 1)[..., None]  # (B, M, 1)
    lo = mel.gather(1, (index - 1)[..., None].expand(-1, -1, mel.size(-1)))
    hi = mel.gather(1, index[..., None].expand(-1, -1, mel.size(-1)))
    return lo * (1 - w) + hi * w


def _colored_noise(length, exponent, generator):
    """(length,) Gaussian noise with a 1 / f^exponent power spectrum (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = torch.fft.rfft(torch.randn(length, generator=generator))
    f = torch.arange(spectrum.numel()).clamp(min=1).float()
    noise = torch.fft.irfft(spectrum / f ** (exponent / 2), n=length)
    return noise / noise.pow(2).mean().sqrt().clamp(min=1e-8)


class Perturbation:
    """Random voice and channel changes for a training batch. ``p_*``: probability of each lever per utterance.

    ``babble``: 16 kHz wavs (list of (S_i,)) mixed in as background speech."""

    def __init__(
        self, warp=(0.8, 1.25), p_warp=0.9, p_room=0.3, p_noise=0.5, p_band=0.2, p_mulaw=0.1, babble=(), seed=0
    ):
        self.warp, self.p_warp, self.p_room, self.p_noise = warp, p_warp, p_room, p_noise
        self.p_band, self.p_mulaw, self.babble = p_band, p_mulaw, list(babble)
        self.rng = random.Random(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def alphas(self, batch):
        """(batch,) warp factors, log-uniform in ``warp`` (1 with probability 1 - p_warp)."""
        lo, hi = (math.log(a) for a in self.warp)
        return torch.tensor(
            [math.exp(self.rng.uniform(lo, hi)) if self.rng.random() < self.p_warp else 1.0 for _ in range(batch)]
        )

    def voice(self, mel):
        """(B, M, T) log-mel -> the same with a random vocal-tract warp per utterance."""
        return warp_mel(mel, self.alphas(mel.size(0)))

    def _noise(self, length):
        kinds = ["white", "pink", "brown", "hum"] + (["babble"] if self.babble else [])
        kind = self.rng.choice(kinds)
        if kind == "hum":
            t = torch.arange(length) / SAMPLE_RATE
            base = self.rng.choice([50.0, 60.0])
            noise = sum(torch.sin(2 * math.pi * base * k * t + self.rng.uniform(0, 6.3)) / k for k in range(1, 8))
            noise = noise + 0.3 * _colored_noise(length, 1, self.generator)
        elif kind == "babble":
            noise = torch.zeros(length)
            for _ in range(self.rng.randint(1, 4)):
                wav = self.babble[self.rng.randrange(len(self.babble))]
                start = self.rng.randint(0, max(0, wav.numel() - length))
                piece = wav[start : start + length]
                noise[: piece.numel()] += piece / piece.pow(2).mean().sqrt().clamp(min=1e-8)
        else:
            noise = _colored_noise(length, {"white": 0, "pink": 1, "brown": 2}[kind], self.generator)
        return noise / noise.pow(2).mean().sqrt().clamp(min=1e-8)

    def _room(self, wav):
        rt60 = self.rng.uniform(0.1, 0.9)
        n = int(rt60 * SAMPLE_RATE)
        t = torch.arange(n) / SAMPLE_RATE
        rir = torch.randn(n, generator=self.generator) * torch.exp(-6.9 * t / rt60)  # -60 dB at rt60
        rir[0] = 1.0 / self.rng.uniform(0.2, 1.0)  # direct path first: the labels keep their timing
        rir = rir / rir.norm()
        return torchaudio.functional.fftconvolve(wav, rir)[: wav.numel()]

    def channel_one(self, wav):
        """(S,) -> (S,): room, then noise, then band limit and coding, each with its probability."""
        if self.rng.random() < self.p_room:
            wav = self._room(wav)
        if self.rng.random() < self.p_noise:
            snr = self.rng.uniform(5, 40)
            power = wav.pow(2).mean().clamp(min=1e-10)
            wav = wav + self._noise(wav.numel()) * (power / 10 ** (snr / 10)).sqrt()
        if self.rng.random() < self.p_band:
            wav = torchaudio.functional.lowpass_biquad(wav, SAMPLE_RATE, self.rng.uniform(3400, 7500))
        if self.rng.random() < self.p_mulaw:
            peak = wav.abs().max().clamp(min=1e-8)
            coded = torchaudio.functional.mu_law_encoding(wav / peak, 256)
            wav = torchaudio.functional.mu_law_decoding(coded, 256) * peak
        return wav

    def channel(self, wavs):
        """(B, S) -> (B, S): ``channel_one`` on each utterance."""
        return torch.stack([self.channel_one(w) for w in wavs])


def speed(wav, labels, factor):
    """Kaldi's speed perturbation: wav (S,) played ``factor`` times faster, labels (N,) resampled to match."""
    if factor == 1.0:
        return wav, labels
    wav = torchaudio.functional.resample(wav, int(round(SAMPLE_RATE * factor)), SAMPLE_RATE)
    n = wav.numel() // 320
    index = (torch.arange(n) * factor).long().clamp(max=labels.numel() - 1)
    return wav, labels[index]
