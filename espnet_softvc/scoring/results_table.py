"""The results table: its columns and method notes, one ``Row`` per model variation, and the Markdown (every n/a
with its reason as a footnote) and CSV it is written as."""

import csv
import math
from dataclasses import dataclass, field

from espnet_softvc.utils.io import atomic_path

COLUMNS = {  # key: (header, format)
    "l1_train": ("L1 train", "{:.3f}"),
    "l1_valid_tf": ("L1 valid (teacher-forced)", "{:.3f}"),
    "l1_valid_fr": ("L1 valid (free-running)", "{:.3f}"),
    "ga_loss": ("guided-attention loss (valid)", "{:.2e}"),
    "mel_snr": ("mel-SNR (dB)", "{:.2f}"),
    "lsd": ("LSD (dB)", "{:.2f}"),
    "mcd": ("MCD (dB)", "{:.2f}"),
    "wer": ("WER (%)", "{:.1f}"),
    "spk_sim": ("speaker similarity", "{:.3f}"),
    "dnsmos": ("DNSMOS OVRL", "{:.2f}"),
    "length_error": ("length error (%)", "{:.1f}"),
    "params": ("parameters", "{:,.0f}"),
    "epochs": ("epochs", "{:.0f}"),
    "train_time": ("training time (s)", "{:.0f}"),
    "rtf": ("RTF", "{:.3f}"),
}
MEL_COLUMNS = {  # the free-running columns: column -> key of ``mel_scores.score``
    "l1_valid_fr": "l1",
    "mel_snr": "mel_snr",
    "lsd": "lsd",
    "mcd": "mcd",
    "length_error": "length_error",
}
METHOD_NOTES = [
    "All mel distances are computed on raw natural-log mels (Soft-VC's scale): Soft-VC outputs them directly; "
    "the GlobalMVN baselines are read back denormalized (`denorm/feats.scp`). Means over utterances.",
    "L1 = mean |log-mel difference| per bin and frame. L1 / mel-SNR / LSD compare frame by frame over the common "
    "length (the longer mel is truncated): attention models stop on their own, so their free-running length "
    "differs; `length error` = mean |T_generated - T_reference| / T_reference shows by how much.",
    "MCD: the field's definition (as ESPnet's `evaluate_mcd`): mel-cepstra c1..c24 (orthonormal DCT-II of the "
    "natural-log mel, c0 excluded), aligned by DTW, 10 sqrt(2) / ln 10 x the euclidean distance per frame, averaged.",
    "WER (pocketsphinx en-us, normalised text), speaker similarity (resemblyzer cosine to the ground-truth "
    "speaker's mean embedding) and DNSMOS OVRL (speechmos) are judged on the decoded wavs (Griffin-Lim unless the "
    "decode used another vocoder), the same way for every row: `softvc-score`, per-utterance scores in "
    "`<decode dir>/score/`.",
    "RTF = mel generation time / audio duration (10 ms per frame), from ESPnet's decode log, vocoder excluded.",
    "Training time: the trainer's summed epoch times (training + validation), startup excluded.",
]


@dataclass
class Row:
    label: str
    tag: str
    model: str  # the exp/<tag> dir name
    values: dict = field(default_factory=dict)  # column -> float; absent = n/a
    reasons: dict = field(default_factory=dict)  # column -> why it is n/a
    curves: dict = field(default_factory=dict)  # "train"/"valid" -> [(training seconds at epoch end, l1_loss)]
    decoded: dict = None  # free-running {uttid: (T, 128)} for the figures

    def set(self, column, value, reason):
        if value is None:
            self.reasons[column] = reason
        else:
            self.values[column] = float(value)

    def set_mel_scores(self, scores):
        """The free-running columns from the ``mel_scores.score`` of a decode."""
        for column, key in MEL_COLUMNS.items():
            self.set(column, scores[key], None)


def format_table(rows):
    """Markdown table lines and footnote lines; every missing value is ``n/a [k]`` with its reason as note k."""
    notes = list(METHOD_NOTES)
    header = ["variation", "model dir", *(h for h, _ in COLUMNS.values())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.label, f"`{row.tag}`"]
        for column, (_, fmt) in COLUMNS.items():
            if column in row.values:
                value = row.values[column]
                cell = "inf" if math.isinf(value) else fmt.format(value)
                source = row.reasons.get(column + "_source")
            else:
                cell, source = "n/a", row.reasons[column]
            if source:
                if source not in notes:
                    notes.append(source)
                cell += f" [{notes.index(source) + 1}]"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return lines, [f"[{i}] {note}" for i, note in enumerate(notes, 1)]


def write_csv(rows, path):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variation", "model_dir", *COLUMNS, "notes"])
        for row in rows:
            values = [row.values.get(c, "n/a") for c in COLUMNS]
            notes = "; ".join(f"{c}: {r}" for c, r in row.reasons.items())
            writer.writerow([row.label, row.tag, *values, notes])
