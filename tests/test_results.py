"""Results table (``scoring.results`` and the scoring modules it draws on, softvc-results) and FastSpeech2 baseline
data (``bin.baseline_data``)."""

import csv
import datetime
import json
import math
import re
import subprocess

import kaldiio
import matplotlib.pyplot as plt
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_softvc.bin import baseline_data
from espnet_softvc.scoring import results
from espnet_softvc.scoring.mel_scores import score
from espnet_softvc.scoring.plots import plot_curves
from espnet_softvc.scoring.results_table import Row
from espnet_softvc.scoring.wav_judging import Judging
from espnet_softvc.utils.errors import UserError
from tests.conftest import REPO, assert_user_error, run_cli, run_main

RNG = np.random.default_rng(0)


def log_mel(frames):
    return RNG.normal(-4.0, 2.0, (frames, 128))


def test_score_identical_and_offset():
    ref = {"a": log_mel(120), "b": log_mel(80)}
    same = score(ref, ref)
    assert same["l1"] == 0 and same["lsd"] == 0 and same["mcd"] == pytest.approx(0, abs=1e-9)
    assert math.isinf(same["mel_snr"]) and same["length_error"] == 0
    shifted = score({k: v + 0.25 for k, v in ref.items()}, ref)
    assert shifted["l1"] == pytest.approx(0.25)
    assert shifted["lsd"] == pytest.approx(20 * math.log10(math.e) * 0.25)
    assert shifted["mel_snr"] == pytest.approx(-20 * math.log10(math.exp(0.25) - 1))
    assert shifted["mcd"] == pytest.approx(0, abs=1e-9)  # a constant offset only moves c0, which MCD leaves out


def test_score_truncates_to_common_length_and_reports_length_error():
    ref = {"a": log_mel(100)}
    longer = {"a": np.concatenate([ref["a"] + 1.0, log_mel(10)])}  # 10 extra frames
    scores = score(longer, ref)
    assert scores["l1"] == pytest.approx(1.0) and scores["length_error"] == pytest.approx(10.0)
    with pytest.raises(UserError, match="zz"):
        score({"zz": ref["a"]}, ref)


def _write_npy_scp(directory, mels):
    directory.mkdir(parents=True)
    lines = []
    for utt, mel in mels.items():
        np.save(directory / f"{utt}.npy", mel.astype(np.float32))
        lines.append(f"{utt} {directory / f'{utt}.npy'}\n")
    (directory / "feats.scp").write_text("".join(lines))


def _fake_model(model_dir, tts, tts_conf, stats, normalize="global_mvn"):
    model_dir.mkdir(parents=True)
    (model_dir / "config.yaml").write_text(yaml.safe_dump(dict(tts=tts, tts_conf=tts_conf, normalize=normalize)))
    torch.save({"model": {}, "reporter": {"stats": stats, "epoch": len(stats)}}, model_dir / "checkpoint.pth")
    state = {"tts.w": torch.zeros(10, 3), "tts.bn.running_mean": torch.zeros(3), "normalize.mean": torch.zeros(128)}
    torch.save(state, model_dir / "valid.loss.ave.pth")


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """dump/{train,dev}/feats.scp and exp/ with a Tacotron2 (no guided attention) decoded at +0.5, a Soft-VC
    model that was never decoded and its denoising-postnet twin decoded at +0.25."""
    root = tmp_path_factory.mktemp("run")
    refs = {}
    for dset, count in (("train", 3), ("dev", 2)):
        refs[dset] = {f"{dset}{i}": log_mel(50 + 10 * i).astype(np.float32) for i in range(count)}
        (root / "dump" / dset).mkdir(parents=True)
        dump = root / "dump" / dset
        kaldiio.save_ark(str(dump / "feats.ark"), refs[dset], scp=str(dump / "feats.scp"))

    def epoch(loss):
        return {
            "train": {"loss": loss, "l1_loss": loss, "time": datetime.timedelta(seconds=30)},
            "valid": {"loss": loss, "l1_loss": loss / 2, "time": 5.0},
        }

    taco = root / "exp" / "tacotron2"
    _fake_model(taco, "tacotron2", dict(use_guided_attn_loss=False), {1: epoch(2.0), 2: epoch(1.0), 3: epoch(1.5)})
    _write_npy_scp(taco / "decode_dev" / "denorm", {u: m + 0.5 for u, m in refs["dev"].items()})
    _write_npy_scp(taco / "decode_dev" / "norm", {u: m * 0 for u, m in refs["dev"].items()})  # must not be used
    (taco / "decode_dev" / "log").mkdir()
    (taco / "decode_dev" / "log" / "decode.log").write_text(
        "x INFO: inference speed = 1000.0 frames / sec.\nx INFO: dev0 (size:26->50)\n"
        "x INFO: inference speed = 500.0 frames / sec.\nx INFO: dev1 (size:20->60)\n"  # 3 x 20: the limit
    )
    _fake_model(root / "exp" / "softvc", "softvc", dict(discrete=True), {1: epoch(0.8)}, normalize=None)
    postnet = root / "exp" / "softvc_postnet"  # the postnet option, trained on the frozen model, decoded at +0.25
    postnet_epoch = {split: {"loss": 0.3, "time": 5.0} for split in ("train", "valid")}  # no teacher-forced L1
    _fake_model(postnet, "softvc", dict(discrete=True, postnet="denoising"), {1: postnet_epoch}, normalize=None)
    _write_npy_scp(postnet / "decode_dev" / "norm", {u: m + 0.25 for u, m in refs["dev"].items()})
    return root, refs


