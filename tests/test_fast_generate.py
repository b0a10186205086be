"""The fused decoding loop (softvc/fast.py, csrc/decode.cpp) against the original per-frame loop ``Decoder.generate``.

Weights are "trained-like": a random model whose LSTM weights are scaled so a fifth of the gate pre-activations
saturate (|a| > 2) and whose proj is scaled so its mel (std ~1.6) drives the prenet through the feedback, the regime
where reduced precision drifts and where a wrong gate or a stale state shows (random init is nearly linear).
"""

import pytest
import torch

from espnet_softvc.softvc import fast
from espnet_softvc.softvc.model import AcousticModel

LENGTHS = [23, 9, 16]  # units per utterance of the variable-length batch
ODD = dict(encoder_prenet=24, encoder_channels=40, decoder_prenet=40, decoder_hidden=36)  # pads every dimension
MID = dict(encoder_prenet=64, encoder_channels=128, decoder_prenet=64, decoder_hidden=192)
CPU_BACKENDS = ["cpp", "torchscript", "graph"]  # graph: the CUDA-graph step, run eagerly on CPU


def trained_like(model, gain=3.0, proj_gain=8.0):
    with torch.no_grad():
        for name, p in model.decoder.named_parameters():
            p.mul_(gain if name.startswith("lstm") else proj_gain if name == "proj.weight" else 1.0)
    return model


def make(seed=0, discrete=False, **sizes):
    torch.manual_seed(seed)
    return trained_like(AcousticModel(discrete=discrete, **sizes)).eval()


def original(model, units):
    with torch.inference_mode():
        return model.decoder.generate(model.encoder(units))


@pytest.fixture(scope="module", params=["soft", "discrete"])
def case(request):
    """A trained-like model in train mode, a padded batch of units and each utterance's original-loop mel."""
    model = make(discrete=request.param == "discrete", **ODD)
    n = max(LENGTHS)
    units = torch.randint(0, 100, (len(LENGTHS), n)) if model.discrete else torch.randn(len(LENGTHS), n, 256)
    refs = [original(model, units[b : b + 1, :k])[0] for b, k in enumerate(LENGTHS)]
    model.train()
    return model, units, refs


