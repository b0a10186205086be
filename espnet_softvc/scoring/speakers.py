"""Whose voice is it? Resemblyzer similarity of generated speech to several reference speakers (recipe stage 12:
a multi-speaker model asked for each of its voices, and a model before and after fine-tuning onto a new voice).

``speaker_scores(refs, preds, out_dir)``: ``refs`` {speaker: wavs} (each speaker's mean embedding), ``preds``
[(label, intended speaker, wavs)] (wavs: a directory or a Kaldi ``wav.scp``, as ``softvc-score`` reads them).
Writes ``out_dir/scores.csv`` (a row per generated utterance: its similarity to every reference speaker),
``out_dir/summary.json`` (per label: mean similarity to every speaker, to the intended one, to the closest other
one, and ``identified``, the share of utterances most similar to the intended speaker) and ``out_dir/speakers.png``
(the labels x speakers matrix of mean similarities).
"""

import csv
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from espnet_softvc.scoring import judges
from espnet_softvc.scoring.score import read_wavs
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path


def speaker_scores(refs, preds, out_dir):
    """Score ``preds`` against ``refs`` (module docstring); returns the summary."""
    speakers = list(refs)
    for label, intended, _ in preds:
        if intended not in refs:
            raise UserError(f"{label}: intended speaker {intended} has no reference wavs (given: {', '.join(refs)})")
    centroids = {}
    for speaker, source in refs.items():
        wavs = read_wavs(source, f"reference of {speaker}")
        if not wavs:
            raise UserError(f"{source}: no reference wavs for speaker {speaker}")
        centroids[speaker] = judges.mean_embedding([judges.speaker_embedding(w) for w in wavs.values()])
    matrix = np.stack([centroids[s] for s in speakers])  # (speakers, 256)
    rows, summary = [], {"speakers": speakers, "rows": []}
    for label, intended, source in preds:
        wavs = read_wavs(source, label)
        if not wavs:
            raise UserError(f"{source}: no wavs to score for {label}")
        sims = np.stack([matrix @ judges.speaker_embedding(w) for w in tqdm(wavs.values(), desc=label)])  # (U, S)
        rows += [dict(label=label, utt=utt, intended=intended, **dict(zip(speakers, s))) for utt, s in zip(wavs, sims)]
        k = speakers.index(intended)
        others = np.delete(sims, k, axis=1)
        summary["rows"].append(
            {
                "label": label,
                "intended": intended,
                "n_utts": len(wavs),
                "sim": dict(zip(speakers, sims.mean(0).tolist())),
                "sim_intended": float(sims[:, k].mean()),
                "sim_best_other": float(others.max(1).mean()) if others.size else float("nan"),
                "identified": float((sims.argmax(1) == k).mean()),
            }
        )
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "scores.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, ["label", "utt", "intended", *speakers])
        writer.writeheader()
        writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    plot(summary, out_dir / "speakers.png")
    return summary


def plot(summary, path):
    """The labels x reference speakers matrix of mean similarities, each cell annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speakers, rows = summary["speakers"], summary["rows"]
    values = np.array([[r["sim"][s] for s in speakers] for r in rows])
    fig, ax = plt.subplots(figsize=(1.2 * len(speakers) + 3, 0.5 * len(rows) + 1.5))
    image = ax.imshow(values, cmap="viridis", vmin=min(0.5, values.min()), vmax=1.0, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.85 else "k", fontsize=8)
    ax.set_xticks(range(len(speakers)), speakers, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [f"{r['label']} (as {r['intended']})" for r in rows])
    ax.set_xlabel("reference speaker")
    fig.colorbar(image, ax=ax, label="resemblyzer cosine")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def speaker_lines(summaries):
    """Markdown lines of stage-12 summaries {title: summary}: one table each, a column per reference speaker."""
    lines = []
    for title, summary in summaries.items():
        speakers = summary["speakers"]
        lines += [
            f"### {title}",
            "",
            f"| generated | as | utts | {' | '.join(speakers)} | identified % |",
            "|---|---|---|" + "---|" * len(speakers) + "---|",
        ]
        for r in summary["rows"]:
            cells = [f"**{r['sim'][s]:.3f}**" if s == r["intended"] else f"{r['sim'][s]:.3f}" for s in speakers]
            head = f"| {r['label']} | {r['intended']} | {r['n_utts']} |"
            lines.append(f"{head} {' | '.join(cells)} | {100 * r['identified']:.0f} |")
        lines.append("")
    return lines
