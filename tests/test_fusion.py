"""The fusion denoiser (issue 19): the noisy mel with RNNoise's and DeepFilterNet3's outputs -> one cleaner mel.
Its start, that it learns to beat its inputs, its pairs (parallel and seeded), ESPnet, the CLI and the real-noise
table with it, and the rumble it is trained on."""

import numpy as np
import pytest
import torch

from espnet_softvc.postnet import noise
from espnet_softvc.postnet.fusion import FrontEndFusion, fusion_inputs
from espnet_softvc.postnet.model import denoise_loss
from espnet_softvc.scoring import metrics
from espnet_softvc.utils.errors import UserError
from tests.conftest import REALDEV, assert_user_error, run_cli, run_main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mixtures(speech):
    """Six 1.5 s flite crops in training noise at 0-10 dB: (inputs (6, T, 384), clean (6, T, 128))."""
    rng = np.random.default_rng(0)
    crops = [wav[8000:32000] for wav in speech if wav.size >= 32000][:6]
    inputs, clean = [], []
    for crop, kind in zip(crops, ("white", "rumble", "pink", "babble", "tonal", "rumble")):
        noisy = noise.mix(crop, noise.train_noise(kind, crop.size, rng, speech[6:]), rng.uniform(0, 10))
        inputs.append(fusion_inputs(noisy))
        clean.append(fusion_inputs(crop, front_ends=())[:, :128])
    return torch.stack(inputs), torch.stack(clean)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A research checkpoint of a randomly initialised (non-uniform) fusion denoiser."""
    torch.manual_seed(0)
    config = {"front_ends": ["rnnoise", "deepfilternet3"], "channels": 8, "dilations": [1, 2]}
    model = FrontEndFusion(**config)
    torch.nn.init.normal_(model.out.weight, std=0.5)
    path = tmp_path_factory.mktemp("fusion") / "fusion.pt"
    torch.save({"model": model.state_dict(), "config": config}, path)
    return path, model.eval()


def test_untrained_fusion_is_the_mean_of_its_candidates(mixtures):
    """Zero-initialised weights: the linear mean of [noisy, RNNoise, DeepFilterNet3, their minimum]; always inside
    the candidates' range."""
    inputs = mixtures[0][:2]
    model = FrontEndFusion()
    assert model.input_dim == 384
    out = model(inputs)
    assert out.shape == (2, inputs.size(1), 128)
    noisy, r, d = inputs.split(128, -1)
    expected = torch.stack((noisy, r, d, torch.minimum(r, d))).exp().mean(0).log()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.nn.init.normal_(model.out.weight, std=1.0)
    out = model(inputs)
    assert (out <= inputs.view(2, -1, 3, 128).amax(2) + 1e-5).all()
    assert (out >= inputs.view(2, -1, 3, 128).amin(2) - 1e-5).all()


