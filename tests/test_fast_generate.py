"""The fused decoding loop (softvc/fast.py) against the original per-frame loop ``Decoder.generate``."""

import pytest
import torch

from espnet_softvc.softvc import fast
from espnet_softvc.softvc.model import AcousticModel

LENGTHS = [23, 9, 16]  # units per utterance of the variable-length batch


@pytest.fixture(scope="module", params=["soft", "discrete"])
def case(request):
    """A random-weight model in train mode, a padded batch of units and each utterance's original-loop mel."""
    torch.manual_seed(0)
    model = AcousticModel(discrete=request.param == "discrete")
    n = max(LENGTHS)
    units = torch.randint(0, 100, (len(LENGTHS), n)) if model.discrete else torch.randn(len(LENGTHS), n, 256)
    model.eval()
    with torch.inference_mode():
        refs = [model.decoder.generate(model.encoder(units[b : b + 1, :k]))[0] for b, k in enumerate(LENGTHS)]
    model.train()
    return model, units, refs


def test_unbatched_matches_original_loop(case):
    model, units, refs = case
    for b, k in enumerate(LENGTHS):
        mel = model.generate(units[b, :k])
        assert mel.shape == (1, 2 * k, 128)
        assert (mel[0] - refs[b]).abs().max() <= 1e-4
    assert model.training  # mode restored


def test_batched_variable_lengths_match_unbatched(case):
    model, units, refs = case
    mel = model.generate(units, lengths=torch.tensor(LENGTHS))
    assert mel.shape == (len(LENGTHS), 2 * units.size(1), 128)
    for b, k in enumerate(LENGTHS):
        assert (mel[b, : 2 * k] - refs[b]).abs().max() <= 1e-4
        assert not mel[b, 2 * k :].any()  # frames past the utterance are zero


def test_full_batch_matches_original_loop(case):
    model, units, _ = case
    model.eval()
    with torch.inference_mode():
        ref = model.decoder.generate(model.encoder(units[:, :12]))
    assert (model.generate(units[:, :12]) - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_stays_close(case, precision):
    """Stated deviation (README): mean abs <= 0.02 of the exact mel; on random weights it is far smaller."""
    model, units, _ = case
    exact = model.generate(units, lengths=LENGTHS)
    low = model.generate(units, precision=precision, lengths=LENGTHS)
    assert low.dtype == torch.float32 and low.shape == exact.shape
    diff = (low - exact).abs()
    assert 0 < diff.mean() <= 0.02 and diff.max() <= 0.2


def test_weights_cache_follows_parameter_updates():
    torch.manual_seed(1)
    model = AcousticModel().eval()
    units = torch.randn(8, 256)
    before = model.generate(units)
    with torch.no_grad():
        model.decoder.lstm2.weight_hh_l0.mul_(0.5)  # in place, as an optimizer step does
        ref = model.decoder.generate(model.encoder(units[None]))
    after = model.generate(units)
    assert (after - before).abs().max() > 1e-3
    assert (after - ref).abs().max() <= 1e-4


def test_eager_fallback_equals_torchscript_loop():
    torch.manual_seed(2)
    model = AcousticModel().eval()
    with torch.inference_mode():
        xs = model.encoder(torch.randn(2, 10, 256))
        w = fast.fused_weights(model.decoder)
        xproj = torch.nn.functional.linear(xs, w.enc_weight, w.enc_bias)
        args = (w.pre_weight, w.pre_bias, w.biases, w.proj, w.kind, w.mats, w.packed)
        eager = fast._decode(xproj, xs.new_empty(2, 20, 128), *args)
        assert isinstance(fast._decode_loop, torch.jit.ScriptFunction)  # the fallback is not what runs here
        assert torch.equal(eager, fast.decode(model.decoder, xs))


def test_bad_arguments_are_rejected():
    model = AcousticModel()
    with pytest.raises(ValueError, match="lengths"):
        model.generate(torch.randn(2, 5, 256), lengths=[5, 6])
    with pytest.raises(ValueError, match="precision"):
        model.generate(torch.randn(5, 256), precision="fp8")
