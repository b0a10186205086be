"""softvc-score and its outside judges on fixed inputs: real recordings (tests/data/realdev) and flite speech."""

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet_softvc.scoring import judges
from espnet_softvc.utils.io import load_audio
from tests.conftest import REALDEV, assert_user_error, run_cli, run_main

SCORE = "espnet_softvc.bin.score"


def halves(path):
    """A real recording cut in two: (first half, second half), 16 kHz."""
    wav = load_audio(path).numpy()
    return wav[: len(wav) // 2], wav[len(wav) // 2 :]


def test_text_normalisation_and_error_rates():
    assert (
        judges.normalize_text("It's 42 o'clock -- the BIRCH canoe, slid!")
        == "it's forty two o'clock the birch canoe slid"
    )
    assert judges.error_rates(["The birch canoe slid."], ["the birch canoe slid"]) == (0.0, 0.0)
    wer, cer = judges.error_rates(["the birch canoe slid", "on the planks"], ["the perch canoe slid", ""])
    assert wer == pytest.approx(100 * 4 / 7) and cer > 0  # 1 substitution + 3 deletions over 7 words


def test_text_normalisation_folds_accents_and_curly_quotes():
    assert judges.normalize_text("Café, NAÏVE Straße") == "cafe naive strasse"
    curly, straight = judges.normalize_text("Don’t ‘quote’ “this” rock’n’roll"), "don't quote this rock'n'roll"
    assert curly == judges.normalize_text("Don't 'quote' \"this\" rock'n'roll") == straight
    assert judges.normalize_text("Привет, мир! 東京") == "привет мир 東京"  # letters of any script are kept
    assert judges.error_rates(["Naïve café, don’t"], ["naive cafe don't"]) == (0.0, 0.0)


def test_asr_reads_flite_speech_and_not_noise(slt_wavs):
    refs, hyps = [], []
    for path, text in slt_wavs.values():
        refs.append(text)
        hyps.append(judges.transcribe(load_audio(path).numpy()))
    wer, _ = judges.error_rates(refs, hyps)
    noise = np.random.default_rng(0).normal(0, 0.1, 3 * 16000)
    noise_wer, _ = judges.error_rates(refs[:1], [judges.transcribe(noise)])
    assert wer < 50 and noise_wer >= 90, (hyps, wer, noise_wer)


def test_speaker_similarity_separates_real_speakers():
    """Half of a VCTK clip is nearer the other half of the same clip than the freesound speaker or flite's slt."""
    refs = {name: halves(REALDEV / f"{name}.wav") for name in ("vctk_p240_00000", "vctk_p260_00000")}
    refs["freesound"] = halves(REALDEV / "speech_freesound_33711.wav")
    embed = {name: [judges.speaker_embedding(half) for half in pair] for name, pair in refs.items()}
    for name in ("vctk_p240_00000", "vctk_p260_00000"):
        same = float(embed[name][1] @ embed[name][0])
        for other in ("vctk_p240_00000", "vctk_p260_00000", "freesound"):
            if other != name:
                assert same > float(embed[name][1] @ embed[other][0]) + 0.1, (name, other)


def test_dnsmos_prefers_clean_real_speech():
    speech = load_audio(REALDEV / "speech_freesound_33711.wav").numpy()[: 4 * 16000]
    noise = load_audio(REALDEV / "noise_freesound_573577.wav").numpy()[: len(speech)]
    noisy = speech + noise * np.sqrt((speech**2).mean() / (noise**2).mean())  # 0 dB
    clean, dirty = judges.dnsmos(speech), judges.dnsmos(noisy / np.abs(noisy).max())
    assert clean["dnsmos_ovrl"] > dirty["dnsmos_ovrl"] + 0.1 and clean["dnsmos_bak"] > dirty["dnsmos_bak"] + 0.5, (
        clean,
        dirty,
    )


def test_f0_scores_known_values():
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 150 * t)
    f0 = judges.f0(tone)
    assert np.median(f0[f0 > 0]) == pytest.approx(150, rel=0.02)
    rmse, corr = judges.f0_scores(np.array([200.0, 400.0, 0.0, 300.0, 90.0]), np.array([100.0, 200.0, 120.0, 150.0, 0]))
    assert rmse == pytest.approx(np.log(2)) and corr == pytest.approx(1.0)  # an octave up on the 3 voiced frames
    assert judges.f0_scores(np.zeros(5), np.ones(5)) == (None, None)


def test_pair_scores_rank_a_resynthesis_above_another_sentence(slt_wavs):
    from espnet_softvc.feats.log_mel import wav_to_mel
    from espnet_softvc.scoring.score import pair_scores
    from espnet_softvc.vocoders import GriffinLim

    (a, _), (b, _) = slt_wavs["slt0"], slt_wavs["slt1"]
    ref = load_audio(a).numpy()
    resynth = pair_scores(GriffinLim()(torch.from_numpy(wav_to_mel(a).T)).numpy(), ref)
    other = pair_scores(load_audio(b).numpy(), ref)
    same = pair_scores(ref, ref)
    assert same == {"mcd": 0.0, "log_f0_rmse": 0.0, "f0_corr": pytest.approx(1.0)}
    assert 0 < resynth["mcd"] < other["mcd"] and resynth["log_f0_rmse"] < other["log_f0_rmse"], (resynth, other)


