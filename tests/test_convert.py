"""Voice conversion (softvc-convert, Speech2Speech): parity with the original demo flow, lengths, model formats and
every bad input (issue 18, points 1 and 7).

The reference is the original Soft-VC demo (bshall/soft-vc README) on ``tests/originals.py``'s restatements of the
original code (DESIGN.md sections 3-5, original parameter names): ``hubert.units`` (bshall/hubert),
``acoustic.generate`` (bshall/acoustic-model), ``hifigan(mel)`` (bshall/hifigan). Random weights are saved in the
original file formats.
"""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
import yaml
from conftest import assert_user_error, module_prefixed, run_cli, run_main, small_s2s
from originals import OriginalGenerator, RefAcousticModel, RefHubert, ref_kmeans

CONVERT = "espnet_softvc.bin.convert"
GB = 1024**3


def demo(hubert, acoustic, hifigan, path):
    """The original demo: torchaudio.load (= soundfile float32, channels first), resample to 16 kHz, units,
    generate, vocode. Returns (units, mel (1, 2N, 128), wav (S',))."""
    source, sr = sf.read(path, dtype="float32", always_2d=True)
    source = torchaudio.functional.resample(torch.from_numpy(source.T), sr, 16000)
    source = source.unsqueeze(0)  # (1, 1, S)
    with torch.inference_mode():
        units = hubert.units(source)
        mel = acoustic.generate(units if units.dim() == 3 else units.unsqueeze(0))
        target = hifigan(mel.transpose(1, 2))
    return units, mel, target.view(-1)


