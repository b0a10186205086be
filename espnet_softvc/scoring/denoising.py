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
from espnet_softvc.scoring import judges
from espnet_softvc.scoring.metrics import mel_snr
from espnet_softvc.vocoders import GriffinLim

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


def ours(postnet, noisy_mel, mels):
    """Our denoiser's (T, 128) log-mel for a noisy one: a fusion denoiser (``postnet.fusion``) also takes its front
    ends' outputs, from ``mels`` ({method: (T, 128) log-mel})."""
    fronts = getattr(postnet, "front_ends", None) or ()
    return postnet(torch.cat([noisy_mel] + [mels[m] for m in fronts], 1)[None])[0]


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
        if getattr(postnet, "front_ends", None) is not None:
            outs["ours"] = ours(postnet, noisy_mel, outs)
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


@torch.inference_mode()
def judged_scores(speech, noises, postnet=None, texts=None, vocoder=None, snrs=SNRS, seed=0):
    """What a listener gets (issue 33): each speech wav (16 kHz, (S,)) clean and in one excerpt of the recorded
    ``noises`` per SNR (``mixtures``' first), heard as it is, after RNNoise and after DeepFilterNet3 (their
    waveforms), and through ``vocoder`` (default Griffin-Lim): the unprocessed and DeepFilterNet3 mels (what the
    vocoder alone costs) and our denoiser's. Judged by pocketsphinx (WER against ``texts``, else against its own
    transcript of the clean speech) and DNSMOS OVRL. Returns {method: {"clean" or str(snr): {"wer", "dnsmos"}}}."""
    vocoder = vocoder or GriffinLim()
    references = list(texts) if texts is not None else [judges.transcribe(wav) for wav in speech]
    heard = {}  # (method, condition) -> [(reference, hypothesis, dnsmos)]
    conditions = mixtures(speech, noises, snrs, excerpts=1, seed=seed)
    for u, condition, _, noisy in tqdm(conditions, desc="judged mixtures", total=len(speech) * (1 + len(snrs))):
        wavs = {"unprocessed": noisy, **{m: external.denoise(noisy, 16000, m) for m in external.METHODS}}
        mels = {m: mel_of(wav) for m, wav in wavs.items()}
        vocoded = {"unprocessed": mels["unprocessed"], "deepfilternet3": mels["deepfilternet3"]}
        if postnet is not None:
            vocoded["ours"] = ours(postnet, mels["unprocessed"], mels)
        wavs.update({f"{m}, vocoded": vocoder(mel).numpy() for m, mel in vocoded.items()})
        for method, wav in wavs.items():
            score = (references[u], judges.transcribe(wav), judges.dnsmos(wav)["dnsmos_ovrl"])
            heard.setdefault((method, condition), []).append(score)
    table = {}
    for (method, condition), scores in heard.items():
        refs, hyps, mos = zip(*scores)
        table.setdefault(method, {})[condition] = {"wer": judges.error_rates(refs, hyps)[0], "dnsmos": np.mean(mos)}
    return table


def judged_lines(table):
    """Markdown table of ``judged_scores``: WER % / DNSMOS OVRL per method and condition."""
    conditions = list(next(iter(table.values())))
    lines = ["| method | " + " | ".join(f"{c} (dB)" if c != CLEAN else c for c in conditions) + " |"]
    lines.append("|---|" + "---|" * len(conditions))
    for method, row in table.items():
        cells = " | ".join(f"{row[c]['wer']:.1f} / {row[c]['dnsmos']:.2f}" for c in conditions)
        lines.append(f"| {method} | {cells} |")
    return lines