def test_results_table_values_and_footnotes(fake_run):
    root, _ = fake_run
    out = root / "out"
    rows = results.write_results(root / "exp", root / "dump", out, corpus="synthetic")
    assert [r.tag for r in rows] == ["softvc", "softvc_postnet", "tacotron2"]  # Soft-VC (+ postnet) first
    softvc, postnet, taco = rows
    assert postnet.label == "Soft-VC discrete + denoising postnet" and softvc.label == "Soft-VC discrete"
    assert postnet.values["l1_valid_fr"] == pytest.approx(0.25, abs=1e-6) and "l1_train" not in postnet.values
    assert taco.values["l1_valid_fr"] == pytest.approx(0.5, abs=1e-6)
    assert taco.values["params"] == 30  # tts.* parameters only, no normalizer or batch-norm buffers
    assert taco.values["epochs"] == 3 and taco.values["train_time"] == pytest.approx(105)
    seconds = [t for t, _ in taco.curves["valid"]]  # curves.png's x axis: training time at each epoch's end
    assert len(seconds) == 3 and seconds == sorted(seconds) and seconds[-1] == pytest.approx(105)
    assert taco.values["rtf"] == pytest.approx((50 / 1000 + 60 / 500) / (110 * 0.01))
    assert softvc.values["l1_valid_tf"] == 0.4 and softvc.values["l1_train"] == 0.8  # its own raw-space L1
    text = (out / "RESULTS.md").read_text()
    assert "synthetic; 3 train / 2 dev utterances" in text
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert (
        f"- commit: {head}" in text and f"torch {torch.__version__.split('+')[0]}" in text
    )  # the environment it was made in
    taco_line = next(line for line in text.splitlines() if "`tacotron2`" in line)
    cells = [c.strip() for c in taco_line.strip("|").split("|")]
    assert cells[2].startswith("n/a [") and cells[5].startswith("n/a [")  # L1 train, guided-attention loss
    for cell in (cells[2], cells[5]):
        number = re.search(r"\[(\d+)\]", cell).group(1)
        assert re.search(rf"^\[{number}\] \S", text, re.M), f"footnote {number} missing"
    assert "[{}] guided attention off".format(re.search(r"\[(\d+)\]", cells[5]).group(1)) in text
    assert "" not in cells
    assert re.search(r"^\[\d+\] 1 of 2 utterances stopped at the decoder's maximum length", text, re.M)
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert table[2]["ga_loss"] == "n/a" and "guided attention off" in table[2]["notes"]
    assert all(value != "" for row in table for value in row.values())
    for name in ("mels_dev0.png", "mels_dev1.png", "curves.png"):
        pixels = plt.imread(out / name)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.std() > 0.05, name  # a drawn figure