@pytest.mark.slow  # every judge on every file: about a minute
def test_score_cli_on_real_audio_of_any_rate_and_channels(tmp_path, slt_wavs):
    """PRED_DIR: the slt sentences (one made stereo at 44.1 kHz); REF_DIR: the same ids resynthesised; the same rows
    from --nj 2."""
    from espnet_softvc.feats.log_mel import wav_to_mel
    from espnet_softvc.vocoders import GriffinLim

    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir()
    lines = []
    for utt, (path, text) in slt_wavs.items():
        shutil.copy(path, pred / f"{utt}.wav")
        lines.append(f"{utt} {text}")
        wav = GriffinLim()(torch.from_numpy(wav_to_mel(path).T)).numpy()
        (ref / "sub").mkdir(parents=True, exist_ok=True)
        sf.write(ref / "sub" / f"{utt}.wav", wav, 16000)
    stereo = load_audio(pred / "slt0.wav", 44100).numpy()
    sf.write(pred / "slt0.wav", np.stack([stereo, stereo], 1), 44100)
    (tmp_path / "text").write_text("\n".join(sorted(lines)) + "\n")
    out = tmp_path / "out"
    proc = run_cli(SCORE, pred, "--text", tmp_path / "text", "--ref_dir", ref, "--out_dir", out, check=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_utts"] == 4 and summary["n_paired"] == 4 and summary["n_words"] > 20
    assert summary["wer"] < 50 and summary["spk_sim"] > 0.8 and 1 < summary["dnsmos_ovrl"] < 5
    assert 0 < summary["mcd"] < 20 and -1 <= summary["f0_corr"] <= 1, summary
    rows = (out / "scores.csv").read_text().splitlines()
    assert rows[0].startswith("utt,seconds,wer,cer,hyp,spk_sim") and len(rows) == 5
    assert '"wer": ' in proc.stdout
    # two processes: the same scores but the transcripts (pocketsphinx adapts to what one process decoded before)
    for name in ("nj2", "nj2_again"):
        run_cli(
            SCORE,
            pred,
            "--text",
            tmp_path / "text",
            "--ref_dir",
            ref,
            "--out_dir",
            tmp_path / name,
            "--nj",
            2,
            check=True,
        )
    parallel, again = (
        list(csv.DictReader((tmp_path / o / "scores.csv").read_text().splitlines())) for o in ("nj2", "nj2_again")
    )
    assert parallel == again  # deterministic
    asr = ("wer", "cer", "hyp")
    for one, two in zip(csv.DictReader(rows), parallel, strict=True):
        assert {k: v for k, v in one.items() if k not in asr} == {k: v for k, v in two.items() if k not in asr}


def test_score_cli_errors(tmp_path, slt_wavs):
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(slt_wavs["slt0"][0], pred / "a.wav")
    (tmp_path / "text").write_text("b some words\n")
    proc = run_main(SCORE, pred, "--text", tmp_path / "text", "--out_dir", tmp_path / "out")
    assert_user_error(proc, "text", "no transcript for 1 wavs", "a")
    (pred / "b.wav").write_bytes(b"not audio")
    proc = run_main(SCORE, pred, "--out_dir", tmp_path / "out")
    assert_user_error(proc, "b.wav", "not a readable audio file")
    proc = run_main(SCORE, tmp_path / "nothing", "--out_dir", tmp_path / "out")
    assert_user_error(proc, "nothing", "does not exist")
    assert not (tmp_path / "out").exists()


def test_score_skips_similarity_and_dnsmos_of_silence_and_blips(tmp_path, slt_wavs):
    """Digital silence and a 10 ms clip get NaN similarity and DNSMOS and the reason, left out of the means; the
    real utterances beside them are scored; a silent source leaves only spk_sim_src out; a silent reference wav is
    left out of the speaker embedding."""
    from espnet_softvc.scoring.score import score_dir

    slt = {utt: load_audio(path).numpy() for utt, (path, _) in slt_wavs.items()}
    dirs = {name: tmp_path / name for name in ("pred", "src", "ref")}
    wavs = {
        "pred": {"real": slt["slt0"], "silence": np.zeros(32000), "blip": slt["slt0"][8000:8160], "real2": slt["slt2"]},
        "src": {"real": slt["slt1"], "silence": slt["slt1"], "blip": slt["slt1"], "real2": np.zeros(16000)},
        "ref": {"ref": slt["slt3"], "quiet": np.full(16000, 1e-5)},
    }
    for name, items in wavs.items():
        dirs[name].mkdir()
        for utt, wav in items.items():
            sf.write(dirs[name] / f"{utt}.wav", wav, 16000)
    summary = score_dir(dirs["pred"], tmp_path / "out", ref_dir=dirs["ref"], src_dir=dirs["src"])
    rows = {r["utt"]: r for r in csv.DictReader((tmp_path / "out" / "scores.csv").read_text().splitlines())}
    judged = ["spk_sim", "spk_sim_src", "closer_to_target", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"]
    assert rows["silence"]["skipped"] == "silent (peak -inf dBFS)"
    assert rows["blip"]["skipped"].startswith("too short (0.01 s of sound"), rows["blip"]
    for utt in ("silence", "blip"):
        assert all(rows[utt][k] == "nan" for k in judged) and float(rows[utt]["seconds"]) > 0, rows[utt]
    assert rows["real"]["skipped"] == "" and float(rows["real"]["spk_sim"]) > 0.7, rows["real"]
    assert 1 < float(rows["real"]["dnsmos_ovrl"]) < 5 and float(rows["real"]["spk_sim_src"]) > 0.7, rows["real"]
    assert rows["real2"]["skipped"] == "source silent (peak -inf dBFS)" and rows["real2"]["spk_sim_src"] == "nan"
    assert float(rows["real2"]["spk_sim"]) > 0.7 and 1 < float(rows["real2"]["dnsmos_ovrl"]) < 5, rows["real2"]
    assert summary["n_utts"] == 4 and summary["n_skipped"] == 3 and summary["n_ref_wavs"] == 1, summary
    assert summary["spk_sim"] == pytest.approx(
        np.mean([float(rows[u]["spk_sim"]) for u in ("real", "real2")]), abs=1e-4
    )
    assert summary["spk_sim_src"] == pytest.approx(float(rows["real"]["spk_sim_src"]), abs=1e-4), summary
    assert summary["dnsmos_ovrl"] == pytest.approx(
        np.mean([float(rows[u]["dnsmos_ovrl"]) for u in ("real", "real2")]), abs=1e-4
    )


def test_score_cli_out_dir_that_is_a_file(tmp_path, slt_wavs):
    """--out_dir naming a regular file: a one-line error before any judging, the file left as it was."""
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(slt_wavs["slt0"][0], pred / "a.wav")
    out = tmp_path / "out.txt"
    out.write_text("mine\n")
    proc = run_main(SCORE, pred, "--out_dir", out)
    assert_user_error(proc, str(out))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # no progress bar
    assert out.read_text() == "mine\n"


@pytest.mark.slow  # every judge twice on four files: about half a minute
def test_score_asr_reference_for_sources_without_text(tmp_path, slt_wavs):
    """--asr_ref: the ASR's transcript of each source is the reference (written to OUT/ref_text): the sources scored
    against themselves read at 0 % WER, another sentence in their place does not; it needs the sources and no text."""
    src, pred = tmp_path / "src", tmp_path / "pred"
    for d in (src, pred):
        d.mkdir()
    for i in range(2):
        shutil.copy(slt_wavs[f"slt{i}"][0], src / f"u{i}.wav")
    shutil.copy(slt_wavs["slt0"][0], pred / "u0.wav")
    shutil.copy(slt_wavs["slt2"][0], pred / "u1.wav")  # another sentence
    run_main(SCORE, src, "--asr_ref", "--src_dir", src, "--ref_dir", src, "--out_dir", tmp_path / "self", check=True)
    run_main(SCORE, pred, "--asr_ref", "--src_dir", src, "--ref_dir", src, "--out_dir", tmp_path / "o", check=True)
    same = json.loads((tmp_path / "self" / "summary.json").read_text())
    other = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert same["reference_text"] == "asr" and same["wer"] == 0 and same["n_words"] > 5
    assert other["reference_text"] == "asr" and other["n_words"] == same["n_words"] and other["wer"] > 25
    with open(tmp_path / "o" / "scores.csv") as f:
        rows = {r["utt"]: r for r in csv.DictReader(f)}
    assert float(rows["u0"]["wer"]) == 0 and float(rows["u1"]["wer"]) > 50
    refs = dict(line.split(maxsplit=1) for line in (tmp_path / "o" / "ref_text").read_text().splitlines())
    assert sorted(refs) == ["u0", "u1"] and refs["u0"].strip() == rows["u0"]["hyp"]
    (tmp_path / "text").write_text("u0 a\nu1 b\n")
    common = ["--ref_dir", src, "--out_dir", tmp_path / "x"]
    proc = run_main(SCORE, pred, "--asr_ref", "--text", tmp_path / "text", "--src_dir", src, *common)
    assert_user_error(proc, "pred", "ASR reference", "source wavs")
    proc = run_main(SCORE, pred, "--asr_ref", *common)
    assert_user_error(proc, "pred", "ASR reference")
    assert not (tmp_path / "x").exists()