@pytest.mark.slow
def test_fusion_learns_to_beat_both_front_ends(mixtures):
    """A few steps on six mixtures: the loss falls and the fused mel beats the better front end's mel-SNR."""
    inputs, clean = mixtures
    torch.manual_seed(0)
    model = FrontEndFusion(channels=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, _ = denoise_loss(model(inputs), clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0, losses

    def mean_snr(mels):
        return np.mean([metrics.mel_snr(m, c) for m, c in zip(mels, clean)])

    with torch.no_grad():
        fused = mean_snr(model(inputs))
    front_ends = [mean_snr(inputs[..., k * 128 : (k + 1) * 128]) for k in (1, 2)]
    assert fused > max(front_ends) + 0.5, (fused, front_ends)


def test_rumble_is_low_frequency_unit_power():
    rng = np.random.default_rng(0)
    for _ in range(5):
        wav = noise.rumble(32000, rng)
        power = np.abs(np.fft.rfft(wav)) ** 2
        freqs = np.fft.rfftfreq(wav.size, 1 / 16000)
        assert power[freqs < 500].sum() > 0.95 * power.sum()
        assert wav.std() == pytest.approx(1.0, rel=1e-6)


@pytest.mark.slow  # two pair runs through RNNoise and DeepFilterNet3
def test_fusion_pairs_are_seeded_and_parallel(speech, tmp_path):
    """make_pairs --front_ends: noisy entries (T, 384) whose first 128 bins are the plain pairs' noisy mel; the same
    pairs with 2 worker processes as with one."""
    import kaldiio
    import soundfile as sf

    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for i, wav in enumerate(speech[:2]):
        sf.write(wavs / f"u{i}.wav", wav[:24000].astype(np.float32), 16000)
    runs = {
        "plain": [],
        "nj1": ["--front_ends", "rnnoise", "deepfilternet3"],
        "nj2": ["--front_ends", "rnnoise", "deepfilternet3", "--nj", "2"],
    }
    for name, extra in runs.items():
        run_cli("espnet_softvc.bin.make_pairs", wavs, tmp_path / name, "--copies", 2, *extra, check=True)
    read = {name: kaldiio.load_scp(str(tmp_path / name / "noisy.scp")) for name in runs}
    assert sorted(read["nj1"]) == sorted(read["nj2"]) == ["u0-n0", "u0-n1", "u1-n0", "u1-n1"]
    for key in read["nj1"]:
        a, b, plain = read["nj1"][key], read["nj2"][key], read["plain"][key]
        assert a.shape == (plain.shape[0], 384)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a[:, :128], plain, atol=1e-5)
        assert np.abs(a[:, 128:256] - a[:, :128]).mean() > 0.05  # RNNoise changed the mel
    proc = run_main("espnet_softvc.bin.make_pairs", wavs, tmp_path / "x", "--front_ends", "wiener")
    assert proc.returncode != 0 and "invalid choice" in proc.stderr


def test_espnet_fusion_denoiser_forward_and_errors(mixtures):
    from espnet_softvc.postnet.espnet_model import MelDenoiser

    model = MelDenoiser(arch="fusion", body_conf={"channels": 8, "dilations": [1]})
    inputs, clean = mixtures[0][:2], mixtures[1][:2]
    lengths = torch.tensor([inputs.size(1), inputs.size(1) - 10])
    loss, stats, weight = model(inputs, lengths, clean, lengths, utt_id=["a", "b"])
    loss.backward()
    assert loss.numel() == 1 and {"loss", "mel_snr", "l1"} <= set(stats) and int(weight) == 2
    assert model.inference(inputs[0])["feat_gen"].shape == clean[0].shape
    with pytest.raises(UserError, match=r"a: noisy and clean mels must be \(T, 384\)"):
        model(inputs[..., :128], lengths, clean, lengths, utt_id=["a", "b"])
    with pytest.raises(ValueError, match="front_ends must be some of rnnoise, deepfilternet3"):
        MelDenoiser(arch="fusion", body_conf={"front_ends": ["wiener"]})


def test_denoise_cli_fusion_on_wavs_only(tmp_path, checkpoint):
    """softvc-denoise with a fusion denoiser: a wav dir gives its fused (128, T) mel; mels are refused in one line."""
    import soundfile as sf

    from espnet_softvc.utils.io import load_audio

    path, model = checkpoint
    (tmp_path / "in" / "sub").mkdir(parents=True)
    wav = load_audio(REALDEV / "vctk_p240_00000.wav").numpy()[:16000]
    sf.write(tmp_path / "in" / "sub" / "a.wav", wav, 16000)
    run_main("espnet_softvc.bin.denoise", tmp_path / "in", tmp_path / "out", "--model_file", path, check=True)
    out = np.load(tmp_path / "out" / "sub" / "a.npy")
    with torch.no_grad():  # from the file as written (16-bit)
        expected = model(fusion_inputs(load_audio(tmp_path / "in" / "sub" / "a.wav"))[None])[0].numpy().T
    assert out.shape == (128, 100)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    (tmp_path / "mels").mkdir()
    np.save(tmp_path / "mels" / "m.npy", out)
    proc = run_main("espnet_softvc.bin.denoise", tmp_path / "mels", tmp_path / "o", "--model_file", path)
    assert_user_error(proc, "mels", "fuses waveform denoisers", "directory of wavs")


def test_real_noise_scoring_with_a_fusion_denoiser(checkpoint):
    """The real-noise table takes a fusion denoiser as "ours" (no "X + ours" rows: it already runs both)."""
    from espnet_softvc.scoring.denoising import real_noise_scores
    from espnet_softvc.utils.io import load_audio

    speech = [load_audio(REALDEV / "vctk_p260_00000.wav").double().numpy()[:16000]]
    recorded = [load_audio(REALDEV / "noise_freesound_573577.wav").double().numpy()]
    scores = real_noise_scores(speech, recorded, checkpoint[1], snrs=(5,), excerpts=1)
    assert set(scores) == {"unprocessed", "mel spectral subtraction", "rnnoise", "deepfilternet3", "ours"}
    assert scores["ours"]["5"] != scores["rnnoise"]["5"] and np.isfinite(scores["ours"]["clean"])


@pytest.mark.slow  # the front ends in two processes
def test_source_fusion_denoiser_feeds_the_offline_encoder(small, tmp_path, checkpoint):
    """``--denoise fusion --denoiser M``: the offline content encoder reads the fusion denoiser's log-mel of the noisy
    source instead of its own, which brings its units of real speech in real noise towards those of the clean
    speech; the CLI gives what Speech2Speech gives; no model file, or an encoder without a log-mel front end (HuBERT,
    the conv front end), is a one-line error."""
    import soundfile as sf

    from espnet_softvc.bin.vc_inference import Speech2Speech
    from espnet_softvc.units.hubert import ContentEncoder
    from espnet_softvc.units.soft_encoder import SMALL_LOGMEL
    from espnet_softvc.utils.io import load_audio

    torch.manual_seed(0)
    torch.save(ContentEncoder(SMALL_LOGMEL).checkpoint(), tmp_path / "encoder.pt")
    models = {"content_encoder": str(tmp_path / "encoder.pt"), "model_file": str(small / "acoustic-soft.pt")}
    clean = load_audio(REALDEV / "vctk_p240_00000.wav").double().numpy()[: 3 * 16000]
    recording = load_audio(REALDEV / "noise_freesound_573577.wav").double().numpy()
    noisy = noise.mix(clean, noise.excerpt(recording, clean.size, np.random.default_rng(0)), 0.0).astype(np.float32)
    plain, fused = Speech2Speech(**models), Speech2Speech(**models, denoise="fusion", denoiser_file=checkpoint[0])
    units = {
        "clean": plain.convert_16k(torch.as_tensor(clean).float())["units"],
        "noisy": plain.convert_16k(torch.from_numpy(noisy))["units"],
        "fused": fused.convert_16k(torch.from_numpy(noisy))["units"],
    }
    cosine = {k: float(torch.cosine_similarity(u, units["clean"], -1).mean()) for k, u in units.items()}
    assert cosine["fused"] > cosine["noisy"] + 0.02, cosine
    with pytest.raises(UserError, match="needs the fusion denoiser's model file"):
        Speech2Speech(**models, denoise="fusion")
    with pytest.raises(UserError, match="use --denoise rnnoise or deepfilternet3"):
        Speech2Speech(**{**models, "content_encoder": str(small / "soft_encoder.pt")}, denoise="fusion",
                      denoiser_file=checkpoint[0])  # fmt: skip
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", noisy, 16000, "FLOAT")
    args = ["--content_encoder", models["content_encoder"], "--acoustic_model", models["model_file"]]
    run_cli("espnet_softvc.bin.convert", tmp_path / "in", tmp_path / "out", *args, "--denoise", "fusion",
            "--denoiser", checkpoint[0], check=True)  # fmt: skip
    converted, _ = sf.read(tmp_path / "out" / "a.wav", dtype="float32")
    expected = fused.convert_16k(load_audio(tmp_path / "in" / "a.wav"))["wav"].clamp(-1, 1).numpy()
    # another process sums in another order (threads, the front ends' own), and the autoregressive decoder carries
    # the last digits on: the same conversion to within 40 dB
    snr = 10 * np.log10((expected**2).sum() / ((converted - expected) ** 2).sum())
    assert converted.shape == expected.shape and snr > 40, snr