def test_conversion_table_in_the_form_of_the_papers_table_1(tmp_path):
    """Per source set: the sources (ground truth), then discrete and soft; WER, CER, similarity to the target and to
    the source, closer-to-target share, DNSMOS; a set without text is marked [a] (the ASR's reference)."""
    from espnet_softvc.scoring.stage_sections import conversion_table

    def summary(path, **values):
        path.mkdir(parents=True)
        (path / "summary.json").write_text(json.dumps({"n_utts": 4, **values}))

    exp = tmp_path / "exp"
    summary(exp / "convert_sources/others/score", wer=20.0, cer=10.0, spk_sim=0.5, dnsmos_ovrl=3.0)
    summary(exp / "convert_sources/realdev/score", spk_sim=0.4)
    for kind, wer in (("discrete", 60.0), ("soft", 30.0)):
        summary(
            exp / f"softvc_{kind}/convert_others/score",
            wer=wer,
            cer=wer / 2,
            spk_sim=0.9,
            spk_sim_src=0.5,
            closer_to_target=0.75,
            dnsmos_ovrl=2.0,
        )
        summary(exp / f"softvc_{kind}/convert_realdev/score", wer=wer + 1, spk_sim=0.9, reference_text="asr")
    lines = conversion_table(exp)
    rows = [line for line in lines if line.startswith("| others") or line.startswith("| realdev")]
    assert rows == [
        "| others: source (ground truth) | 4 | 20 | 10 | 0.5 | n/a | n/a | 3 |",
        "| others: discrete | 4 | 60 | 30 | 0.9 | 0.5 | 75 | 2 |",
        "| others: soft | 4 | 30 | 15 | 0.9 | 0.5 | 75 | 2 |",
        "| realdev: source (ground truth) | 4 | n/a | n/a | 0.4 | n/a | n/a | n/a |",
        "| realdev: discrete | 4 | 61 [a] | n/a | 0.9 | n/a | n/a | n/a |",
        "| realdev: soft | 4 | 31 [a] | n/a | 0.9 | n/a | n/a | n/a |",
    ]
    assert any("[a] a set without text" in line for line in lines)


def test_curves_plot_wer_against_training_time(tmp_path):
    """curves.png's right panel: each trained row's WER at its training time, reference rows as lines."""
    rows = [
        Row("ground truth", "gt", "ground_truth", values={"wer": 28.8}),
        Row("Soft-VC soft", "s", "softvc_soft", values={"wer": 83.0, "train_time": 900.0},
                    curves={"train": [(450.0, 0.6), (900.0, 0.5)], "valid": [(450.0, 0.55), (900.0, 0.48)]}),
        Row("Tacotron2", "t", "tacotron2", values={"train_time": 700.0}, curves={"valid": [(700.0, 0.9)]}),
    ]  # fmt: skip
    points = plot_curves(rows, tmp_path / "curves.png")
    assert points == {"ground truth": (None, 28.8), "Soft-VC soft": (900.0, 83.0)}  # no WER: not drawn
    pixels = plt.imread(tmp_path / "curves.png")
    assert pixels.shape[1] > 2 * pixels.shape[0] * 0.9 and pixels.std() > 0.05  # two panels, drawn


def test_results_cli_user_error(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "dump" / "dev").mkdir(parents=True)
    (tmp_path / "dump" / "dev" / "feats.scp").write_text("")
    proc = run_cli("espnet_softvc.bin.results", tmp_path / "exp", tmp_path / "dump")
    assert_user_error(proc, "feats.scp")


