"""Vocoders: the original Soft-VC HiFi-GAN inside ESPnet's generator, ParallelWaveGAN files, Griffin-Lim."""

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from espnet2.gan_tts.hifigan import HiFiGANGenerator
from originals import OriginalGenerator

from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.softvc.original_format import save_original
from espnet_softvc.utils.errors import UserError
from espnet_softvc.vocoders import GriffinLim, load_vocoder
from tests.conftest import assert_user_error, run_main


def randomize(module, seed):
    """Random weights; weight_g near 1 keeps the wav around 0.2 std, tanh unsaturated."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05 + float(name.endswith("weight_g")))
    return module.eval()


def save_original_format(generator, path):
    state = {f"module.{k}": v for k, v in generator.state_dict().items()}
    assert any(k.endswith("weight_g") for k in state)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    generator = randomize(OriginalGenerator(), seed=0)
    return generator, save_original_format(generator, tmp_path_factory.mktemp("hifigan") / "hifigan-random.pt")


@pytest.fixture(scope="module")
def logmel():
    torch.manual_seed(1)
    return torch.randn(40, 128) - 4.0  # (T, 128) natural-log mel


def test_original_hifigan_parity_in_espnet_generator(original, logmel):
    generator, path = original
    vocoder = load_vocoder(path)
    assert isinstance(vocoder.generator, HiFiGANGenerator)
    assert not any("weight_g" in k or "weight_v" in k for k in vocoder.generator.state_dict())  # weight norm removed
    with torch.no_grad():
        expected = generator(logmel.T.unsqueeze(0)).view(-1)  # the original demo's hifigan(mel)
    wav = vocoder(logmel)
    assert wav.shape == (160 * 40,)  # exactly as long as the mel says
    assert expected.std() > 0.05 and (expected.abs() < 0.9).float().mean() > 0.9  # a wav that tests something
    diff = (wav - expected).abs().max().item()
    print(f"HiFi-GAN parity: max abs diff {diff:.2e} over {wav.numel()} samples, wav std {expected.std():.3f}")
    assert diff <= 1e-4


def test_hifigan_chunked_vocoding_equals_one_pass(original, logmel):
    """Long mels are vocoded in chunks with context (bounded memory for 10-minute utterances), same output."""
    vocoder = load_vocoder(original[1])
    one_pass = vocoder(logmel, chunk=10**6)
    chunked = vocoder(logmel, chunk=12, context=50)
    assert chunked.shape == one_pass.shape
    assert (chunked - one_pass).abs().max().item() <= 1e-5


def test_training_checkpoint_layout_loads(original, logmel, tmp_path):
    """bshall/hifigan train.py checkpoints keep the generator under ["generator"]["model"]."""
    generator, path = original
    state = torch.load(path, weights_only=True)
    torch.save({"generator": {"model": state, "optimizer": {}}, "step": 3}, tmp_path / "model-3.pt")
    assert torch.equal(load_vocoder(tmp_path / "model-3.pt")(logmel), load_vocoder(path)(logmel))


def test_wrong_vocoder_files_are_refused(tmp_path):
    save_original(AcousticModel(discrete=False), tmp_path / "acoustic.pt")
    with pytest.raises(UserError, match="acoustic.pt: not a HiFi-GAN vocoder checkpoint .*acoustic model"):
        load_vocoder(tmp_path / "acoustic.pt")

    save_original_format(OriginalGenerator(n_mels=80, channels=32), tmp_path / "hifigan-80.pt")
    with pytest.raises(UserError, match="hifigan-80.pt: not a Soft-VC HiFi-GAN generator .*wrong shape.*128 mels"):
        load_vocoder(tmp_path / "hifigan-80.pt")

    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(UserError, match="notes.pt: (refused|not a readable)"):
        load_vocoder(tmp_path / "notes.pt")

    class RunsCode:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"generator": RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="evil.pt: refused, not a tensor-only checkpoint"):
        load_vocoder(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


PWG_PARAMS = dict(
    in_channels=128,
    channels=32,
    upsample_scales=[10, 4, 2, 2],
    upsample_kernel_sizes=[20, 8, 4, 4],
    resblock_kernel_sizes=[3],
    resblock_dilations=[[1, 3]],
)


def write_pwg(folder, generator, **config):
    """A ParallelWaveGAN-format vocoder: checkpoint-10steps.pkl + config.yml (HiFiGANGenerator, PWG_PARAMS)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "sampling_rate": 16000,
        "hop_size": 160,
        "num_mels": 128,
        "generator_type": "HiFiGANGenerator",
        "generator_params": PWG_PARAMS,
        **config,
    }
    (folder / "config.yml").write_text(yaml.safe_dump(config))
    torch.save({"model": {"generator": generator.state_dict()}, "steps": 10}, folder / "checkpoint-10steps.pkl")
    return folder / "checkpoint-10steps.pkl"