def randomized(model, seed, scale):
    """Every parameter random: norm gains and biases too (weight_g near 1 keeps HiFi-GAN's tanh unsaturated)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = float(name.endswith("weight_g") or (p.dim() == 1 and "norm" in name and name.endswith("weight")))
            p.copy_(base + scale * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.fixture(scope="module")
def originals(tmp_path_factory, tiny_corpus):
    """The three original checkpoints of each kind (random weights, original formats) and a 22.05 kHz source."""
    out = tmp_path_factory.mktemp("originals")
    src = sorted((tiny_corpus / "wavs" / "train").glob("*.wav"))[0]
    wav, sr = sf.read(src, dtype="float32")
    (out / "in" / "spk").mkdir(parents=True)
    sf.write(out / "in" / "spk" / "src.wav", wav[: int(0.6 * sr) + 37], sr, subtype="FLOAT")  # odd length
    files = {}
    torch.manual_seed(0)
    for kind, labels in (("soft", 100), ("discrete", 504)):
        hubert = randomized(RefHubert(labels), seed=1 if kind == "soft" else 2, scale=0.02)
        torch.save({"hubert": module_prefixed(hubert)}, out / f"hubert-{kind}.pt")  # release v0.2 layout
        acoustic = randomized(RefAcousticModel(kind == "discrete"), seed=3, scale=0.05)
        optimizer = torch.optim.AdamW(acoustic.parameters(), lr=4e-4)
        checkpoint = {"acoustic-model": module_prefixed(acoustic), "optimizer": optimizer.state_dict(), "step": 3}
        torch.save({**checkpoint, "loss": 0.5}, out / f"acoustic-{kind}.pt")  # release v0.1 layout
        hifigan = randomized(OriginalGenerator(), seed=4, scale=0.05)
        torch.save(module_prefixed(hifigan), out / f"hifigan-{kind}.pt")  # bare generator, weight norm
        files[kind] = dict(hubert=hubert, acoustic=acoustic, hifigan=hifigan)
    # kmeans100 layout, centres near layer-7 frames of the source so that many ids occur
    source = torchaudio.functional.resample(torch.from_numpy(wav[: int(0.6 * sr) + 37]), sr, 16000)
    with torch.inference_mode():
        frames = files["discrete"]["hubert"].encode(source[None, None], layer=7)[0]
    centers = frames[torch.randperm(len(frames), generator=torch.Generator().manual_seed(0))[:100]]
    if len(centers) < 100:
        centers = torch.cat([centers, centers[torch.arange(100 - len(centers)) % len(centers)] + 0.5])
    kmeans = {"n_features_in_": 768, "_n_threads": 4, "cluster_centers_": centers + 0.01 * torch.randn_like(centers)}
    torch.save(kmeans, out / "kmeans100.pt")
    files["discrete"]["hubert"].kmeans = ref_kmeans(kmeans)
    return out, files


def s2s_files(out, kind):
    extra = {"kmeans": str(out / "kmeans100.pt")} if kind == "discrete" else {}
    return dict(
        model_file=str(out / f"acoustic-{kind}.pt"),
        content_encoder=str(out / f"hubert-{kind}.pt"),
        vocoder_file=str(out / f"hifigan-{kind}.pt"),
        **extra,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["soft", "discrete"])
def test_original_checkpoints_equal_the_demo_flow(originals, kind):
    from espnet_softvc.bin import convert
    from espnet_softvc.bin.vc_inference import Speech2Speech

    out, files = originals
    path = out / "in" / "spk" / "src.wav"
    ref_units, ref_mel, ref_wav = demo(files[kind]["hubert"], files[kind]["acoustic"], files[kind]["hifigan"], path)
    wav, sr = sf.read(path, dtype="float32")
    s16 = torchaudio.functional.resample(torch.from_numpy(wav), sr, 16000).numel()
    assert ref_wav.numel() == 320 * (s16 // 320)  # the demo's own length

    s2s = Speech2Speech(**s2s_files(out, kind))
    result = s2s(wav, sr)
    if kind == "discrete":
        assert torch.equal(result["units"], ref_units)
        assert len(set(ref_units.tolist())) > 5
    else:
        assert (result["units"] - ref_units[0]).abs().max() <= 1e-4
    mel_diff = (result["feat_gen"] - ref_mel[0]).abs().max().item()
    wav_diff = (result["wav"] - ref_wav).abs().max().item()
    print(f"{kind}: mel max abs diff {mel_diff:.2e}, wav max abs diff {wav_diff:.2e}, wav std {ref_wav.std():.3f}")
    assert result["feat_gen"].shape == ref_mel.shape[1:] and mel_diff <= 1e-4
    assert result["wav"].shape == ref_wav.shape == (320 * (s16 // 320),)
    assert ref_wav.std() > 0.01 and wav_diff <= 1e-4

    # the CLI writes the same, as 16-bit PCM at 16 kHz under the same relative path
    argv = [out / "in", out / f"out-{kind}", "--acoustic_model", out / f"acoustic-{kind}.pt"]
    argv += ["--content_encoder", out / f"hubert-{kind}.pt", "--vocoder", out / f"hifigan-{kind}.pt"]
    argv += ["--kmeans", out / "kmeans100.pt"] if kind == "discrete" else []
    convert.main(list(map(str, argv)))
    written, rate = sf.read(out / f"out-{kind}" / "spk" / "src.wav", dtype="float32")
    assert rate == 16000 and written.shape == ref_wav.shape
    assert np.abs(written - ref_wav.clamp(-1, 1).numpy()).max() <= 1 / 32767 + 1e-4


def write(path, wav, sr, subtype="PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, sr, subtype=subtype)
    return path


def speech(seconds, sr, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.2 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0) + 0.02 * rng.standard_normal(t.size)
    wav = wav.astype(np.float32)
    return np.stack([wav, 0.5 * wav[::-1]], 1) if channels == 2 else wav


@pytest.mark.parametrize("kind", ["soft", pytest.param("discrete", marks=pytest.mark.slow)])
def test_any_rate_and_channels_give_320_floor_samples(small, tmp_path, kind):
    from espnet_softvc.utils.io import load_audio

    s2s = small_s2s(small, kind)
    cases = [(8000, 1, 0.41), (22050, 1, 0.5), (48000, 2, 0.33), (16000, 1, (640 + 319) / 16000)]
    for sr, channels, seconds in cases:
        path = write(tmp_path / f"{sr}-{channels}.wav", speech(seconds, sr, channels), sr)
        s16 = load_audio(path).numel()
        data, _ = sf.read(path, dtype="float32", always_2d=True)
        out = s2s(data.T, sr)  # (C, S), channels averaged
        n = s16 // 320
        assert out["units"].shape == ((n, 256) if kind == "soft" else (n,))
        assert out["feat_gen"].shape == (2 * n, 128) and out["wav"].shape == (320 * n,)
        assert torch.isfinite(out["wav"]).all() and out["wav"].abs().max() > 0
        assert torch.equal(out["wav"], s2s.convert_16k(load_audio(path))["wav"])  # same as from the file


def test_our_soft_encoder_gives_its_predicted_units_to_a_discrete_model(small):
    """softvc-train-units' soft encoder predicts the k-means units it was trained on: argmax over its cosine logits."""
    from espnet_softvc.units.extractor import UnitExtractor
    from espnet_softvc.units.hubert import load_content_encoder

    s2s = small_s2s(small, "discrete", content_encoder=str(small / "soft_encoder.pt"))
    wav = torch.from_numpy(speech(0.5, 16000))
    out = s2s.convert_16k(wav)
    encoder, _ = load_content_encoder(small / "soft_encoder.pt")
    with torch.inference_mode():
        expected = encoder.logits(encoder.soft_units(wav[None]))[0].argmax(-1)
    assert out["units"].dtype == torch.int64 and torch.equal(out["units"], expected)
    assert np.array_equal(UnitExtractor("discrete", checkpoint=small / "soft_encoder.pt")(wav), expected.numpy())
    assert out["wav"].shape == (320 * 25,)


