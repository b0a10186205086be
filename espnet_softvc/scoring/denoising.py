"""Denoising on real speech with recorded noise, against the denoisers people use (issue 19).

Each speech wav is mixed (``noise.mix``, exact SNR) with ``excerpts`` random excerpts of the recorded noises at every
SNR; every method gets the same noisy waveform: unprocessed, mel spectral subtraction, RNNoise, DeepFilterNet3
(``postnet.external``, delay compensated) and, given, our denoiser on the noisy mel and after each front end (a
fusion denoiser, ``postnet.fusion``: on the noisy mel with the front ends' outputs). The
score is the mel-SNR improvement (``mel_snr(output) - mel_snr(noisy)``, Soft-VC log-mel against the clean mel);
"clean kept" is the mel-SNR of the output of the clean input against itself.
"""

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.postnet import baselines, external, noise
from espnet_softvc.scoring.metrics import mel_snr

SNRS = (0, 5, 10)
CLEAN = "clean"


def mel_of(wav):
    """(S,) 16 kHz waveform -> (T, 128) Soft-VC log-mel tensor."""
    return torch.from_numpy(logmel(torch.as_tensor(wav, dtype=torch.float32)).T)


def mixtures(speech, noises, snrs=SNRS, excerpts=3, seed=0):
    """Yields (u, condition, clean, noisy) for speech wav u: ("clean", clean) first, then ``excerpts`` mixtures with
    random excerpts of random ``noises`` per SNR (condition str(snr)), seeded by (seed, u, excerpt, snr)."""
    for u, clean in enumerate(speech):
        yield u, CLEAN, clean, clean
        for snr in snrs:
            for k in range(excerpts):
                rng = np.random.default_rng((seed, u, k, snr))
                recording = noises[rng.integers(len(noises))]
                yield u, str(snr), clean, noise.mix(clean, noise.excerpt(recording, clean.size, rng), snr)


@torch.inference_mode()
def real_noise_scores(speech, noises, postnet=None, snrs=SNRS, excerpts=3, seed=0, extra=None):
    """speech, noises: lists of 16 kHz waveforms (S,); postnet: a ``DenoisingPostnet`` or None; ``extra``: a function
    of the outputs ({method: (T, 128) log-mel}) returning more of them. Returns {method: {"clean" or str(snr): mean
    dB}}: the improvement per SNR, the mel-SNR kept on clean input."""
    scores = {}
    conditions = mixtures(speech, noises, snrs, excerpts, seed)
    for _, condition, clean, noisy in tqdm(
        conditions, desc="real-noise mixtures", total=len(speech) * (1 + len(snrs) * excerpts)
    ):
        if condition == CLEAN:  # each wav's first condition
            ref = mel_of(clean)
        noisy_mel = ref if condition == CLEAN else mel_of(noisy)
        outs = {"unprocessed": noisy_mel, "mel spectral subtraction": baselines.spectral_subtraction(noisy_mel)}
        outs.update({method: mel_of(external.denoise(noisy, 16000, method)) for method in external.METHODS})
        fronts = getattr(postnet, "front_ends", None)  # a fusion denoiser takes their outputs with the noisy mel
        if fronts is not None:
            outs["ours"] = postnet(torch.cat([noisy_mel] + [outs[m] for m in fronts], 1)[None])[0]
        elif postnet is not None:
            for source in ("unprocessed", *external.METHODS):
                name = "ours" if source == "unprocessed" else f"{source} + ours"
                outs[name] = postnet(outs[source][None])[0]
        if extra is not None:
            outs.update(extra(outs))
        base = 0.0 if condition == CLEAN else mel_snr(noisy_mel, ref)
        for method, est in outs.items():
            scores.setdefault(method, {}).setdefault(condition, []).append(min(mel_snr(est, ref), 100.0) - base)
    return {method: {c: float(np.mean(v)) for c, v in row.items()} for method, row in scores.items()}


def denoising_lines(summary):
    """Markdown table of ``real_noise_scores``' output (+ its "n_speech" / "n_noises" counts), best mean marked."""
    table = summary["scores"]
    snrs = [c for c in next(iter(table.values())) if c != CLEAN]
    means = {m: np.mean([row[c] for c in snrs]) for m, row in table.items()}
    best = max((m for m in means if m != "unprocessed"), key=means.get)
    lines = [
        "| method | " + " | ".join(f"{c} dB" for c in snrs) + " | mean | clean kept (dB) |",
        "|---|" + "---|" * (len(snrs) + 2),
    ]
    for method, row in table.items():
        mean = f"**{means[method]:+.2f}**" if method == best else f"{means[method]:+.2f}"
        cells = " | ".join(f"{row[c]:+.2f}" for c in snrs)
        lines.append(f"| {method} | {cells} | {mean} | {row[CLEAN]:.1f} |")
    return lines
