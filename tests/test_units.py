"""Speech units: HuBERT parity with the original content encoder, offline k-means and soft encoder, dumps, errors.

The reference is ``tests/originals.py``'s restatement of bshall/hubert's ``Hubert`` (DESIGN.md section 4, original
parameter names). Random weights are saved in both original checkpoint formats.
"""

import shutil
import subprocess

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
import yaml
from conftest import assert_user_error, run_cli, run_main
from originals import RefHubert, ref_kmeans

ENCODE = "espnet_softvc.bin.encode"
TRAIN = "espnet_softvc.bin.train_units"
DUMP = "espnet_softvc.bin.dump_units"


def read_16k(path):
    wav, sr = sf.read(path, dtype="float32")
    return torchaudio.functional.resample(torch.from_numpy(wav), sr, 16000)


def random_hubert(num_labels, seed):
    """A reference model with every parameter random (norm gains, biases and weight-norm g included)."""
    torch.manual_seed(seed)
    model = RefHubert(num_labels).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
            elif name.endswith("weight_g"):
                p.mul_(1 + 0.2 * torch.rand_like(p))
    return model


@pytest.fixture(scope="module")
def hubert_files(tmp_path_factory, tiny_corpus):
    """Random HuBERT-Soft (v0.1 bare) and HuBERT-Discrete (v0.2, 504 labels) files, a kmeans100 file, 2 wavs."""
    out = tmp_path_factory.mktemp("hubert")
    wav_dir = out / "wavs"
    (wav_dir / "sub").mkdir(parents=True)
    train = sorted((tiny_corpus / "wavs" / "train").glob("*.wav"))
    shutil.copy(train[0], wav_dir / "a.wav")
    shutil.copy(train[1], wav_dir / "sub" / "b.wav")
    wavs = {name: read_16k(wav_dir / name) for name in ("a.wav", "sub/b.wav")}

    soft, discrete = random_hubert(100, seed=0), random_hubert(504, seed=1)
    torch.save(soft.state_dict(), out / "soft-v0.1.pt")
    torch.save({"hubert": {f"module.{k}": v for k, v in soft.state_dict().items()}}, out / "soft-v0.2.pt")
    torch.save({"hubert": {f"module.{k}": v for k, v in discrete.state_dict().items()}}, out / "discrete-v0.2.pt")
    with torch.inference_mode():
        ref = {
            name: {
                "layer7": discrete.encode(wav[None, None], layer=7)[0],
                "soft": soft.soft_units(wav[None, None])[0],
                "layer7_soft": soft.encode(wav[None, None], layer=7)[0],
            }
            for name, wav in wavs.items()
        }
    # centres near real frames (so many ids occur), as the kmeans100 file stores them
    frames = torch.cat([r["layer7"] for r in ref.values()])
    centers = frames[torch.randperm(len(frames), generator=torch.Generator().manual_seed(0))[:100]]
    kmeans = {"n_features_in_": 768, "_n_threads": 4, "cluster_centers_": centers + 0.05 * torch.randn_like(centers)}
    torch.save(kmeans, out / "kmeans100.pt")
    for r in ref.values():
        r["labels"] = ref_kmeans(kmeans).predict(r["layer7"].numpy())
    return {"dir": out, "wav_dir": wav_dir, "wavs": wavs, "ref": ref}


