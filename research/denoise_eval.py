"""Evaluation of the denoising postnet against classical denoisers on noise types never used in training.

Dev utterances are mixed (waveform domain, exact SNR) with brown noise, mains hum and babble of espeak-ng voices
that training never heard, at -5, 0, 5, 10, 20 dB, plus the clean input. Every method runs on the same noisy
mels (RNNoise, DeepFilterNet3 and a fusion denoiser on the same noisy waveforms); metrics on the mel against the
clean mel (the "clean" condition scores the output against its own input: do no harm); after Griffin-Lim,
PESQ-WB / ESTOI / DNSMOS on a few utterances. Writes ``results.md`` (tables and targets met/missed),
``results.csv`` (every score, mean over utterances) and ``<noise>_<snr>.png`` to out_dir.

    python research/denoise_eval.py CORPUS_DIR OUT_DIR --model unet=exp/denoiser/best.pt
"""

import argparse
import csv
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.data.corpus import sentences
from espnet_softvc.feats.log_mel import LogMelSpectrogram
from espnet_softvc.postnet import baselines, noise
from espnet_softvc.postnet.fusion import FRONT_ENDS, fusion_inputs
from espnet_softvc.scoring import metrics
from espnet_softvc.tasks.load import load_postnet
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path, find_files, load_audio
from espnet_softvc.utils.shapes import N_MELS

SNRS = (-5, 0, 5, 10, 20)
TARGET_SNRS = (0, 5, 10)
HELD_OUT_VOICES = ("en-gb-scotland", "en-029", "en-gb-x-rp+f3", "en-us-nyc+m7", "en-gb+f2", "en-gb-x-gbclan")


def held_out_babble(cache_dir, count=12):
    """16 kHz waveforms of sentences spoken by espeak-ng voices other than the corpus voice (en-us)."""
    wavs = []
    for i, text in enumerate(sentences()[-count:]):
        path = Path(cache_dir) / f"babble_{i:02d}.wav"
        if not path.exists():
            with atomic_path(path) as tmp:
                voice = HELD_OUT_VOICES[i % len(HELD_OUT_VOICES)]
                subprocess.run(["espeak-ng", "-v", voice, "-w", str(tmp), text], check=True, capture_output=True)
        wavs.append(load_audio(path).double().numpy())
    return wavs


def test_noise(kind, n, rng, babble_pool):
    if kind == "babble_heldout":
        return noise.babble(n, rng, babble_pool)
    return {"brown": noise.brown, "hum": noise.hum}[kind](n, rng)


def methods(postnets):
    """name -> fn(noisy log-mel (T, 128), noisy wav (S,), fusion inputs (T, 384): [noisy | RNNoise | DeepFilterNet3]
    log-mels) -> (T, 128); the unprocessed input first, then the classical baselines, the two denoisers people use,
    ours (a fusion denoiser takes the fusion inputs)."""
    out = {"unprocessed": lambda mel, wav, fronts: mel}
    out.update({name: (lambda mel, wav, fronts, f=f: f(mel)) for name, f in baselines.MEL_BASELINES.items()})
    out["noisereduce"] = lambda mel, wav, fronts: baselines.noisereduce_mel(wav)[: len(mel)]
    for k, method in enumerate(FRONT_ENDS, 1):
        out[method] = lambda mel, wav, fronts, k=k: fronts[:, k * N_MELS : (k + 1) * N_MELS]
    for name, model in postnets.items():
        if getattr(model, "front_ends", None) is not None:
            out[name] = lambda mel, wav, fronts, m=model: m(fronts[None])[0]
        else:
            out[name] = lambda mel, wav, fronts, m=model: m(mel[None])[0]
    return out


def waveform_scores(mel, clean_wav, vocoder):
    """PESQ-WB, ESTOI and DNSMOS (overall) of the Griffin-Lim waveform of ``mel`` against the clean waveform."""
    from pesq import pesq
    from pystoi import stoi
    from speechmos import dnsmos

    wav = vocoder(mel).numpy()
    ref = clean_wav[: wav.size]
    wav = wav[: ref.size]
    return {
        "pesq": pesq(16000, ref, wav, "wb"),
        "estoi": stoi(ref, wav, 16000, extended=True),
        "dnsmos": float(dnsmos.run(wav.astype(np.float32), sr=16000)["ovrl_mos"]),
    }