def test_extension_is_built_and_default_on_cpu():
    """CI runs the C++ loop: `bash scripts/setup.sh` (pip install -e .) builds it; so does
    `python setup.py build_ext --inplace`."""
    assert fast.EXTENSION, "espnet_softvc/softvc/_decode_ext is not built (python setup.py build_ext --inplace)"
    assert fast.default_backend("cpu") == "cpp"
    assert fast.default_backend("cuda") == "graph"


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


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("sizes", [{}, ODD], ids=["paper", "odd"])
def test_every_backend_matches_original_loop(backend, sizes):
    """fp32 is exact on each backend, at the paper's sizes and at sizes that are no multiple of any block; batch 7
    covers the C++ loop's blocks of 6 rows and a remainder."""
    model = make(1, **sizes)
    units = torch.randn(7, 10, 256)
    with torch.inference_mode():
        xs = model.encoder(units)
        ref = model.decoder.generate(xs)
        mel = fast.decode(model.decoder, xs, "fp32", backend=backend)
    assert ref.std() > 0.5  # the feedback carries a real signal
    assert (mel - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("precision", ["bf16", "fp16", "int8"])
@pytest.mark.parametrize("backend, sizes", [("cpp", {}), ("cpp", MID), ("torchscript", MID), ("graph", MID)])
def test_reduced_precision_stays_close(precision, backend, sizes):
    """Deviation from the exact mel, trained-like weights (trained models: README): mean well under the mel's
    spread, no runaway frame."""
    model = make(2, **sizes)
    units = torch.randn(2, 30, 256)
    with torch.inference_mode():
        xs = model.encoder(units)
        exact = fast.decode(model.decoder, xs, "fp32", backend="torchscript")
        low = fast.decode(model.decoder, xs, precision, backend=backend)
    assert low.dtype == torch.float32 and low.shape == exact.shape
    diff = (low - exact).abs()
    bound = {"bf16": 0.01, "fp16": 0.002, "int8": 0.05}[precision]
    assert 0 < diff.mean() <= bound and diff.max() <= 20 * bound


@pytest.mark.parametrize("precision", fast.PRECISIONS)
def test_kernels_compute_the_fallback_matmuls(precision):
    """Each C++ kernel against the TorchScript loop's matmul, 7 rows (blocks of 6 or 4 and a remainder): float
    kinds to float rounding, int8 to the bit (same integers, same float operations in the same order)."""
    model = make(11, **ODD)
    packed = fast.PackedWeights(model.decoder, precision, "cpu")
    ref = fast.TorchWeights(model.decoder, precision, "cpu")
    pad = torch.nn.functional.pad
    H, Hp, P, Pp = 36, packed.Hp, 40, packed.Pp

    def torch_mm(k, x):
        if precision == "int8":
            return fast._int8_mm(x, ref.mats[k], ref.bounds[k], ref.rowsums[k], ref.scales[k])
        return x @ ref.mats[k]

    def same(a, b):
        assert torch.equal(a, b) if precision == "int8" else (a - b).abs().max() <= 1e-5 * (1 + b.abs().max())

    hidden = torch.relu(torch.randn(7, P)) * 3  # prenet layer 2 reads prenet layer 1's ReLU output
    same(packed.matmul(1, pad(hidden, (0, packed.Php - P)))[:, :P], torch_mm(0, hidden))
    for k, x in [(1, torch.cat((hidden, torch.tanh(2 * torch.randn(7, H))), 1)), (3, 1.5 * torch.randn(7, 2 * H))]:
        lo, hi = x[:, : x.size(1) - H], x[:, -H:]
        xp = torch.cat((pad(lo, (0, (Pp if k == 1 else Hp) - lo.size(1))), pad(hi, (0, Hp - H))), 1)
        y = packed.matmul(k + 1, xp, threads=2).view(7, Hp // 8, 4, 8).transpose(1, 2).reshape(7, 4, Hp)[..., :H]
        y[:, 2] /= 2  # decode.cpp's g rows are doubled (tanh(g) = 2 sigmoid(2g) - 1)
        same(y, torch_mm(k, x).view(7, 4, H)[:, [0, 1, 3, 2]])  # TorchScript's gate order is (i, f, o, g)


@pytest.mark.parametrize("precision", fast.PRECISIONS)
def test_cpp_and_torchscript_decode_alike(precision):
    """End to end, the two CPU loops agree to float rounding (fp32, bf16, fp16). int8 only on the first frame: a
    rounding difference of 1e-7 in a state can move an activation across a quantization step, after which the two
    trajectories differ as much as int8 and fp32 do (test_kernels_compute_the_fallback_matmuls: same arithmetic)."""
    model = make(3, **ODD)
    with torch.inference_mode():
        xs = model.encoder(torch.randn(3, 20, 256))
        cpp = fast.decode(model.decoder, xs, precision, backend="cpp")
        ts = fast.decode(model.decoder, xs, precision, backend="torchscript")
    if precision == "int8":
        cpp, ts = cpp[:, :1], ts[:, :1]
    assert (cpp - ts).abs().max() <= 1e-4


@pytest.mark.parametrize("precision", fast.PRECISIONS)
def test_batch_rows_are_independent(precision):
    """Each row of a batch (in blocks of 6, or 4 for int8, and a remainder) equals its own unbatched result:
    int8 quantizes each row's activations with its own scale."""
    model = make(4, **ODD)
    with torch.inference_mode():
        xs = model.encoder(torch.randn(7, 12, 256))
        batched = fast.decode(model.decoder, xs, precision)
        for b in range(7):
            single = fast.decode(model.decoder, xs[b : b + 1], precision)
            assert (batched[b] - single[0]).abs().max() <= 1e-4


@pytest.mark.parametrize("precision", fast.PRECISIONS)
def test_thread_count_does_not_change_the_result(precision):
    """Each output row is computed by one thread in a fixed order, so any split gives the same bits; 2 and 3
    threads split the 5 LSTM panels unevenly, and each computes the prenet and proj in full (thread 0 writes the
    output, the others feed their own copies back)."""
    model = make(5, **ODD)
    with torch.inference_mode():
        xs = model.encoder(torch.randn(2, 20, 256))
        one = fast.decode(model.decoder, xs, precision, threads=1)
        for threads in (2, 3):
            assert torch.equal(fast.decode(model.decoder, xs, precision, threads=threads), one)


def test_default_is_exact_fp32():
    """Precision is the caller's choice: without one, generate is exact whatever the model's dtype."""
    model = make(6)
    units = torch.randn(10, 256)
    ref = original(model, units[None])
    assert torch.equal(model.generate(units), model.generate(units, precision="fp32"))
    assert (model.generate(units) - ref).abs().max() <= 1e-4
    assert (model.generate(units, precision="int8") - ref).abs().max() > 1e-4  # a real change, only when asked


def test_weights_cache_follows_parameter_updates():
    model = make(7)
    units = torch.randn(8, 256)
    before = model.generate(units)
    with torch.no_grad():
        model.decoder.lstm2.weight_hh_l0.mul_(0.5)  # in place, as an optimizer step does
    ref = original(model, units[None])
    after = model.generate(units)
    assert (after - before).abs().max() > 1e-3
    assert (after - ref).abs().max() <= 1e-4


def test_eager_fallback_equals_torchscript_loop():
    model = make(8)
    with torch.inference_mode():
        xs = model.encoder(torch.randn(2, 10, 256))
        w = fast.fused_weights(model.decoder)
        xproj = torch.nn.functional.linear(xs, w.enc_weight, w.enc_bias)
        hidden = w.proj.size(0) // 2
        h, c, m = xs.new_zeros(3, 2, hidden), xs.new_zeros(3, 2, hidden), xs.new_zeros(2, 128)  # the start
        eager = fast._decode(xproj, xs.new_empty(2, 20, 128), h, c, m, *fast._loop_args(w))
        assert isinstance(fast._decode_loop, torch.jit.ScriptFunction)  # the fallback is not what runs here
        assert torch.equal(eager, fast.decode(model.decoder, xs, backend="torchscript"))


@pytest.mark.parametrize("frames_per_graph", [1, 4, 16])
def test_graph_replays_equal_the_loop(frames_per_graph):
    """The CUDA path's capture / replay logic with the eager stand-in: T = 22 frames as whole graphs of k steps
    (the last one padded), each step reading its frame index from a device tensor."""
    model = make(9, **ODD)
    with torch.inference_mode():
        xs = model.encoder(torch.randn(2, 11, 256))
        w = fast.fused_weights(model.decoder)
        xproj = torch.nn.functional.linear(xs, w.enc_weight, w.enc_bias)
        graphed = fast.graph_decode(w, xproj, fast.EagerGraph(), frames_per_graph)
        loop = fast.decode(model.decoder, xs, backend="torchscript")
    assert graphed.shape == loop.shape == (2, 22, 128)
    assert torch.equal(graphed, loop)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_half_matmuls_on_cpu(precision):
    """On CUDA bf16 / fp16 round the matmul inputs too (tensor cores): the same kind of weights run on CPU here."""
    model = make(10, **MID)
    with torch.inference_mode():
        xs = model.encoder(torch.randn(1, 20, 256))
        w = fast.TorchWeights(model.decoder, precision, "cpu", half=True)
        assert w.kind == "half"
        xproj = torch.nn.functional.linear(xs, w.enc_weight, w.enc_bias)
        half = fast.graph_decode(w, xproj, fast.EagerGraph())
        exact = fast.decode(model.decoder, xs)
    assert 0 < (half - exact).abs().mean() <= 0.02


def test_stream_read_measures_a_buffer():
    buf = torch.ones(2**20)
    seconds = fast._decode_ext.stream_read(buf.data_ptr(), buf.numel() * 4, 3, 2)
    assert 0 < seconds < 1


def test_bad_arguments_are_rejected():
    model = AcousticModel()
    with pytest.raises(ValueError, match="lengths"):
        model.generate(torch.randn(2, 5, 256), lengths=[5, 6])
    with pytest.raises(ValueError, match="precision"):
        model.generate(torch.randn(5, 256), precision="fp8")
    xs = torch.randn(1, 4, 512)
    with pytest.raises(ValueError, match="backend"):
        fast.decode(model.decoder, xs, backend="cuda")
    with pytest.raises(ValueError, match="int8"):
        fast.TorchWeights(model.decoder, "int8", "cuda")
