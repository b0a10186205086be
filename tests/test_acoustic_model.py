"""Parity of our acoustic model with an independent restatement of bshall/acoustic-model (DESIGN §3)."""

import pytest
import torch
import torch.nn as nn
from originals import RefAcousticModel

from espnet_softvc import hub
from espnet_softvc.softvc.original_format import load_original, save_original
from espnet_softvc.utils.errors import UserError


def make_reference(discrete, seed=0):
    torch.manual_seed(seed)
    model = RefAcousticModel(discrete)
    for p in model.parameters():  # bigger than the default init so errors would show
        nn.init.uniform_(p, -0.1, 0.1)
    return model.eval()


def random_units(discrete, batch, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    if discrete:
        return torch.randint(0, 100, (batch, n), generator=g)
    return torch.randn(batch, n, 256, generator=g)


@pytest.fixture(scope="module", params=["soft", "discrete"])
def reference(request, tmp_path_factory):
    """(kind, reference model, path in v0.1 format, path as bare state_dict)."""
    discrete = request.param == "discrete"
    ref = make_reference(discrete)
    tmp = tmp_path_factory.mktemp(request.param)
    sd = {f"module.{k}": v for k, v in ref.state_dict().items()}
    v01 = tmp / f"hubert-{request.param}-v01.pt"
    torch.save({"acoustic-model": sd, "optimizer": {}, "step": 123, "loss": 0.5}, v01)
    bare = tmp / f"hubert-{request.param}-bare.pt"
    torch.save(ref.state_dict(), bare)
    return request.param, ref, v01, bare


def test_parameter_names_match_design(reference):
    kind, ref, v01, _ = reference
    model = load_original(v01)
    assert set(model.state_dict()) == set(ref.state_dict())
    assert ("encoder.embedding.weight" in model.state_dict()) == (kind == "discrete")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("fmt", ["v01", "bare"])
def test_teacher_forced_and_generate_parity(reference, fmt):
    kind, ref, v01, bare = reference
    model = load_original(v01 if fmt == "v01" else bare)
    assert model.discrete == (kind == "discrete") and not model.training
    units = random_units(kind == "discrete", 2, 13)
    mels = torch.randn(2, 26, 128)
    with torch.no_grad():
        diff = (model(units, mels) - ref(units, mels)).abs().max().item()
    assert diff <= 1e-5
    out = model.generate(units)
    assert out.shape == (2, 26, 128)
    assert (out - ref.generate(units)).abs().max().item() <= 1e-5


def test_generate_unbatched_and_dropout_off(reference):
    kind, ref, v01, _ = reference
    model = load_original(v01).train()  # generate must switch dropout off by itself
    units = random_units(kind == "discrete", 1, 9)
    out = model.generate(units[0])
    assert out.shape == (1, 18, 128)
    assert (out - ref.generate(units)).abs().max().item() <= 1e-5
    assert model.training, "generate restores the caller's mode"


def test_hub_entry_points(reference):
    kind, ref, v01, _ = reference
    entry, other = (
        (hub.hubert_discrete, hub.hubert_soft) if kind == "discrete" else (hub.hubert_soft, hub.hubert_discrete)
    )
    units = random_units(kind == "discrete", 1, 7)
    assert (entry(checkpoint=v01).generate(units) - ref.generate(units)).abs().max() <= 1e-5
    with pytest.raises(UserError, match=f"this is a {kind} acoustic model"):
        other(checkpoint=v01)
    with pytest.raises(UserError, match="github.com/bshall/acoustic-model/releases"):
        entry()


def test_export_loads_in_original_code(reference, tmp_path):
    kind, ref, v01, _ = reference
    model = load_original(v01)
    out = tmp_path / "exported.pt"
    save_original(model, out, step=7, loss=0.25)
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["step"] == 7 and checkpoint["loss"] == 0.25
    assert all(k.startswith("module.") for k in checkpoint["acoustic-model"])
    # what the original hubconf does: consume_prefix_in_state_dict_if_present + strict load
    sd = dict(checkpoint["acoustic-model"])
    nn.modules.utils.consume_prefix_in_state_dict_if_present(sd, "module.")
    fresh = RefAcousticModel(kind == "discrete").eval()
    fresh.load_state_dict(sd, strict=True)
    torch.optim.AdamW(fresh.parameters(), lr=4e-4).load_state_dict(checkpoint["optimizer"])  # original resume
    units = random_units(kind == "discrete", 1, 5)
    assert torch.equal(fresh.generate(units), ref.generate(units))


def test_bad_checkpoints(tmp_path, reference):
    _, ref, v01, _ = reference
    not_softvc = tmp_path / "other.pt"
    torch.save({"hubert": {"module.proj.weight": torch.zeros(256, 768)}}, not_softvc)
    with pytest.raises(UserError, match="not a Soft-VC acoustic-model checkpoint"):
        load_original(not_softvc)
    missing = tmp_path / "missing.pt"
    sd = ref.state_dict()
    sd.pop("decoder.proj.weight")
    torch.save(sd, missing)
    with pytest.raises(UserError, match=r"missing keys \['decoder.proj.weight'\]"):
        load_original(missing)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(v01.read_bytes()[:5000])
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_original(truncated)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"acoustic-model": Evil()}, evil)
    with pytest.raises(UserError, match="not a tensor-only checkpoint"):
        load_original(evil)
    with pytest.raises(UserError, match="not found"):
        load_original(tmp_path / "nope.pt")


@pytest.mark.parametrize("discrete", [True, False])
def test_train_crop_takes_the_same_window_of_units_and_frames(discrete):
    """``train_crop``: each utterance's window of units, its 2x target frames, and the true previous frame."""
    from espnet_softvc.softvc.espnet_model import SoftVC

    tts = SoftVC(discrete=discrete, encoder_prenet=8, encoder_channels=8, decoder_prenet=8, decoder_hidden=8)
    tts.train_crop = 4
    lengths = torch.tensor([9, 3, 6])
    units = tts._units(random_units(discrete, 3, 9), lengths)
    target = torch.randn(3, 18, 128) * torch.arange(18).lt(2 * lengths[:, None])[..., None]
    previous = torch.nn.functional.pad(target, (0, 0, 1, 0))[:, :-1]
    mask = torch.arange(18).lt(2 * lengths[:, None])
    torch.manual_seed(0)
    units_c, previous_c, target_c, mask_c, lengths_c = tts._crop(units, previous, target, mask, lengths)
    assert lengths_c.tolist() == [4, 3, 4] and target_c.shape == (3, 8, 128) and mask_c.sum(1).tolist() == [8, 6, 8]
    starts = set()
    for b in range(3):
        n = int(lengths_c[b])
        s = next(s for s in range(int(lengths[b]) - n + 1) if torch.equal(units_c[b, :n], units[b, s : s + n]))
        starts.add(s)
        assert torch.equal(target_c[b, : 2 * n], target[b, 2 * s : 2 * s + 2 * n])
        assert torch.equal(previous_c[b, : 2 * n], previous[b, 2 * s : 2 * s + 2 * n])  # the frame before the window
        assert not target_c[b, 2 * n :].any()  # padding beyond the window
    assert starts != {0}  # the windows are not all at the start
    tts.eval()  # validation: whole utterances
    assert tts._crop(units, previous, target, mask, lengths)[0] is units
