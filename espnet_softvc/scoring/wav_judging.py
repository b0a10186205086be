"""The outside judges on the results table's rows: WER, speaker similarity and DNSMOS of each row's wavs (vocoded
from its mels when there are none) through ``softvc-score``, and the ceiling rows (ground truth, resynthesis)."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from espnet_softvc.scoring.mel_scores import score
from espnet_softvc.scoring.results_table import COLUMNS, Row

JUDGED = ("wer", "spk_sim", "dnsmos")  # the columns ``judge`` fills


@dataclass
class Judging:
    """What the outside judges need: the Kaldi ``text`` and ``wav.scp`` of the evaluation set, where reference
    decodes go, the vocoder of the resynthesis rows (None: Griffin-Lim only) and how many processes judge at once."""

    text: Path
    wav_scp: Path
    work_dir: Path
    vocoder_file: str = None
    nj: int = 1


def vocode(mels, wav_dir, vocoder):
    """Write ``{utt: (T, 128)}`` as ``wav_dir/<utt>.wav`` with ``vocoder`` (skipped if already complete)."""
    from tqdm import tqdm

    from espnet_softvc.utils.io import check_file_name, save_wav

    for utt in mels:
        check_file_name(utt, wav_dir)
    if sorted(p.stem for p in Path(wav_dir).glob("*.wav")) == sorted(mels):
        return
    for utt, mel in tqdm(mels.items(), desc=f"vocode {wav_dir}"):
        save_wav(Path(wav_dir) / f"{utt}.wav", vocoder(torch.from_numpy(mel).float()).numpy(), vocoder.sample_rate)


def judge(row, wavs, out_dir, judging, mels=None):
    """WER, speaker similarity and DNSMOS of ``wavs`` (a dir of wavs or a wav.scp; made from ``mels`` with
    Griffin-Lim when there is none) with ``softvc-score``, cached in ``out_dir/summary.json``. Without its wav-level
    MCD and F0 (``pairs=False``): the table's mel distances come from the mels (``score``), and WORLD's harvest F0 of
    two wavs per utterance would be 40 % of the judging time."""
    from espnet_softvc.scoring.score import score_dir

    if judging is None:
        for key in JUDGED:
            row.set(key, None, "not judged (no --text / --wav_scp given)")
        return
    wavs = Path(wavs)
    if mels is not None and not any(wavs.glob("*.wav")):
        from espnet_softvc.vocoders import GriffinLim

        wavs = wavs.with_name("wav_gl")
        vocode(mels, wavs, GriffinLim())
    summary_file = Path(out_dir) / "summary.json"
    inputs = [wavs] if wavs.is_file() else list(wavs.glob("*.wav"))
    fresh = summary_file.exists() and summary_file.stat().st_mtime > max(p.stat().st_mtime for p in inputs)
    summary = (
        json.loads(summary_file.read_text())
        if fresh
        else score_dir(wavs, out_dir, judging.text, judging.wav_scp, nj=judging.nj, pairs=False)
    )
    row.set("wer", summary.get("wer"), "no transcript")
    row.set("spk_sim", summary.get("spk_sim"), "no reference speaker")
    row.set("dnsmos", summary.get("dnsmos_ovrl"), "no DNSMOS")


def _no_values(row):
    """n/a ("reference row") in every column of a reference row that has no value yet and is not judged."""
    for key in COLUMNS:
        if key not in row.values and key not in JUDGED:
            row.set(key, None, "reference row")


def reference_rows(reference, judging):
    """The ceiling rows: the ground-truth recordings, and their mels resynthesised by Griffin-Lim (and by the given
    vocoder), judged the same way as the models; mel distances of the resynthesis' own mel to the ground truth."""
    from espnet_softvc.feats.log_mel import wav_to_mel
    from espnet_softvc.vocoders import GriffinLim, load_vocoder

    truth = Row("ground truth (recordings)", "ground_truth", "ground_truth")
    _no_values(truth)
    judge(truth, judging.wav_scp, judging.work_dir / "ground_truth" / "score", judging)
    rows = [truth]
    vocoders = {"Griffin-Lim": (GriffinLim(), "resynthesis_gl")}
    if judging.vocoder_file:
        vocoders[Path(judging.vocoder_file).name] = (load_vocoder(judging.vocoder_file), "resynthesis_vocoder")
    for name, (vocoder, tag) in vocoders.items():
        row = Row(f"{name} resynthesis of the ground-truth mels", tag, tag)
        wav_dir = judging.work_dir / tag / "wav"
        vocode(reference, wav_dir, vocoder)
        resynthesized = {utt: wav_to_mel(wav_dir / f"{utt}.wav").T.astype(np.float64) for utt in reference}
        row.set_mel_scores(score(resynthesized, reference, tag))
        _no_values(row)
        judge(row, wav_dir, judging.work_dir / tag / "score", judging)
        rows.append(row)
    return rows