def plot(path, panels, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), sharex=True)
    for ax, (name, mel) in zip(axes, panels.items()):
        ax.imshow(np.asarray(mel).T, origin="lower", aspect="auto", vmin=-11.5, vmax=3, cmap="magma")
        ax.set_ylabel(name)
    axes[0].set_title(title)
    axes[-1].set_xlabel("frame (10 ms)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


@torch.inference_mode()
def evaluate(corpus, out_dir, postnets, wave_utts=2, seed=0, am_pairs=None):
    """Score every method on every (noise, SNR) condition; returns {(method, noise, snr): {metric: mean}}."""
    from espnet_softvc.vocoders import GriffinLim

    out_dir = Path(out_dir)
    logmel, vocoder = LogMelSpectrogram(), GriffinLim()
    dev = [load_audio(p).double().numpy() for p in find_files(Path(corpus) / "wavs" / "dev", ".wav")]
    babble_pool = held_out_babble(out_dir / "babble_voices")
    conditions = [("clean", None)] + [(kind, snr) for kind in noise.TEST_NOISES for snr in SNRS]
    fns = methods(postnets)
    scores = defaultdict(lambda: defaultdict(list))
    for c, (kind, snr) in enumerate(tqdm(conditions, desc="conditions")):
        for u, wav in enumerate(dev):
            rng = np.random.default_rng((seed, c, u))
            noisy = wav if kind == "clean" else noise.mix(wav, test_noise(kind, wav.size, rng, babble_pool), snr)
            clean_mel, noisy_mel = (logmel(torch.as_tensor(x, dtype=torch.float32)).T for x in (wav, noisy))
            noisy_wav = torch.as_tensor(noisy, dtype=torch.float32)
            fronts = fusion_inputs(noisy_wav)
            outputs = {name: fn(noisy_mel, noisy_wav, fronts) for name, fn in fns.items()}
            for name, est in outputs.items():
                row = scores[(name, kind, snr)]
                for metric, value in metrics.mel_scores(est, clean_mel).items():
                    row[metric].append(min(value, 100.0))
                if kind != "clean":
                    row["mel_snr_gain"].append(row["mel_snr"][-1] - scores[("unprocessed", kind, snr)]["mel_snr"][-1])
                if u < wave_utts and snr in (None, 0, 10):
                    for metric, value in waveform_scores(est, wav, vocoder).items():
                        row[metric].append(value)
            if u < wave_utts and snr in (None, 0, 10):
                for metric, value in waveform_scores(clean_mel, wav, vocoder).items():
                    scores[("clean_mel_ceiling", kind, snr)][metric].append(value)
            if u == 0:
                best = list(postnets)[-1] if postnets else "spectral_subtraction"
                panels = {
                    "noisy": noisy_mel,
                    f"{best}": outputs[best],
                    "spectral_subtraction": outputs["spectral_subtraction"],
                    "clean": clean_mel,
                }
                plot(out_dir / f"{kind}_{snr if snr is not None else 'inf'}dB.png", panels, f"{kind} {snr} dB")
    results = {key: {m: float(np.mean(v)) for m, v in row.items()} for key, row in scores.items()}
    if am_pairs is not None:
        results.update(acoustic_model_scores(am_pairs, postnets))
    return results


def acoustic_model_scores(am_pairs, postnets):
    """Free-running acoustic-model output vs ground truth, before and after each postnet (L1 and mel-SNR)."""
    data = np.load(am_pairs)
    results = {}
    mel_postnets = {k: p for k, p in postnets.items() if getattr(p, "front_ends", None) is None}  # no wav here
    fns = {"unprocessed": lambda m: m, **{k: (lambda m, p=p: p(m[None])[0]) for k, p in mel_postnets.items()}}
    for name, fn in fns.items():
        rows = defaultdict(list)
        for key in (k for k in data.files if k.startswith("gen_")):
            gen, ref = torch.as_tensor(data[key]), torch.as_tensor(data["ref_" + key[4:]])
            for metric, value in metrics.mel_scores(fn(gen), ref).items():
                rows[metric].append(value)
        results[(name, "acoustic_model", None)] = {m: float(np.mean(v)) for m, v in rows.items()}
    return results


def report(results, postnets):
    """Markdown tables and the target verdicts."""
    names = list(dict.fromkeys(name for name, *_ in results))

    def mean(name, kinds, snrs, metric):
        return np.mean([results[(name, k, s)].get(metric, np.nan) for k in kinds for s in snrs])

    lines = [
        "## Denoising on unseen noise (brown, hum, babble of held-out voices); mean over dev utterances",
        "",
        "mel-SNR improvement (dB) per input SNR, mean over the 3 noise types; 'clean' = mel-SNR of the output "
        "against the clean input (do no harm); other columns: mean over 0-10 dB inputs.",
        "",
        "| method | "
        + " | ".join(f"ΔmelSNR {s} dB" for s in SNRS)
        + " | clean in (dB) | segSNR | LSD | L1 | MCD | PESQ | ESTOI | DNSMOS |",
        "|---" * (len(SNRS) + 9) + "|",
    ]
    kinds = noise.TEST_NOISES
    for name in names:
        if (name, "brown", 0) not in results:
            continue
        gains = [f"{mean(name, kinds, [s], 'mel_snr_gain'):+.2f}" if name != "clean_mel_ceiling" else "" for s in SNRS]
        if name == "clean_mel_ceiling":
            cells = ["∞"] + [""] * 4
        else:
            cells = [f"{results[(name, 'clean', None)]['mel_snr']:.1f}"] + [
                f"{mean(name, kinds, TARGET_SNRS, m):.2f}" for m in ("seg_mel_snr", "lsd", "l1", "mcd")
            ]
        wave = [f"{mean(name, kinds, (0, 10), m):.2f}" for m in ("pesq", "estoi", "dnsmos")]
        lines.append(f"| {name} | " + " | ".join(gains + cells + wave) + " |")
    lines += [
        "",
        "Per noise type, mean mel-SNR improvement (dB) over 0, 5, 10 dB inputs:",
        "",
        "| method | " + " | ".join(kinds) + " |",
        "|---" * (len(kinds) + 1) + "|",
    ]
    for name in names:
        if (name, "brown", 0) in results and name != "clean_mel_ceiling":
            lines.append(
                f"| {name} | "
                + " | ".join(f"{mean(name, [k], TARGET_SNRS, 'mel_snr_gain'):+.2f}" for k in kinds)
                + " |"
            )
    am = {name: r for (name, kind, _), r in results.items() if kind == "acoustic_model"}
    if am:
        lines += [
            "",
            "Acoustic model, free-running on dev, against ground truth:",
            "",
            "| output | L1 | mel-SNR (dB) | LSD | MCD |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {n} | {r['l1']:.3f} | {r['mel_snr']:.2f} | {r['lsd']:.2f} | {r['mcd']:.2f} |" for n, r in am.items()
        ]
        lines += [
            "",
            "(Standalone postnets on the acoustic model's output; Soft-VC's postnet option, trained on that "
            "output with the model frozen, is scored by the recipe's RESULTS.md.)",
        ]
    lines += ["", "Targets:", ""]
    classical = [n for n in names if n not in postnets and n not in ("unprocessed", "clean_mel_ceiling")]
    for name in postnets:
        for s in TARGET_SNRS:
            ours = mean(name, kinds, [s], "mel_snr_gain")
            rival = max(classical, key=lambda n: mean(n, kinds, [s], "mel_snr_gain"))
            margin = ours - mean(rival, kinds, [s], "mel_snr_gain")
            lines.append(
                f"- {name}, {s} dB input: ΔmelSNR {ours:+.2f} dB vs best baseline {rival} "
                f"({margin:+.2f} dB; target >= +3): {'MET' if margin >= 3 else 'MISSED'}"
            )
        harm = results[(name, "clean", None)]["mel_snr"]
        lines.append(f"- {name}, clean input: {harm:.1f} dB (target >= 30): {'MET' if harm >= 30 else 'MISSED'}")
        if name in am:
            cut = 1 - am[name]["l1"] / am["unprocessed"]["l1"]
            lines.append(
                f"- {name}, acoustic-model free-running L1 reduced by {100 * cut:.1f} % (target >= 10 %): "
                f"{'MET' if cut >= 0.1 else 'MISSED'}"
            )
    return "\n".join(lines) + "\n"


def write(results, out_dir, postnets):
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "noise", "snr_db", "metric", "value"])
        for (name, kind, snr), row in sorted(results.items(), key=str):
            writer.writerows([name, kind, "" if snr is None else snr, m, f"{v:.4f}"] for m, v in row.items())
    text = report(results, postnets)
    with atomic_path(out_dir / "results.md") as tmp:
        tmp.write_text(text)
    return text


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate denoising postnets and classical baselines.")
    parser.add_argument("corpus", type=Path, help="LJSpeech-layout corpus (wavs/dev used)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH of a postnet (repeatable)")
    parser.add_argument("--am_pairs", type=Path, help=".npz of gen_<id>/ref_<id> acoustic-model dev mels")
    parser.add_argument("--wave_utts", type=int, default=2, help="utterances scored after Griffin-Lim")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    postnets = {}
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep:
            raise UserError(f"--model {spec}: expected NAME=PATH")
        postnets[name] = load_postnet(path)  # an ESPnet model file (config.yaml beside it) or a research checkpoint
    results = evaluate(args.corpus, args.out_dir, postnets, args.wave_utts, am_pairs=args.am_pairs)
    print(write(results, args.out_dir, postnets))


if __name__ == "__main__":
    main()
