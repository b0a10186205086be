"""The figures of the results table (matplotlib, Agg): free-running mels next to the ground truth, and the training
curves with each row's WER against its training time."""

from pathlib import Path

from espnet_softvc.utils.io import atomic_path, check_file_name


def plot_mels(rows, reference, utts, out_dir):
    """``mels_<utt>.png``: ground truth and each row's free-running mel, one panel each, same colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for utt in utts:
        check_file_name(utt, out_dir)  # it names mels_<utt>.png
        panels = [("ground truth", reference[utt])]
        panels += [(row.label, row.decoded[utt]) for row in rows if row.decoded is not None and utt in row.decoded]
        fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.8 * len(panels)), squeeze=False)
        low, high = reference[utt].min(), reference[utt].max()
        frames = max(len(mel) for _, mel in panels)
        for ax, (title, mel) in zip(axes[:, 0], panels):
            ax.imshow(mel.T, origin="lower", aspect="auto", vmin=low, vmax=high, interpolation="none")
            ax.set_xlim(0, frames)
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("mel bin")
        axes[-1, 0].set_xlabel("frame (10 ms)")
        fig.suptitle(f"{utt}: log-mel, raw scale")
        fig.tight_layout()
        paths.append(Path(out_dir) / f"mels_{utt}.png")
        with atomic_path(paths[-1]) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
        plt.close(fig)
    return paths


def plot_curves(rows, path):
    """Left: every model's reported ``l1_loss`` against its training time (train solid, valid dashed, one point per
    epoch, log scale). Right: each row's WER against its training time, the reference rows as horizontal lines.
    Returns the WER panel's points {label: (seconds or None, WER)}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, wer_ax) = plt.subplots(1, 2, figsize=(13, 5))
    first_row = {}  # rows of one model dir (with/without postnet) share its training curves
    for row in rows:
        if row.curves:
            first_row.setdefault(row.model, row)
    color = {model: f"C{index}" for index, model in enumerate(dict.fromkeys(r.model for r in rows))}
    for row in first_row.values():
        for split, style in (("train", "-"), ("valid", "--")):
            if row.curves.get(split):
                seconds, values = zip(*row.curves[split])
                ax.plot(seconds, values, style, color=color[row.model], marker=".", label=f"{row.label} ({split})")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("reported l1_loss")
    ax.set_yscale("log")
    ax.set_title("L1 (Soft-VC: raw log-mel L1; ESPnet TTS: L1 before + after postnet, GlobalMVN)", fontsize=9)
    points = {}
    for row in (r for r in rows if "wer" in r.values):
        seconds = row.values.get("train_time")
        points[row.label] = (seconds, row.values["wer"])
        if seconds is None:  # a reference row: no training
            wer_ax.axhline(row.values["wer"], color=color[row.model], linestyle=":", label=row.label)
        else:
            wer_ax.plot([seconds], [row.values["wer"]], "o", color=color[row.model], label=row.label)
    wer_ax.set_xlim(left=0)
    wer_ax.set_xlabel("training time (s)")
    wer_ax.set_ylabel("WER (%), pocketsphinx on the decoded dev speech")
    wer_ax.set_title("WER of the final model (reference rows: dotted)", fontsize=9)
    for axis in (ax, wer_ax):
        if axis.lines:
            axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return points