@pytest.mark.slow
def test_cli_mirrors_paths_in_parallel(small, tmp_path):
    from espnet_softvc.utils.io import load_audio

    names = ["a.wav", "spk1/b.wav", "spk1/deep/c.wav", "spk2/d.wav"]
    for i, name in enumerate(names):
        write(
            tmp_path / "in" / name,
            speech(0.3 + 0.1 * i, [16000, 22050, 44100, 24000][i], 1 + i % 2, seed=i),
            8000 * (2 + i),
        )
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    args = ["--content_encoder", small / "soft_encoder.pt", "--acoustic_model", small / "acoustic-soft.pt"]
    proc = run_cli(CONVERT, tmp_path / "in", tmp_path / "out", *args, "--nj", 2, check=True)
    assert "wrote 4 converted wavs" in proc.stdout
    s2s, threads = small_s2s(small), torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers (--nj 2): the same float summation order
    for name in names:
        wav, rate = sf.read(tmp_path / "out" / name, dtype="float32")
        expected = s2s.convert_16k(load_audio(tmp_path / "in" / name))["wav"].clamp(-1, 1).numpy()
        assert rate == 16000 and wav.shape == expected.shape == (
            320 * (load_audio(tmp_path / "in" / name).numel() // 320),
        )
        assert np.abs(wav - expected).max() <= 1 / 32767 + 1e-6
    torch.set_num_threads(threads)
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == sorted([".softvc-convert.yaml", *names])  # the options a rerun compares
    args = ["--content_encoder", small / "km.pt", "--acoustic_model", small / "acoustic-soft.pt"]
    proc = run_main(CONVERT, tmp_path / "in", tmp_path / "o2", *args)
    assert_user_error(proc, "acoustic-soft.pt", "cannot take the discrete units")  # the console path, one line


@pytest.mark.slow
def test_espnet_model_file_and_packed_model_give_the_same_wav(small, tmp_path):
    from espnet_softvc.bin.vc_inference import Speech2Speech
    from espnet_softvc.tasks.load import load_model, save_espnet

    config, model_file = save_espnet(load_model(small / "acoustic-discrete.pt")[0], tmp_path / "exp")
    run_cli(
        "espnet_softvc.bin.pack",
        "--train_config",
        config,
        "--model_file",
        model_file,
        "--root",
        tmp_path,
        "--outpath",
        tmp_path / "model.zip",
        check=True,
    )
    wav = speech(0.5, 22050)
    expected = small_s2s(small, "discrete")(wav, 22050)
    km = str(small / "km.pt")
    for s2s in (
        Speech2Speech(str(config), str(model_file), content_encoder=km),
        Speech2Speech.from_pretrained(str(tmp_path / "model.zip"), content_encoder=km),
        Speech2Speech.from_pretrained(str(small / "acoustic-discrete.pt"), content_encoder=km),
    ):
        out = s2s(wav, 22050)
        assert torch.equal(out["units"], expected["units"])
        assert (out["wav"] - expected["wav"]).abs().max() <= 1e-5
    write(tmp_path / "in" / "x.wav", wav, 22050, "FLOAT")
    proc = run_cli(
        CONVERT, tmp_path / "in", tmp_path / "out", "--content_encoder", km, "--acoustic_model", tmp_path / "model.zip"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sf.read(tmp_path / "out" / "x.wav")[0].shape == expected["wav"].shape
    proc = run_cli(
        CONVERT,
        tmp_path / "in",
        tmp_path / "out2",
        "--content_encoder",
        km,
        "--acoustic_model",
        tmp_path / "model.zip",
        "--train_config",
        config,
    )
    assert_user_error(proc, "model.zip", "drop --train_config")


def test_chunked_vocoding_joins_pieces_exactly():
    """Vocoders other than Soft-VC HiFi-GAN get pieces of at most ~chunk frames, cross-faded: a vocoder whose
    samples depend only on their own frame gives exactly its one-call output; short mels are one call."""
    from espnet_softvc.bin.vc_inference import vocode
    from espnet_softvc.vocoders import GriffinLim

    calls = []

    def framewise(mel):
        calls.append(mel.size(0))
        return (mel[:, 0, None] + torch.linspace(0, 1, 160)).reshape(-1)

    mel = torch.randn(2345, 128)
    assert (vocode(framewise, mel, chunk=300, overlap=20) - framewise(mel)).abs().max() <= 1e-5
    assert len(calls) == 8 + 1 and max(calls[:-1]) == -(-2345 // 8) + 2 * 20  # 8 pieces + the one-call reference
    logmel = torch.randn(130, 128) - 4
    one = vocode(GriffinLim(), logmel, chunk=1000)
    assert one.shape == (160 * 130,) and torch.equal(one[: 160 * 129], GriffinLim()(logmel)[: 160 * 129])
    chunked = vocode(GriffinLim(), logmel, chunk=40, overlap=5)
    assert chunked.shape == (160 * 130,) and torch.isfinite(chunked).all()


# ---- bad input (point 7) ----
def convert_error(capsys, *argv):
    """Run softvc-convert in this process; it must exit 1 with one ``error:`` line and no traceback."""
    from espnet_softvc.bin import convert

    with pytest.raises(SystemExit) as exit_info:
        convert.main(list(map(str, argv)))
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_silence_converts_and_too_short_audio_is_one_line(small, tmp_path, capsys):
    from espnet_softvc.bin import convert

    write(tmp_path / "ok" / "silence.wav", np.zeros(16000 * 2 // 3, np.float32), 16000)
    write(tmp_path / "ok" / "two_units.wav", speech(640 / 16000, 16000), 16000)
    for kind, encoder in (("soft", "soft_encoder.pt"), ("discrete", "km.pt")):
        args = ["--content_encoder", small / encoder, "--acoustic_model", small / f"acoustic-{kind}.pt"]
        convert.main(list(map(str, [tmp_path / "ok", tmp_path / f"out-{kind}", *args])))
        silence, rate = sf.read(tmp_path / f"out-{kind}" / "silence.wav")
        assert rate == 16000 and silence.shape == (320 * 33,) and np.isfinite(silence).all()
        assert sf.read(tmp_path / f"out-{kind}" / "two_units.wav")[0].shape == (640,)
    write(tmp_path / "short" / "one.wav", np.array([0.1], np.float32), 22050)
    args = ["--content_encoder", small / "soft_encoder.pt", "--acoustic_model", small / "acoustic-soft.pt"]
    line = convert_error(capsys, tmp_path / "short", tmp_path / "o", *args)
    assert "one.wav: audio too short" in line and "needs 640" in line
    write(tmp_path / "short2" / "x.wav", speech(639 / 16000, 16000), 16000)
    assert "x.wav: audio too short (639 samples" in convert_error(capsys, tmp_path / "short2", tmp_path / "o", *args)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.wav"))


def test_mismatched_and_wrong_files_are_one_line(small, tmp_path, capsys):
    write(tmp_path / "in" / "x.wav", speech(0.3, 16000), 16000)
    soft_enc, km = small / "soft_encoder.pt", small / "km.pt"
    soft_am, disc_am, hifigan = small / "acoustic-soft.pt", small / "acoustic-discrete.pt", small / "hifigan-small.pt"
    cases = [
        ((km, soft_am), ["acoustic-soft.pt", "a soft acoustic model cannot take the discrete units of", "km.pt"]),
        ((soft_enc, hifigan), ["hifigan-small.pt: this is a HiFi-GAN vocoder, not an acoustic model"]),
        ((soft_am, soft_am), ["acoustic-soft.pt: this is a Soft-VC acoustic model, not a content encoder"]),
        ((hifigan, soft_am), ["hifigan-small.pt: this is a HiFi-GAN vocoder, not a content encoder"]),
        ((soft_enc, soft_enc), ["soft_encoder.pt: this is a content encoder", "not an acoustic model"]),
        ((soft_enc, km), ["km.pt: this is a k-means file", "not an acoustic model"]),
        ((soft_enc, tmp_path / "missing.pt"), ["missing.pt: not a file or folder"]),
    ]
    for (encoder, acoustic), needles in cases:
        line = convert_error(
            capsys, tmp_path / "in", tmp_path / "o", "--content_encoder", encoder, "--acoustic_model", acoustic
        )
        for needle in needles:
            assert needle in line, (needle, line)
    args = ["--content_encoder", soft_enc, "--acoustic_model", soft_am]
    line = convert_error(capsys, tmp_path / "in", tmp_path / "o", *args, "--vocoder", soft_am)
    assert "acoustic-soft.pt: not a HiFi-GAN vocoder checkpoint (a Soft-VC acoustic model)" in line
    line = convert_error(
        capsys, tmp_path / "in", tmp_path / "o", "--content_encoder", km, "--kmeans", km, "--acoustic_model", disc_am
    )
    assert "km.pt" in line and "MFCC k-means" in line
    line = convert_error(
        capsys,
        tmp_path / "in",
        tmp_path / "o",
        "--content_encoder",
        soft_enc,
        "--kmeans",
        km,
        "--acoustic_model",
        disc_am,
    )
    assert "km.pt: this k-means clusters MFCCs" in line
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "y.wav").write_text("not audio at all\n")
    assert "y.wav: not a readable audio file" in convert_error(capsys, tmp_path / "bad", tmp_path / "o", *args)
    (tmp_path / "empty").mkdir()
    assert "no *.wav files" in convert_error(capsys, tmp_path / "empty", tmp_path / "o", *args)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_hubert_files_in_the_wrong_place_are_one_line(originals, small, tmp_path, capsys):
    out, _ = originals
    write(tmp_path / "in" / "x.wav", speech(0.3, 16000), 16000)
    soft_am = small / "acoustic-soft.pt"
    cases = [
        (
            (out / "hubert-discrete.pt", soft_am),
            ["hubert-discrete.pt: HuBERT-Discrete gives discrete units with a k-means"],
        ),
        (
            (out / "kmeans100.pt", soft_am),
            ["kmeans100.pt: a k-means of HuBERT layer-7 features, not a content encoder"],
        ),
        ((out / "hubert-soft.pt", small / "acoustic-discrete.pt"), ["a discrete acoustic model cannot take the soft"]),
        (
            (small / "soft_encoder.pt", out / "hubert-soft.pt"),
            ["hubert-soft.pt: this is a content encoder", "not an acoustic model"],
        ),
    ]
    for (encoder, acoustic), needles in cases:
        line = convert_error(
            capsys, tmp_path / "in", tmp_path / "o", "--content_encoder", encoder, "--acoustic_model", acoustic
        )
        for needle in needles:
            assert needle in line, (needle, line)


def test_api_input_errors(small):
    from espnet_softvc.utils.errors import UserError

    s2s = small_s2s(small)
    with pytest.raises(UserError, match="utt: expected \\(S,\\) or channels first \\(C, S\\), got shape \\(4000, 2\\)"):
        s2s(np.zeros((4000, 2), np.float32), 16000, name="utt")
    with pytest.raises(UserError, match="expected a float waveform"):
        s2s(np.zeros(4000, np.int16), 16000)
    with pytest.raises(UserError, match="NaN or Inf"):
        s2s(np.full(4000, np.nan, np.float32), 16000)
    from espnet_softvc.bin.vc_inference import Speech2Speech

    with pytest.raises(UserError, match="needs a content_encoder"):
        Speech2Speech(model_file=str(small / "acoustic-soft.pt"))
    with pytest.raises(UserError, match=r"acoustic-soft.pt: speaker ids \[1\] given to a one-voice model"):
        small_s2s(small, sid=1)


# ---- a 10-minute wav: bounded memory ----
PEAK = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


@pytest.mark.slow
def test_ten_minute_wav_converts_in_bounded_memory(small, tmp_path):
    """Offline MFCC units, a small acoustic model and a small ParallelWaveGAN-format HiFi-GAN (not chunked by
    itself): 30000 units, 60000 frames, 9.6 M samples. The peak stays far below the float32 intermediate tensors
    of one-pass vocoding and the 1.9 GB that Griffin-Lim needs for 10 minutes in one call."""
    import os
    import subprocess
    import sys

    from espnet2.gan_tts.hifigan import HiFiGANGenerator

    minutes, sr = 10, 16000
    rng = np.random.default_rng(0)
    t = np.arange(minutes * 60 * sr) / sr
    wav = (0.1 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0)).astype(np.float32)
    write(tmp_path / "in" / "long.wav", wav, sr)
    params = dict(in_channels=128, channels=16, upsample_scales=[10, 4, 2, 2], upsample_kernel_sizes=[20, 8, 4, 4])
    params.update(resblock_kernel_sizes=[3], resblock_dilations=[[1, 3]])
    (tmp_path / "pwg").mkdir()
    config = {"sampling_rate": 16000, "hop_size": 160, "num_mels": 128, "generator_type": "HiFiGANGenerator"}
    (tmp_path / "pwg" / "config.yml").write_text(yaml.safe_dump({**config, "generator_params": params}))
    torch.save({"model": {"generator": HiFiGANGenerator(**params).state_dict()}}, tmp_path / "pwg" / "g.pkl")
    args = ["--content_encoder", small / "km.pt", "--acoustic_model", small / "acoustic-discrete.pt"]
    cmd = [sys.executable, "-c", PEAK, sys.executable, "-m", CONVERT, tmp_path / "in", tmp_path / "out", *args]
    cmd += ["--vocoder", tmp_path / "pwg" / "g.pkl"]
    proc = subprocess.run(
        list(map(str, cmd)), capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    peak = int(proc.stderr.splitlines()[-1]) * 1024
    out, rate = sf.read(tmp_path / "out" / "long.wav", dtype="float32")
    assert rate == 16000 and out.shape == (320 * (wav.size // 320),) and np.isfinite(out).all()
    print(f"10-minute conversion: peak {peak / GB:.2f} GB")
    assert peak < 1.5 * GB, f"softvc-convert peak {peak / GB:.2f} GB"


@pytest.mark.slow  # RNNoise in two processes
def test_source_denoiser_runs_before_the_content_encoder(small, tmp_path):
    """``--denoise rnnoise``: the noisy source is cleaned first (the output is the conversion of RNNoise's wav), which
    brings the units of real speech in real noise back towards those of the clean speech; streaming refuses it."""
    from espnet_softvc.postnet import external, noise
    from espnet_softvc.utils.errors import UserError
    from espnet_softvc.utils.io import load_audio
    from tests.conftest import REALDEV

    clean = load_audio(REALDEV / "vctk_p240_00000.wav").double().numpy()[: 3 * 16000]
    recording = load_audio(REALDEV / "noise_freesound_573577.wav").double().numpy()
    noisy = noise.mix(clean, noise.excerpt(recording, clean.size, np.random.default_rng(0)), 0.0).astype(np.float32)
    plain, denoising = small_s2s(small, "discrete"), small_s2s(small, "discrete", denoise="rnnoise")
    out = denoising.convert_16k(torch.from_numpy(noisy))
    expected = plain.convert_16k(torch.from_numpy(external.denoise(noisy, 16000, "rnnoise")))
    torch.testing.assert_close(out["wav"], expected["wav"])
    units = {name: plain.convert_16k(torch.as_tensor(x).float())["units"] for name, x in (("c", clean), ("n", noisy))}
    agreement = {name: float((u == units["c"]).float().mean()) for name, u in (("n", units["n"]), ("d", out["units"]))}
    assert agreement["d"] > agreement["n"] + 0.03, agreement  # MFCC k-means ids, random centres: 0.25 -> 0.31
    with pytest.raises(UserError, match="unknown source denoiser"):
        small_s2s(small, denoise="wiener")
    with pytest.raises(UserError, match="without a source denoiser"):
        denoising.convert_chunked(out["wav"], 40)
    write(tmp_path / "in" / "a.wav", noisy, 16000, "FLOAT")
    args = ["--content_encoder", small / "km.pt", "--acoustic_model", small / "acoustic-discrete.pt"]
    run_cli(CONVERT, tmp_path / "in", tmp_path / "out", *args, "--denoise", "rnnoise", check=True)
    converted, _ = sf.read(tmp_path / "out" / "a.wav", dtype="float32")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI: the same float summation order
    expected = denoising.convert_16k(load_audio(tmp_path / "in" / "a.wav"))["wav"].clamp(-1, 1).numpy()
    torch.set_num_threads(threads)
    assert np.abs(converted - expected).max() <= 1 / 32767 + 1e-6
    proc = run_cli(CONVERT, tmp_path / "in", tmp_path / "o2", *args, "--denoise", "rnnoise", "--chunk_ms", 40)
    assert_user_error(proc, "--chunk_ms", "without --denoise")