@pytest.fixture(scope="module")
def baseline_inputs(tmp_path_factory):
    """Harmonic wavs whose mel length is 2N (even hops) or 2N + 1, their (T, 128) mels and N units each."""
    root = tmp_path_factory.mktemp("baseline")
    feats, wav_lines, text_lines = {}, [], []
    for i, samples in enumerate((320 * 60, 320 * 71 + 160, 320 * 45 + 250)):
        utt = f"utt{i}"
        t = np.arange(samples) / 16000
        sf.write(root / f"{utt}.wav", 0.3 * np.sin(2 * np.pi * (120 + 20 * i) * t), 16000)
        feats[utt] = log_mel(samples // 160).astype(np.float32)
        wav_lines.append(f"{utt} {root / f'{utt}.wav'}\n")
        text_lines.append(f"{utt} {' '.join(str(u % 100) for u in range(samples // 320))}\n")
    kaldiio.save_ark(str(root / "feats.ark"), feats, scp=str(root / "feats.scp"))
    (root / "wav.scp").write_text("".join(wav_lines))
    (root / "text").write_text("".join(text_lines))
    (root / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", *map(str, range(100)), "<sos/eos>"]) + "\n")
    return root, feats


def test_baseline_durations_sum_to_mel_length(baseline_inputs):
    root, feats = baseline_inputs
    out = root / "out"
    count = baseline_data.prepare(root / "feats.scp", root / "text", root / "wav.scp", out, root / "tokens.txt", nj=2)
    assert count == 3
    assert baseline_data.check_durations(out / "durations", root / "feats.scp") == 3
    pitch, energy = kaldiio.load_scp(str(out / "pitch.scp")), kaldiio.load_scp(str(out / "energy.scp"))
    for line in (out / "durations").read_text().splitlines():
        utt, *durations = line.split()
        durations = list(map(int, durations))
        assert sum(durations) == len(feats[utt]) and set(durations[:-1]) == {2} and durations[-1] in (0, 1)
        assert pitch[utt].shape == energy[utt].shape == (len(durations), 1)
        voiced = pitch[utt][np.array(durations) > 0, 0]
        assert np.all(np.abs(np.exp(voiced) - (120 + 20 * int(utt[-1]))) < 10)  # log-F0 of the sine
    assert {line.split()[-1] for line in (out / "durations").read_text().splitlines()} == {"0", "1"}


def test_baseline_data_refuses_units_of_other_audio(baseline_inputs, tmp_path):
    root, _ = baseline_inputs
    text = tmp_path / "text"
    lines = (root / "text").read_text().splitlines()
    text.write_text("\n".join([lines[0] + " 7 7", *lines[1:]]) + "\n")  # two units too many for utt0
    proc = run_main("espnet_softvc.bin.baseline_data", root / "feats.scp", text, root / "wav.scp", tmp_path / "o")
    assert_user_error(proc, "utt0", "mel frames")
    assert not (tmp_path / "o" / "durations").exists()
    with pytest.raises(UserError, match="utt0 durations sum to 2"):
        (tmp_path / "d").write_text("utt0 2\nutt1 2\nutt2 2\n")
        baseline_data.check_durations(tmp_path / "d", root / "feats.scp")


@pytest.mark.slow
def test_judged_rows_and_reference_rows(tmp_path, slt_wavs):
    """With --text / --wav_scp every row is judged on wavs (a decode without wavs is vocoded by Griffin-Lim) and the
    ground truth and its Griffin-Lim resynthesis come first; a blurred decode reads worse than the resynthesis."""
    from espnet_softvc.feats.log_mel import wav_to_mel

    utts = sorted(slt_wavs)[:3]
    refs = {u: wav_to_mel(slt_wavs[u][0]).T for u in utts}
    (tmp_path / "dump" / "dev").mkdir(parents=True)
    (tmp_path / "dump" / "train").mkdir(parents=True)
    for dset in ("dev", "train"):
        dump = tmp_path / "dump" / dset
        kaldiio.save_ark(str(dump / "feats.ark"), refs, scp=str(dump / "feats.scp"))
    (tmp_path / "text").write_text("".join(f"{u} {slt_wavs[u][1]}\n" for u in utts))
    (tmp_path / "wav.scp").write_text("".join(f"{u} {slt_wavs[u][0]}\n" for u in utts))
    model = tmp_path / "exp" / "softvc"
    _fake_model(model, "softvc", dict(discrete=True), {1: {"train": {"loss": 1.0}, "valid": {"loss": 1.0}}}, None)
    blurred = {u: np.repeat(m.reshape(-1, 16, 8).mean(-1), 8, -1)[:, :128] for u, m in refs.items()}  # 16 bands
    _write_npy_scp(model / "decode_dev" / "norm", blurred)
    judging = Judging(tmp_path / "text", tmp_path / "wav.scp", tmp_path / "exp" / "reference")
    rows = results.write_results(tmp_path / "exp", tmp_path / "dump", tmp_path / "out", judging=judging)
    by_tag = {row.tag: row for row in rows}
    assert [row.tag for row in rows][:2] == ["ground_truth", "resynthesis_gl"]
    truth, resynth, model_row = by_tag["ground_truth"], by_tag["resynthesis_gl"], by_tag["softvc"]
    assert truth.values["spk_sim"] > 0.9 and resynth.values["spk_sim"] > 0.8
    assert truth.values["wer"] <= 60 and resynth.values["mcd"] < model_row.values["mcd"]
    assert model_row.values["wer"] > resynth.values["wer"] and 1 < model_row.values["dnsmos"] < 5
    assert len(list((model / "decode_dev" / "wav_gl").glob("*.wav"))) == 3  # vocoded for the judges
    summary = json.loads((model / "decode_dev" / "score" / "summary.json").read_text())
    assert summary["n_utts"] == 3 and summary["n_paired"] == 0  # no wav-level MCD / F0: the table's MCD is the mels'
    text = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "| ground truth (recordings) | `ground_truth` |" in text and "WER (%)" in text
