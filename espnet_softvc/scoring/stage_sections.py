"""The sections of RESULTS.md below the table, from the summaries other recipe stages write: voice conversion and
the units' speaker probe (stage 11), real-noise denoising (stage 7), several voices and fine-tuning (stage 12)."""

import json
from pathlib import Path

import yaml

from espnet_softvc.scoring.denoising import denoising_lines, judged_lines
from espnet_softvc.scoring.speakers import speaker_lines

CONVERSION_KEYS = ("wer", "cer", "spk_sim", "spk_sim_src", "closer_to_target", "dnsmos_ovrl")


def _conversion_row(name, summary):
    """One row of the conversion table: ``name`` then the utterance count and the scores of ``CONVERSION_KEYS``."""
    scaled = {"closer_to_target": 100}  # a share, shown in percent
    cells = [
        f"{summary[key] * scaled.get(key, 1):.3g}" if summary.get(key) is not None else "n/a" for key in CONVERSION_KEYS
    ]
    if summary.get("reference_text") == "asr" and summary.get("wer") is not None:
        cells[0] += " [a]"
    return f"| {name} | {summary['n_utts']} | {' | '.join(cells)} |"


def conversion_table(exp_dir):
    """Markdown lines of the voice-conversion scores in the form of the paper's Table 1 (recipe stage 11: per source
    set, the sources ``exp/convert_sources/<set>/score/`` then each model ``exp/softvc_<kind>/convert_<set>/score/``)
    and of the units' speaker probe (``exp/units/train_log.yaml``), or [] when there are none."""
    exp_dir = Path(exp_dir)
    lines = []
    summaries = sorted(exp_dir.glob("softvc_*/convert_*/score/summary.json"))
    sets = sorted({path.parent.parent.name.removeprefix("convert_") for path in summaries})
    if sets:
        lines += [
            "## Voice conversion: held-out speakers and real recordings into the target voice (stage 11)",
            "",
            "| source set: units | utts | WER % | CER % | similarity to target | similarity to source "
            "| closer to target % | DNSMOS OVRL |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for dset in sets:
            source = exp_dir / "convert_sources" / dset / "score" / "summary.json"
            if source.is_file():
                lines.append(_conversion_row(f"{dset}: source (ground truth)", json.loads(source.read_text())))
            for path in sorted(exp_dir.glob(f"softvc_*/convert_{dset}/score/summary.json")):
                kind = path.parent.parent.parent.name.removeprefix("softvc_")
                lines.append(_conversion_row(f"{dset}: {kind}", json.loads(path.read_text())))
        lines += [
            "",
            "Similarity: resemblyzer cosine to the target's training speech (mean embedding) and to the utterance's "
            "own source speech. WER / CER: pocketsphinx against the source text; [a] a set without text: against the "
            "ASR's transcript of the source (n/a for the source itself).",
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
    """Markdown lines of the real-noise denoising evaluation (recipe stage 7: ``exp/denoiser_*/real_noise*/``: the
    real clips, the transcribed real speech), with what the judges hear where it was judged."""
    lines = []
    for path in sorted(Path(exp_dir).glob("denoiser_*/real_noise*/summary.json")):
        summary = json.loads(path.read_text())
        lines += [
            f"## Denoising real speech in recorded noise: `{path.parent.parent.name}` next to RNNoise and "
            f"DeepFilterNet3 (stage 7, `{path.parent.name}`)",
            "",
            *denoising_lines(summary),
            "",
            f"mel-SNR improvement (dB) of the Soft-VC log-mel; {summary['n_speech']} real speech clips x "
            f"{summary['excerpts']} excerpts of {summary['n_noises']} recorded noise(s) per SNR; clean kept: the "
            "output for the clean input scored against it; `X + ours`: our denoiser on X's output; bold: best mean.",
            "",
        ]
        if "judged" in summary:
            reference = "the transcripts" if summary.get("reference_text") == "text" else "the ASR's transcripts"
            lines += [
                *judged_lines(summary["judged"]),
                "",
                f"What the outside judges hear: pocketsphinx WER % (against {reference} of the clean speech) / "
                "DNSMOS OVRL, on one excerpt per clip and SNR; `X, vocoded`: X's log-mel through the vocoder "
                "(Griffin-Lim by default), so that `ours, vocoded` compares with `deepfilternet3, vocoded`.",
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