@pytest.mark.parametrize("fmt", ["v0.1", "v0.2"])
def test_hubert_matches_original(hubert_files, fmt):
    from espnet_softvc.units.hubert import load_content_encoder

    model, kind = load_content_encoder(hubert_files["dir"] / f"soft-{fmt}.pt")
    assert kind == "hubert-soft"
    for name, wav in hubert_files["wavs"].items():
        ref = hubert_files["ref"][name]
        with torch.inference_mode():
            soft, layer7 = model.soft_units(wav[None])[0], model.encode(wav[None], layer=7)[0]
        assert soft.shape == ref["soft"].shape == (len(wav) // 320, 256)
        assert (soft - ref["soft"]).abs().max() <= 1e-4
        assert (layer7 - ref["layer7_soft"]).abs().max() <= 1e-4


@pytest.mark.slow
def test_encode_cli_matches_original(hubert_files, tmp_path):
    files, wav_dir = hubert_files["dir"], hubert_files["wav_dir"]
    run_cli(ENCODE, "soft", wav_dir, tmp_path / "soft", "--checkpoint", files / "soft-v0.1.pt", "--nj", 2, check=True)
    run_cli(
        ENCODE,
        "discrete",
        wav_dir,
        tmp_path / "discrete",
        "--checkpoint",
        files / "discrete-v0.2.pt",
        "--kmeans",
        files / "kmeans100.pt",
        check=True,
    )
    for name, ref in hubert_files["ref"].items():
        soft = np.load(tmp_path / "soft" / name.replace(".wav", ".npy"))
        labels = np.load(tmp_path / "discrete" / name.replace(".wav", ".npy"))
        assert soft.dtype == np.float32 and soft.shape == (len(hubert_files["wavs"][name]) // 320, 256)
        assert np.abs(soft - ref["soft"].numpy()).max() <= 1e-4
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, ref["labels"])
    assert len(set(np.concatenate([r["labels"] for r in hubert_files["ref"].values()]))) > 10


@pytest.fixture(scope="module")
def offline(tmp_path_factory, tiny_corpus):
    """softvc-train-units on the tiny corpus (train dir, dev dir), few steps."""
    out = tmp_path_factory.mktemp("offline")
    wavs = tiny_corpus / "wavs"
    run_cli(
        TRAIN,
        wavs / "train",
        out,
        "--dev",
        wavs / "dev",
        "--num_clusters",
        100,
        "--steps",
        30,
        "--warmup",
        1,
        "--lr",
        2e-3,
        "--batch_size",
        4,
        "--segment",
        50,
        "--valid_interval",
        30,
        check=True,
    )
    data = tmp_path_factory.mktemp("data")
    for split in ("train", "dev"):
        paths = sorted((wavs / split).glob("*.wav"))
        (data / split).mkdir()
        (data / split / "wav.scp").write_text("".join(f"{p.stem} {p}\n" for p in paths))
    return out, data


@pytest.mark.slow
def test_offline_kmeans_units(offline, tmp_path):
    out, data = offline
    proc = run_cli(DUMP, "discrete", data / "train", tmp_path / "train", "--kmeans", out / "kmeans.pt", "--nj", 2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    units = dict(kaldiio.load_scp(str(tmp_path / "train" / "units.scp")))
    paths = dict(line.split() for line in (data / "train" / "wav.scp").read_text().splitlines())
    assert sorted(units) == sorted(paths)
    for utt, ids in units.items():
        assert ids.dtype == np.int32 and ids.shape == (len(read_16k(paths[utt])) // 320,)
    assert set(np.concatenate(list(units.values()))) == set(range(100))  # every configured id is used on train
    text = dict(line.split(maxsplit=1) for line in (tmp_path / "train" / "text").read_text().splitlines())
    assert {u: [int(t) for t in text[u].split()] for u in text} == {u: ids.tolist() for u, ids in units.items()}
    tokens = (tmp_path / "train" / "tokens.txt").read_text().split()
    assert tokens == ["<blank>", "<unk>", *map(str, range(100)), "<sos/eos>"]
    # a rerun keeps finished shards; the dev set uses the k-means learned on train
    ark = tmp_path / "train" / "data" / "units.1.ark"
    mtime = ark.stat().st_mtime_ns
    run_cli(DUMP, "discrete", data / "train", tmp_path / "train", "--kmeans", out / "kmeans.pt", "--nj", 2, check=True)
    assert ark.stat().st_mtime_ns == mtime
    run_main(DUMP, "discrete", data / "dev", tmp_path / "dev", "--kmeans", out / "kmeans.pt", check=True)
    assert len((tmp_path / "dev" / "text").read_text().splitlines()) == 2


@pytest.mark.slow
def test_soft_encoder_trains_and_encodes(offline, tmp_path):
    out, data = offline
    history = yaml.safe_load((out / "train_log.yaml").read_text())["soft_encoder"]["history"]
    losses = [entry["loss"] for entry in history]
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1
    assert "dev_accuracy" in history[-1]
    proc = run_main(DUMP, "soft", data / "dev", tmp_path / "dev", "--checkpoint", out / "soft_encoder.pt")
    assert proc.returncode == 0, proc.stderr[-2000:]
    paths = dict(line.split() for line in (data / "dev" / "wav.scp").read_text().splitlines())
    for utt, units in kaldiio.load_scp(str(tmp_path / "dev" / "units.scp")).items():
        assert units.dtype == np.float32 and units.shape == (len(read_16k(paths[utt])) // 320, 256)
        assert np.isfinite(units).all() and units.std() > 0


@pytest.mark.slow
def test_user_errors(offline, hubert_files, tmp_path):
    out, _ = offline
    kmeans = out / "kmeans.pt"
    (tmp_path / "empty").mkdir()
    sf.write(tmp_path / "empty" / "x.wav", np.zeros(0, dtype=np.float32), 16000)
    proc = run_main(ENCODE, "discrete", tmp_path / "empty", tmp_path / "o", "--kmeans", kmeans)
    assert_user_error(proc, "x.wav", "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "y.wav").write_text("not audio at all\n")
    proc = run_main(ENCODE, "discrete", tmp_path / "text", tmp_path / "o", "--kmeans", kmeans)
    assert_user_error(proc, "y.wav", "audio")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "wav.scp").write_text(f"utt1 {tmp_path / 'text' / 'y.wav'}\n")
    assert_user_error(
        run_main(DUMP, "discrete", tmp_path / "data", tmp_path / "d", "--kmeans", kmeans), "utt1", "audio"
    )
    narrow = {"n_features_in_": 39, "_n_threads": 1, "cluster_centers_": torch.randn(100, 39)}  # no "features": HuBERT
    torch.save(narrow, tmp_path / "kmeans39.pt")
    proc = run_main(
        ENCODE,
        "discrete",
        hubert_files["wav_dir"],
        tmp_path / "o",
        "--kmeans",
        tmp_path / "kmeans39.pt",
        "--checkpoint",
        hubert_files["dir"] / "discrete-v0.2.pt",
    )
    assert_user_error(proc, "kmeans39.pt", "width 39")
    proc = run_main(
        ENCODE,
        "soft",
        hubert_files["wav_dir"],
        tmp_path / "o",
        "--checkpoint",
        hubert_files["dir"] / "discrete-v0.2.pt",
    )
    assert_user_error(proc, "discrete-v0.2.pt", "HuBERT-Discrete")
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pt")
    proc = run_main(ENCODE, "soft", hubert_files["wav_dir"], tmp_path / "o", "--checkpoint", tmp_path / "other.pt")
    assert_user_error(proc, "other.pt", "not a bshall/hubert checkpoint")


# ---- speaker-independent offline units (issue 18, point 2) ----
def test_speaker_probe_separates_speaker_information_from_content():
    from espnet_softvc.units.probe import speaker_probe, utterance_vector
    from espnet_softvc.utils.errors import UserError

    rng = np.random.default_rng(0)
    speakers = [s for s in "abcde" for _ in range(8)]
    content = [rng.standard_normal((30, 16)) for _ in speakers]
    offsets = {s: 0.5 * rng.standard_normal(16) for s in "abcde"}
    with_speaker = speaker_probe([c + offsets[s] for c, s in zip(content, speakers)], speakers)
    without = speaker_probe(content, speakers)
    assert with_speaker["accuracy"] >= 0.95 and with_speaker["chance"] == 0.2 and with_speaker["folds"] == 5
    assert without["accuracy"] <= 0.45
    # discrete units: the histogram of ids; speakers that use other ids are told apart
    ids = [rng.integers(0, 50, 40) + (50 if s in "ab" else 0) for s in speakers]
    assert np.allclose(utterance_vector(ids[0]).sum(), 1) and utterance_vector(ids[0]).shape == (100,)
    two = speaker_probe(ids, ["ab" if s in "ab" else "cde" for s in speakers])
    assert two["accuracy"] == 1.0 and two["speakers"] == 2
    with pytest.raises(UserError, match="at least 2 speakers"):
        speaker_probe(content, ["a"] * len(content))
    with pytest.raises(UserError, match="speaker b has 1 utterance"):
        speaker_probe(content[:3], ["a", "a", "b"])
    with pytest.raises(UserError, match="out of range"):
        speaker_probe([np.array([1, 100]), np.array([2, 3])] * 2, ["a", "b"] * 2)


def test_parallel_label_transfer_follows_the_alignment(tiny_corpus):
    from espnet_softvc.units.label_transfer import transfer_labels
    from espnet_softvc.utils.io import load_audio

    wav = load_audio(sorted((tiny_corpus / "wavs" / "train").glob("*.wav"))[0])
    labels = np.arange(len(wav) // 320) % 100
    assert np.array_equal(transfer_labels(wav, wav, labels), labels)  # a voice aligned with itself
    delayed = torch.cat([torch.zeros(320 * 25), wav])  # 0.5 s of silence first
    moved = transfer_labels(delayed, wav, labels)
    assert moved.shape == (len(delayed) // 320,)
    assert (moved[25:] == labels).mean() > 0.9  # the speech keeps its labels
    assert set(moved[:20]) <= set(labels[:3])  # silence matches the reference's first (silent) frames


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    """Kaldi data dirs: ``train`` (flite slt, 24 ARCTIC "a" prompts), ``others_train`` (rms, awb, kal16 and an
    espeak-ng voice on the same 24 prompts) and ``probe`` (the five voices on 8 held-out "b" prompts), 22.05 kHz."""
    from espnet_softvc.data.corpus import prompts, speak, speaker_name

    out = tmp_path_factory.mktemp("voices")
    a, b = prompts()["a"][:24], prompts()["b"][:8]
    sets = {"train": [("slt", i, t) for i, t in enumerate(a)]}
    others = ("rms", "awb", "kal16", "en-us")
    sets["others_train"] = [(v, i, t) for v in others for i, t in enumerate(a)]
    sets["probe"] = [(v, 100 + i, t) for v in ("slt", *others) for i, t in enumerate(b)]
    for name, rows in sets.items():
        (out / name).mkdir()
        utts = sorted((f"{speaker_name(v)}-{i:04d}", v, t) for v, i, t in rows)
        for utt, voice, text in utts:
            speak(text, out / "wavs" / f"{utt}.wav", voice)
        (out / name / "wav.scp").write_text("".join(f"{u} {out / 'wavs' / u}.wav\n" for u, _, _ in utts))
        (out / name / "text").write_text("".join(f"{u} {t}\n" for u, _, t in utts))
        (out / name / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u, _, _ in utts))
    return out


@pytest.mark.slow
def test_units_learned_across_voices_carry_less_speaker(voices, tmp_path):
    """softvc-train-units with other voices (parallel sentences learn the target's units) and the speaker probe:
    mean log-mels and the target-only MFCC k-means units identify the speaker; the soft encoder's units learned
    across voices much less, and less than the same encoder learned on the target alone."""
    common = ["--steps", 150, "--lr", 1e-3, "--warmup", 20, "--batch_size", 8, "--probe", voices / "probe"]
    run_cli(TRAIN, voices / "train", tmp_path / "multi", "--extra_train", voices / "others_train", *common, check=True)
    run_cli(TRAIN, voices / "train", tmp_path / "target", *common, check=True)
    multi = yaml.safe_load((tmp_path / "multi" / "train_log.yaml").read_text())
    target = yaml.safe_load((tmp_path / "target" / "train_log.yaml").read_text())
    assert multi["extra_train"]["utterances"] == 96 and multi["extra_train"]["parallel"] == 96
    assert multi["extra_train"]["speakers"] == ["awb", "espeak_en_us", "kal16", "rms"]
    acc = {
        name: {k: v["accuracy"] for k, v in log["probe"].items()}
        for name, log in (("multi", multi), ("target", target))
    }
    print(acc)
    assert multi["probe"]["mel"]["speakers"] == 5 and multi["probe"]["mel"]["chance"] == 0.2
    assert acc["multi"]["mel"] >= 0.9 and acc["multi"]["kmeans"] >= 0.9  # speaker-dependent
    assert acc["multi"]["soft"] <= acc["multi"]["mel"] - 0.2
    assert acc["multi"]["soft"] < acc["target"]["soft"] and acc["multi"]["predicted"] < acc["target"]["predicted"]


def test_log_mel_front_end_frames_gain_and_checkpoint(tmp_path):
    """The offline encoder's log-mel front end gives the conv stack's N = floor(S / 320) frames at any length, is
    blind to the recording level (mean normalisation over time), and its checkpoint rebuilds it exactly."""
    from espnet_softvc.units.hubert import ContentEncoder, load_content_encoder
    from espnet_softvc.units.soft_encoder import SMALL_LOGMEL
    from espnet_softvc.utils.errors import UserError

    torch.manual_seed(0)
    model = ContentEncoder(SMALL_LOGMEL).eval()
    wav = torch.randn(1, 16000 * 2 + 123) * 0.1
    with torch.no_grad():
        for samples in (640, 1000, 16000, wav.size(1)):
            assert model.soft_units(wav[:, :samples]).shape == (1, samples // 320, 256)
        units = model.soft_units(wav)
        assert torch.allclose(model.soft_units(4 * wav), units, atol=1e-4)  # +ln 4 on every bin, removed
        assert not torch.allclose(model.soft_units(wav.flip(1)), units, atol=1e-2)
    torch.save(model.checkpoint(), tmp_path / "enc.pt")
    loaded, kind = load_content_encoder(tmp_path / "enc.pt")
    with torch.no_grad():
        assert kind == "small" and torch.equal(loaded.soft_units(wav), units)
    bad = model.checkpoint()
    bad["content_encoder"]["backbone"] = {**SMALL_LOGMEL, "frontend": "fbank"}
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="bad.pt: broken content-encoder checkpoint .*unknown content-encoder frontend"):
        load_content_encoder(tmp_path / "bad.pt")


def test_phone_labels_follow_the_segments(tmp_path):
    """Each 20 ms frame takes the phone (and which half of it) at its centre, 320 n + 160 samples; past the last
    segment, the last label; malformed segmentations are one-line errors naming the file."""
    from espnet_softvc.data.phones import (
        NUM_LABELS,
        PHONES,
        STATES,
        frame_labels,
        label_phone,
        parse_segments,
        read_segments,
    )
    from espnet_softvc.utils.errors import UserError

    segments = parse_segments("pau:0.100 hh:0.180 ay:0.410")  # halves: 0.05, 0.14, 0.295
    labels = frame_labels(segments, 25)
    centres = np.arange(25) * 0.02 + 0.01
    expect = [
        STATES * PHONES.index("pau") + (c >= 0.05)
        if c < 0.1
        else STATES * PHONES.index("hh") + (c >= 0.14)
        if c < 0.18
        else STATES * PHONES.index("ay") + (c >= 0.295)
        for c in centres
    ]
    assert labels.tolist() == expect and labels.dtype == np.int64
    assert [label_phone(i) for i in labels[[0, 5, 12, 24]]] == ["pau", "hh", "ay", "ay"]
    assert NUM_LABELS == 2 * len(PHONES) <= 100 and len(set(PHONES)) == len(PHONES)
    for text, needle in (("pau:0.1 xx:0.2", "unknown phone 'xx'"), ("pau-0.1", "not a 'phone:end_time'"), ("", "no")):
        with pytest.raises(UserError, match=needle):
            parse_segments(text, "x.phones")
    bad = tmp_path / "bad.phones"
    bad.write_text("pau:zero")
    with pytest.raises(UserError, match="bad.phones"):
        read_segments(bad)


def test_corpus_keeps_flite_phone_segmentations(tiny_corpus):
    """The built-in corpus writes flite's segmentation beside each wav; it spans the wav and starts with silence."""
    import soundfile as sf

    from espnet_softvc.data.phones import frame_labels, label_phone, phones_path, read_segments

    wavs = sorted((tiny_corpus / "wavs" / "train").glob("*.wav"))
    assert wavs and all(phones_path(w).is_file() for w in wavs)
    for wav in wavs[:5]:
        segments = read_segments(phones_path(wav))
        assert segments[0][0] == "pau" and abs(segments[-1][1] - sf.info(wav).duration) < 0.03
        assert all(a[1] < b[1] for a, b in zip(segments, segments[1:]))
        labels = frame_labels(segments, int(sf.info(wav).duration * 50))
        assert label_phone(labels[0]) == "pau" and len(set(labels)) > 10


def test_vocal_tract_warp_moves_spectral_peaks():
    """warp_mel: alpha 1 is the identity; a peak at frequency f moves to about alpha f; every bin stays finite."""
    from espnet_softvc.units.perturb import MEL_HZ, Perturbation, warp_mel

    mel = torch.full((1, 128, 3), -5.0)
    peak = int(torch.argmin((MEL_HZ - 1000).abs()))
    mel[0, peak] = 0.0
    assert torch.equal(warp_mel(mel.repeat(2, 1, 1), torch.tensor([1.0, 1.0])), mel.repeat(2, 1, 1))
    for alpha in (0.8, 1.2):
        moved = warp_mel(mel, torch.tensor([alpha]))[0, :, 0]
        assert abs(float(MEL_HZ[moved.argmax()]) - 1000 * alpha) < 60
    perturb = Perturbation(seed=0)
    x = torch.randn(4, 16000) * 0.1
    y = perturb.channel(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.equal(x, y)
    alphas = perturb.alphas(1000)
    assert alphas.min() >= 0.8 and alphas.max() <= 1.25 and (alphas == 1).float().mean() < 0.2


@pytest.fixture(scope="module")
def phone_encoder(voices, tmp_path_factory):
    """softvc-train-units as the recipe runs it (phone targets, perturbation) on the ``voices`` sets: its out dir."""
    out = tmp_path_factory.mktemp("phone_encoder")
    common = ["--steps", 400, "--warmup", 20, "--batch_size", 8, "--valid_interval", 100]
    run_cli(
        TRAIN,
        voices / "train",
        out,
        "--extra_train",
        voices / "others_train",
        "--targets",
        "phones",
        "--perturb",
        "true",
        *common,
        check=True,
    )
    return out


def _sox(src, dst, *effects):
    subprocess.run(["sox", str(src), "-r", "16000", str(dst), *effects], check=True, capture_output=True)
    return dst


@pytest.mark.slow
def test_units_of_a_perturbed_utterance_stay_close(phone_encoder, voices, tmp_path):
    """A held-out utterance with its pitch and formants shifted (sox pitch, +-300 cents), its spectrum tilted (EQ) or
    a room added gives units close to the original's: frame by frame, nearer than another sentence is. The flite
    voices learned their own phones, the espeak-ng one the target's by DTW."""
    from espnet_softvc.units.extractor import UnitExtractor
    from espnet_softvc.utils.io import load_audio

    log = yaml.safe_load((phone_encoder / "train_log.yaml").read_text())
    assert log["extra_train"]["segmented"] == 72 and log["extra_train"]["parallel"] == 24
    soft = UnitExtractor("soft", checkpoint=phone_encoder / "soft_encoder.pt")
    ids = UnitExtractor("discrete", checkpoint=phone_encoder / "soft_encoder.pt")
    wavs = sorted((voices / "wavs").glob("slt-01*.wav"))  # the target's held-out "b" prompts (probe set)
    original = _sox(wavs[0], tmp_path / "o.wav")
    versions = {
        "pitch up": _sox(original, tmp_path / "up.wav", "pitch", "300"),
        "pitch down": _sox(original, tmp_path / "down.wav", "pitch", "-300"),
        "EQ": _sox(
            original, tmp_path / "eq.wav", "equalizer", "800", "1q", "+10", "bass", "-10", "treble", "+6", "gain", "-8"
        ),
        "another sentence": _sox(wavs[1], tmp_path / "x.wav"),
    }
    reference, reference_ids = soft(load_audio(original)), ids(load_audio(original))
    scores = {}
    for name, path in versions.items():
        units, labels = soft(load_audio(path)), ids(load_audio(path))
        n = min(len(units), len(reference))
        a, b = (u[:n] / np.linalg.norm(u[:n], axis=1, keepdims=True) for u in (units, reference))
        scores[name] = (float((a * b).sum(1).mean()), float((labels[:n] == reference_ids[:n]).mean()))
    print(scores)
    other_cos, other_agree = scores.pop("another sentence")
    for name, (cos, agree) in scores.items():
        assert cos > other_cos + 0.3 and agree > other_agree + 0.2, (name, scores, other_cos)


@pytest.mark.slow
def test_real_recordings_give_units_that_are_not_degenerate(phone_encoder):
    """Real speech of speakers the encoder never heard (tests/data/realdev, 24-48 kHz) gives varied units: no label
    holds most frames, many labels are used, and the soft units change from frame to frame."""
    from conftest import REALDEV

    from espnet_softvc.units.extractor import UnitExtractor
    from espnet_softvc.utils.io import load_audio

    soft = UnitExtractor("soft", checkpoint=phone_encoder / "soft_encoder.pt")
    ids = UnitExtractor("discrete", checkpoint=phone_encoder / "soft_encoder.pt")
    for path in sorted(REALDEV.glob("*.wav")):
        if path.stem.startswith(("noise", "rir")):
            continue
        wav = load_audio(path)
        labels, units = ids(wav), soft(wav)
        counts = np.bincount(labels, minlength=100)
        assert counts.max() < 0.5 * len(labels) and (counts > 0).sum() >= 12, (path.name, counts.max(), len(labels))
        step = np.linalg.norm(np.diff(units, axis=0), axis=1).mean() / np.linalg.norm(units, axis=1).mean()
        assert step > 0.1, (path.name, step)
