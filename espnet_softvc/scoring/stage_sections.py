"""The sections of RESULTS.md below the table, from the summaries other recipe stages write: voice conversion and
the units' speaker probe (stage 11), real-noise denoising (stage 7), several voices and fine-tuning (stage 12)."""

import json
from pathlib import Path

import yaml

from espnet_softvc.scoring.denoising import denoising_lines
from espnet_softvc.scoring.speakers import speaker_lines


def conversion_table(exp_dir):
    """Markdown lines of the voice-conversion scores (recipe stage 11: ``exp/softvc_<kind>/convert_<set>/score/``)
    and of the units' speaker probe (``exp/units/train_log.yaml``), or [] when there are none."""
    exp_dir = Path(exp_dir)
    lines = []
    summaries = sorted(exp_dir.glob("softvc_*/convert_*/score/summary.json"))
    if summaries:
        lines += [
            "## Voice conversion: held-out speakers and real recordings into the target voice (stage 11)",
            "",
            "| model | source set | utts | WER % | spk_sim to target | spk_sim to source | closer to target % "
            "| DNSMOS OVRL |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for path in summaries:
            summary, convert_dir = json.loads(path.read_text()), path.parent.parent
            scaled = {"closer_to_target": 100}  # a share, shown in percent
            cells = [
                f"{summary[key] * scaled.get(key, 1):.3g}" if summary.get(key) is not None else "n/a"
                for key in ("wer", "spk_sim", "spk_sim_src", "closer_to_target", "dnsmos_ovrl")
            ]
            name = convert_dir.name.removeprefix("convert_")
            lines.append(f"| {convert_dir.parent.name} | {name} | {summary['n_utts']} | {' | '.join(cells)} |")
        lines += [
            "",
            "spk_sim: resemblyzer cosine to the target's training speech (mean embedding) and to the utterance's own "
            "source speech; WER against the source text (n/a: no transcript).",
            "",
        ]
    log = exp_dir / "units" / "train_log.yaml"
    probe = (yaml.safe_load(log.read_text()) or {}).get("probe") if log.is_file() else None
    if probe:
        lines += [
            "## Speaker probe of the units (lower is better)",
            "",
            "| features | accuracy | chance | speakers | utterances |",
            "|---|---|---|---|---|",
            *(
                f"| {name} | {r['accuracy']:.3f} | {r['chance']:.3f} | {r['speakers']} | {r['utterances']} |"
                for name, r in probe.items()
            ),
            "",
        ]
    return lines


def denoising_table(exp_dir):
    """Markdown lines of the real-noise denoising evaluation (recipe stage 7: ``exp/denoiser_*/real_noise/``)."""
    lines = []
    for path in sorted(Path(exp_dir).glob("denoiser_*/real_noise/summary.json")):
        summary = json.loads(path.read_text())
        lines += [
            f"## Denoising real speech in recorded noise: `{path.parent.parent.name}` next to RNNoise and "
            "DeepFilterNet3 (stage 7)",
            "",
            *denoising_lines(summary),
            "",
            f"mel-SNR improvement (dB) of the Soft-VC log-mel; {summary['n_speech']} real speech clips x "
            f"{summary['excerpts']} excerpts of {summary['n_noises']} recorded noise(s) per SNR; clean kept: the "
            "output for the clean input scored against it; `X + ours`: our denoiser on X's output; bold: best mean.",
            "",
        ]
    return lines


def speaker_table(exp_dir):
    """Markdown lines of recipe stage 12 (``exp/speakers/<tag>/score/summary.json``: a multi-speaker model asked for
    each voice, a model before / after fine-tuning), or [] when there are none."""
    paths = sorted(Path(exp_dir).glob("speakers/*/score/summary.json"))
    summaries = {path.parent.parent.name: json.loads(path.read_text()) for path in paths}
    if not summaries:
        return []
    return [
        "## Several target voices and fine-tuning onto a new voice (stage 12)",
        "",
        "Resemblyzer cosine of the generated dev speech to each reference speaker's mean embedding (bold: the voice "
        "asked for); identified: utterances most similar to that voice.",
        "",
        *speaker_lines(summaries),
    ]