def test_parallel_wavegan_format(tmp_path, logmel):
    generator = randomize(HiFiGANGenerator(**PWG_PARAMS), seed=2)
    path = write_pwg(tmp_path / "pwg", generator)
    mean, scale = np.full(128, -2.0, np.float32), np.full(128, 1.5, np.float32)
    np.save(tmp_path / "pwg" / "stats.npy", np.stack([mean, scale]))
    generator.remove_weight_norm()
    with torch.no_grad():  # PWG conventions: log10 mels, then (c - mean) / scale
        expected = generator.inference((logmel / np.log(10) - torch.from_numpy(mean)) / torch.from_numpy(scale))
    wav = load_vocoder(path)(logmel)
    assert wav.shape == (160 * 40,)
    assert (wav - expected.view(-1)).abs().max() <= 1e-5

    bad = write_pwg(tmp_path / "pwg80", generator, num_mels=80)
    with pytest.raises(UserError, match="config.yml: vocoder has num_mels=80, Soft-VC mels need 128"):
        load_vocoder(bad)
    (tmp_path / "lonely").mkdir()
    torch.save({}, tmp_path / "lonely" / "x.pkl")
    with pytest.raises(UserError, match="config.yml: vocoder config not found"):
        load_vocoder(tmp_path / "lonely" / "x.pkl")


def test_griffin_lim_is_deterministic(logmel):
    first, second = GriffinLim()(logmel), GriffinLim()(logmel)
    assert first.shape == (160 * 39,)
    assert torch.equal(first, second)


def test_generate_cli_writes_wavs_with_vocoder(original, tmp_path):
    save_original(randomize(AcousticModel(discrete=True), seed=3), tmp_path / "acoustic.pt")
    (tmp_path / "units" / "spk").mkdir(parents=True)
    np.save(tmp_path / "units" / "spk" / "utt1.npy", np.arange(12) % 100)
    run_main(
        "espnet_softvc.bin.generate",
        "discrete",
        tmp_path / "units",
        tmp_path / "out",
        "--checkpoint",
        tmp_path / "acoustic.pt",
        "--vocoder",
        original[1],
        check=True,
    )
    mel = np.load(tmp_path / "out" / "spk" / "utt1.npy")
    wav, sr = sf.read(tmp_path / "out" / "spk" / "utt1.wav")
    assert mel.shape == (128, 24) and sr == 16000 and wav.shape == (160 * 24,)
    expected = load_vocoder(original[1])(torch.from_numpy(mel.T)).numpy()
    assert np.abs(wav - np.clip(expected, -1, 1)).max() <= 1 / 32767 + 1e-6  # 16-bit PCM

    proc = run_main(
        "espnet_softvc.bin.generate",
        "discrete",
        tmp_path / "units",
        tmp_path / "out2",
        "--checkpoint",
        tmp_path / "acoustic.pt",
        "--vocoder",
        tmp_path / "acoustic.pt",
    )
    assert_user_error(proc, "acoustic.pt", "not a HiFi-GAN vocoder checkpoint")


def test_unit2speech_uses_the_vocoder_file(original, tmp_path):
    from espnet_softvc.bin.softvc_inference import Unit2Speech

    save_original(randomize(AcousticModel(discrete=True), seed=4), tmp_path / "acoustic.pt")
    unit2speech = Unit2Speech.from_pretrained(tmp_path / "acoustic.pt", vocoder_tag=original[1])
    out = unit2speech(torch.arange(10) % 100)
    assert out["wav"].shape == (160 * 20,)
    assert torch.equal(out["wav"], load_vocoder(original[1])(out["feat_gen"]))
