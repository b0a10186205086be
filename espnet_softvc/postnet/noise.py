"""Seeded noise synthesis and waveform-domain mixing for training and evaluating the denoising postnet.

All functions work on 16 kHz float numpy waveforms and take a ``numpy.random.Generator``, so a (seed, index)
pair always gives the same corruption. Training uses ``TRAIN_NOISES`` (plus reverberation); the evaluation uses
only ``TEST_NOISES``, which training never sees (brown noise, mains hum, babble of other espeak-ng voices).
Training noise is made far more varied than the test noise (random spectra, random non-harmonic tones and
whines, low-frequency rumble, babble of speed/pitch-perturbed talkers, mixtures of two kinds), so that the postnet
learns to use the noise estimate rather than to recognise a few noise shapes.
"""

import numpy as np
from scipy.signal import fftconvolve

SAMPLE_RATE = 16000


def _shaped(n, rng, log_gain):
    """White Gaussian noise of n samples filtered by ``log_gain(freqs_hz) -> natural-log amplitude``."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec *= np.exp(log_gain(np.maximum(freqs, 20.0)))
    noise = np.fft.irfft(spec, n)
    return noise / (noise.std() + 1e-12)


def white(n, rng):
    return rng.standard_normal(n)


def pink(n, rng):
    """-3 dB/octave."""
    return _shaped(n, rng, lambda f: -0.5 * np.log(f))


def brown(n, rng):
    """-6 dB/octave (evaluation only)."""
    return _shaped(n, rng, lambda f: -np.log(f))


def coloured(n, rng):
    """Stationary noise with a random spectrum: random tilt (-9..+3 dB/octave) plus 1-6 random resonances."""
    tilt = rng.uniform(-1.5, 0.5)
    centres, widths = rng.uniform(np.log(60), np.log(7800), (2, rng.integers(1, 7)))
    widths = rng.uniform(0.05, 1.0, centres.size)
    heights = rng.uniform(-1.0, 4.0, centres.size)

    def log_gain(f):
        bumps = heights[:, None] * np.exp(-0.5 * ((np.log(f)[None] - centres[:, None]) / widths[:, None]) ** 2)
        return tilt * np.log(f) + bumps.sum(0)

    return _shaped(n, rng, log_gain)


def modulated_envelope(n, rng):
    """A slow random amplitude envelope (n,): a 0.3-4 Hz sinusoid in dB, depth up to 20 dB."""
    t = np.arange(n) / SAMPLE_RATE
    rate, depth = rng.uniform(0.3, 4.0), rng.uniform(0.3, 1.0)
    return 10 ** (-depth * (1 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))))


def modulated(n, rng):
    """Coloured noise under a slow random amplitude envelope (0.3-4 Hz, depth up to 20 dB)."""
    envelope = modulated_envelope(n, rng)
    return coloured(n, rng) * envelope


def tonal(n, rng):
    """1-12 sinusoids at random (non-harmonic) frequencies 40-7500 Hz, each slowly drifting by up to +-10 %
    (whine), random levels, over low coloured noise 10-40 dB down."""
    t = np.arange(n) / SAMPLE_RATE
    count = rng.integers(1, 13)
    freqs = np.exp(rng.uniform(np.log(40), np.log(7500), count))
    drift = rng.uniform(0, 0.1, (count, 1)) * np.sin(2 * np.pi * rng.uniform(0.05, 2, count)[:, None] * t)
    phases = 2 * np.pi * np.cumsum(freqs[:, None] * (1 + drift), axis=1) / SAMPLE_RATE
    tones = (10 ** rng.uniform(-1.5, 0, count)[:, None] * np.sin(phases + rng.uniform(0, 2 * np.pi, (count, 1)))).sum(0)
    tones /= tones.std() + 1e-12
    return tones + 10 ** (-rng.uniform(0.5, 2)) * coloured(n, rng)


def hum(n, rng):
    """Mains hum (evaluation only): 50 or 60 Hz and its harmonics up to 4 kHz with random decaying levels."""
    f0 = rng.choice([50.0, 60.0])
    t = np.arange(n) / SAMPLE_RATE
    harmonics = np.arange(1, int(4000 // f0) + 1)
    amps = harmonics ** -rng.uniform(0.5, 1.5) * rng.uniform(0.5, 1.0, harmonics.size)
    phases = rng.uniform(0, 2 * np.pi, harmonics.size)
    return (amps[:, None] * np.sin(2 * np.pi * f0 * harmonics[:, None] * t + phases[:, None])).sum(0)


def rumble(n, rng):
    """Low-frequency rumble (wind, traffic, ventilation, handling): noise under a random low-pass at 25-250 Hz
    falling 12-36 dB/octave above it (flat below 20 Hz), with a slow random amplitude envelope half of the time."""
    cutoff, order = np.exp(rng.uniform(np.log(25), np.log(250))), rng.uniform(1, 3)
    out = _shaped(n, rng, lambda f: -order * np.log1p((f / cutoff) ** 2))
    out = out * (modulated_envelope(n, rng) if rng.random() < 0.5 else 1.0)
    return out / (out.std() + 1e-12)


def babble(n, rng, pool, talkers=(3, 8), speed=None):
    """Sum of 3-8 random excerpts from ``pool`` (a list of waveforms: other utterances), each at unit power;
    with ``speed=(lo, hi)`` each talker is resampled by a random factor in that range (tempo, pitch and formants
    move together: other voices out of one)."""
    out = np.zeros(n)
    for _ in range(rng.integers(talkers[0], talkers[1] + 1)):
        wav = pool[rng.integers(len(pool))]
        if speed is not None:
            wav = np.interp(np.arange(0, wav.size - 1, rng.uniform(*speed)), np.arange(wav.size), wav)
        wav = np.tile(wav, int(np.ceil(n / wav.size)) + 1)
        start = rng.integers(wav.size - n + 1)
        out += wav[start : start + n] / (wav.std() + 1e-12)
    return out


def reverberate(speech, rng):
    """Speech convolved with a synthetic room impulse response (exponentially decaying noise, RT60 0.2-0.8 s)."""
    rt60 = rng.uniform(0.2, 0.8)
    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    rir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 + abs(rir[0])  # the direct path
    wet = fftconvolve(speech, rir)[: speech.size]
    return wet * np.sqrt((speech**2).sum() / ((wet**2).sum() + 1e-12))


def mix(speech, noise, snr_db):
    """``speech + g * noise`` with g chosen so that 10 log10(sum speech^2 / sum (g noise)^2) == snr_db exactly."""
    gain = np.sqrt((speech**2).sum() / ((noise**2).sum() * 10 ** (snr_db / 10) + 1e-30))
    return speech + gain * noise


def snr(speech, noisy):
    """SNR in dB of ``noisy`` against its clean ``speech`` (waveform domain)."""
    return 10 * np.log10((speech**2).sum() / ((noisy - speech) ** 2).sum())


STATIONARY = {
    "white": white,
    "pink": pink,
    "coloured": coloured,
    "modulated": modulated,
    "tonal": tonal,
    "rumble": rumble,
}
TRAIN_NOISES = (*STATIONARY, "babble")
TEST_NOISES = ("brown", "hum", "babble_heldout")
BABBLE_SPEED = (0.75, 1.35)


def excerpt(recording, n, rng):
    """n samples of a recorded noise (16 kHz waveform) from a random start, looped if shorter, unit power."""
    wav = np.tile(recording, int(np.ceil(n / recording.size)) + 1)
    start = rng.integers(wav.size - n + 1)
    out = wav[start : start + n]
    return out / (out.std() + 1e-12)


def train_noise(kind, n, rng, babble_pool, recorded=()):
    """n samples of the training noise ``kind`` (one of ``TRAIN_NOISES``, or "recorded": an excerpt of one of the
    waveforms ``recorded``), unit power."""
    if kind == "recorded":
        return excerpt(recorded[rng.integers(len(recorded))], n, rng)
    if kind == "babble":
        out = babble(n, rng, babble_pool, speed=BABBLE_SPEED)
        return out / (out.std() + 1e-12)
    return STATIONARY[kind](n, rng)


def corrupt(speech, rng, babble_pool, snr_range=(-5.0, 20.0), p_clean=0.1, p_reverb=0.2, p_mixture=0.3, recorded=()):
    """A training corruption of ``speech``: one of ``TRAIN_NOISES`` (or with ``p_mixture`` the sum of two, at
    a random level ratio) at a uniform SNR, sometimes reverberated, sometimes left clean (so that the postnet
    learns to leave clean speech alone). With ``recorded`` noises (16 kHz waveforms, e.g. MUSAN's) half of the
    noises are excerpts of them, the other half synthetic. Returns (noisy, kind)."""
    if rng.random() < p_clean:
        return speech.copy(), "clean"
    kinds = list(rng.choice(TRAIN_NOISES, 2 if rng.random() < p_mixture else 1, replace=False))
    if len(recorded):
        kinds = ["recorded" if rng.random() < 0.5 else k for k in kinds]
    wet = reverberate(speech, rng) if rng.random() < p_reverb else speech  # same power as speech
    noise = sum(10 ** rng.uniform(-1, 0) * train_noise(k, speech.size, rng, babble_pool, recorded) for k in kinds)
    return mix(wet, noise, rng.uniform(*snr_range)), "+".join(kinds)
