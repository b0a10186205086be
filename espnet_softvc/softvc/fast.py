"""Fused free-running decoder: the math of ``Decoder.generate`` (DESIGN §3) without its per-frame overhead (§10).

The original calls ``nn.LSTM`` three times per frame from Python. Here lstm1's projection of the encoder output is
one GEMM over all frames before the loop (both biases in it), each LSTM is one multiply of ``[input | h]`` with
``[W_ih | W_hh]`` per frame, and the loop runs without Python, on one of three backends:

- ``"cpp"`` (CPU, default where built): the C++ extension ``_decode_ext`` (``csrc/decode.cpp``, built by
  ``setup.py``) runs the whole loop in one call on ``threads`` threads, each owning a slice of the hidden units, with
  its own AVX2 kernels for every precision. It reads each weight once per frame (batch 1 is memory-bound).
- ``"torchscript"`` (the fallback where the extension is not built, and on GPU without graphs): a TorchScript loop
  of PyTorch ops, the same numerics (below).
- ``"graph"`` (CUDA, default there): one frame as a step on static buffers with the frame index on the device,
  ``FRAMES_PER_GRAPH`` steps captured in a CUDA graph and replayed; on CPU the same step runs eagerly (tests).

``precision`` is the caller's choice, never changed behind its back (fp32 is the default):
- ``"fp32"``: exact (the original's math, summation order aside; ~1e-6 from the original loop).
- ``"bf16"`` / ``"fp16"``: the decoder's matmul weights (prenet layer 2 and the LSTMs, 98.5% of them) rounded to
  bfloat16 / float16; activations, products, sums and the LSTM state stay float32 on CPU. On CUDA the matmul inputs
  are rounded too (tensor cores).
- ``"int8"`` (CPU): per-row symmetric int8 weights; per batch row and input segment (``[prenet(m) | h1]`` is two:
  ReLU outputs and LSTM outputs have different ranges) the activations are quantized asymmetrically to 0..127 with
  their own scale and zero point, the integer products summed exactly, then
  ``y = sum_seg float(dot - zp * rowsum) * scale_x * scale_w + bias`` (``_int8_mm``: the TorchScript loop computes
  the same float operations on the same integers).
"""

import warnings
import weakref
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor

from espnet_softvc.utils.shapes import valid_mask

EXTENSION_VERSION = 1  # csrc/decode.cpp's kVersion: the plan layout this file writes
try:  # built by setup.py (build_ext); optional
    import espnet_softvc.softvc._decode_ext as _decode_ext

    if getattr(_decode_ext, "VERSION", None) != EXTENSION_VERSION:
        warnings.warn(
            "espnet_softvc/softvc/_decode_ext is stale (built from an older decode.cpp): decoding runs the slower "
            "TorchScript loop until it is rebuilt (pip install -e . or python setup.py build_ext --inplace)",
            stacklevel=1,
        )
        _decode_ext = None
except ImportError:  # pragma: no cover - depends on the install
    _decode_ext = None

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
BACKENDS = ("cpp", "torchscript", "graph")
FRAMES_PER_GRAPH = 16  # decoder steps per captured CUDA graph
EXTENSION = _decode_ext is not None and _decode_ext.available()  # the C++ loop can run on this CPU
_KIND = {"fp32": 0, "bf16": 1, "fp16": 2, "int8": 3}  # decode.cpp's enum Kind
_cache = weakref.WeakKeyDictionary()  # decoder -> {(backend, precision, device): (parameter versions, weights)}


def default_backend(device):
    """The backend ``decode`` uses on ``device`` when none is asked for."""
    device = torch.device(device)
    if device.type == "cuda":
        return "graph"
    return "cpp" if device.type == "cpu" and EXTENSION else "torchscript"


def _ifog(w):
    """Gate rows of a PyTorch LSTM weight/bias from (i, f, g, o) to (i, f, o, g)."""
    i, f, g, o = w.chunk(4, 0)
    return torch.cat((i, f, o, g), 0)


def _round_up(n, m):
    return -(-n // m) * m


def _quantize_rows(w):
    """Symmetric per-row int8: (integer-valued float32 weights in -127..127, float32 scales)."""
    scale = w.abs().amax(1).clamp_min(1e-12) / 127
    return torch.round(w / scale[:, None]).clamp(-127, 127), scale


def _round(w, precision):
    """w as the float32 values the precision stores (bf16 / fp16: rounded; fp32, int8: unchanged)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return w.to(dtype).float() if dtype else w


class _Matrices:
    """The decoder's weights, float32, in PyTorch's gate order (i, f, g, o): prenet layers, the three fused LSTM
    matrices ``[W_ih | W_hh]`` (lstm1 without its encoder columns, which ``enc_weight`` projects before the loop)
    with their summed biases, and proj. int8: ``quantized[k]`` (integer-valued weights, row scales) of prenet
    layer 2 and the LSTMs, shared by both CPU backends so they multiply the same integers."""

    def __init__(self, decoder, precision, device):
        p = {k: v.detach().to(device, torch.float32) for k, v in decoder.state_dict().items()}
        self.pre1, self.pre1_bias = p["prenet.net.0.weight"], p["prenet.net.0.bias"]
        self.pre2, self.pre2_bias = p["prenet.net.3.weight"], p["prenet.net.3.bias"]
        self.prenet, self.hidden = self.pre2.size(0), p["lstm1.weight_hh_l0"].size(1)
        bias = [p[f"lstm{k}.bias_ih_l0"] + p[f"lstm{k}.bias_hh_l0"] for k in (1, 2, 3)]
        encoder_dim = p["lstm1.weight_ih_l0"].size(1) - self.prenet  # lstm1 reads [encoder | prenet(m)]
        self.enc_weight, self.enc_bias = p["lstm1.weight_ih_l0"][:, :encoder_dim], bias[0]
        self.lstm = [torch.cat((p["lstm1.weight_ih_l0"][:, encoder_dim:], p["lstm1.weight_hh_l0"]), 1)]
        self.lstm += [torch.cat((p[f"lstm{k}.weight_ih_l0"], p[f"lstm{k}.weight_hh_l0"]), 1) for k in (2, 3)]
        self.lstm_bias = bias  # [0] goes with the encoder projection
        self.proj = p["proj.weight"]
        mats = [self.pre2, *self.lstm]
        self.quantized = [_quantize_rows(w) for w in mats] if precision == "int8" else None
        if precision not in ("fp32", "int8"):
            self.pre2, *self.lstm = [_round(w, precision) for w in mats]


# ---------------------------------------------------------------------------------------------- TorchScript / graph
class TorchWeights:
    """Weights for the PyTorch-op loop (``_frame``): gate rows (i, f, o, g), matrices transposed (in, out).
    ``mats`` feed the four fused matmuls: prenet layer 2 (P <- P'), lstm1 (4H <- P + H), lstm2 (4H <- 2H), lstm3
    (4H <- 2H); ``kind`` "fp32" (also bf16 / fp16 on CPU: float32 copies of the rounded weights, the C++ loop's
    numerics), "half" (CUDA bf16 / fp16: weights and inputs in that dtype) or "int8" (``scales``, ``rowsums`` and
    segment ``bounds`` for ``_int8_mm``). ``half``: the "half" kind for bf16 / fp16 (default: on CUDA)."""

    def __init__(self, decoder, precision, device, half=None):
        on_cuda = torch.device(device).type == "cuda"
        if precision == "int8" and on_cuda:
            raise ValueError("precision='int8' runs on CPU only; use 'bf16' on GPU")
        half = on_cuda if half is None else half
        m = _Matrices(decoder, precision, device)
        self.enc_weight, self.enc_bias = _ifog(m.enc_weight), _ifog(m.enc_bias)
        size, pre = m.hidden, m.prenet
        self.pre_weight, self.pre_bias = m.pre1.t().contiguous(), m.pre1_bias
        zero = torch.zeros_like(m.enc_bias)
        self.biases = [m.pre2_bias, zero, _ifog(m.lstm_bias[1]), _ifog(m.lstm_bias[2])]
        self.proj = torch.cat((m.proj, m.proj), 1).t().contiguous()  # (2H, 128): proj(x + h3) from [x | h3]
        self.scales: List[Tensor] = []
        self.rowsums: List[List[Tensor]] = []
        self.bounds = [[0, m.pre2.size(1)], [0, pre, pre + size], [0, size, 2 * size], [0, size, 2 * size]]
        weights = [m.pre2] + [_ifog(w) for w in m.lstm]
        if precision == "int8":
            self.kind, self.mats = "int8", []
            for k, (q, scale) in enumerate(m.quantized):
                q, scale = (_ifog(q), _ifog(scale)) if k else (q, scale)
                self.mats.append(q.t().contiguous())
                self.scales.append(scale)
                bounds = self.bounds[k]
                self.rowsums.append([q[:, a:b].sum(1) for a, b in zip(bounds[:-1], bounds[1:])])
        elif precision in ("bf16", "fp16") and half:
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            self.kind, self.mats = "half", [w.t().contiguous().to(dtype) for w in weights]
        else:
            self.kind, self.mats = "fp32", [w.t().contiguous() for w in weights]


def _int8_mm(x: Tensor, w: Tensor, bounds: List[int], rowsums: List[Tensor], scale: Tensor) -> Tensor:
    """x (B, K) float32 times int8-quantized w (K, N) as decode.cpp computes it (see the module docstring)."""
    acc = x.new_empty([0])
    for s in range(len(bounds) - 1):
        xs = x[:, bounds[s] : bounds[s + 1]]
        lo = xs.amin(1, keepdim=True).clamp(max=0.0)
        hi = xs.amax(1, keepdim=True).clamp(min=0.0)
        sx = (hi - lo) / 127
        sx = torch.where(sx == 0, torch.ones_like(sx), sx)
        zp = torch.round(-lo / sx)
        q = (torch.round(xs / sx) + zp).clamp(0.0, 127.0)
        ws = w[bounds[s] : bounds[s + 1]]
        if bounds[s + 1] - bounds[s] <= 1040:  # integer sums below 2**24 (1040 * 127 * 127): float32 is exact
            d = torch.mm(q, ws) - zp * rowsums[s]
        else:
            d = (torch.mm(q.double(), ws.double()) - zp.double() * rowsums[s].double()).float()
        v = d * sx
        acc = v if s == 0 else acc + v
    return acc * scale


def _matmul(x: Tensor, k: int, add: Tensor, out: Tensor, kind: str, mats: List[Tensor], aux: List[List[Tensor]],
            bounds: List[List[int]]) -> Tensor:  # fmt: skip
    """out = add + x @ W_k for the k-th fused weight. x, add, out float32 (B, *). aux: int8 [scales, rowsums...]."""
    if kind == "fp32":
        return torch.addmm(add, x, mats[k], out=out)
    if kind == "half":  # bf16 or fp16 weights and inputs
        y = torch.mm(x.to(mats[k].dtype), mats[k])
    else:
        y = _int8_mm(x, mats[k], bounds[k], aux[k][1:], aux[k][0])
    return torch.add(add, y, out=out)


def _cell(gates: List[Tensor], c: Tensor, h: Tensor, tmp: Tensor):
    """LSTM cell in place. gates: views (all sigmoid gates, g, i, f, o) of the (B, 4H) pre-activations ordered
    (i, f, o, g); updates c (B, H), writes h (B, H)."""
    gates[0].sigmoid_()
    gates[1].tanh_()
    c.mul_(gates[3]).addcmul_(gates[2], gates[1])
    torch.mul(gates[4], torch.tanh(c, out=tmp), out=h)


def _buffers(batch: int, size: int, pre: int, hidden: int, mels: int, like: Tensor) -> List[Tensor]:
    """The loop's state and scratch (zeros) and their views, in ``_frame``'s order."""
    buf12 = like.new_zeros([batch, pre + 2 * size])  # [prenet(m) | h1 | h2]
    buf3 = like.new_zeros([batch, 2 * size])  # [h1 + h2 | h3]
    c = like.new_zeros([3, batch, size])
    gates = like.new_zeros([batch, 4 * size])
    views = [buf12, buf3, buf12[:, : pre + size], buf12[:, pre:], buf12[:, :pre], buf12[:, pre : pre + size]]
    views += [buf12[:, pre + size :], buf3[:, :size], buf3[:, size:], c[0], c[1], c[2]]
    views += [like.new_zeros([batch, hidden]), like.new_zeros([batch, size]), like.new_zeros([batch, mels])]
    return views + [gates, gates[:, : 3 * size], gates[:, 3 * size :]] + list(gates[:, : 3 * size].split(size, 1))


def _frame(
    x: Tensor,
    m: Tensor,
    y: Tensor,
    bufs: List[Tensor],
    pre_weight: Tensor,
    pre_bias: Tensor,
    biases: List[Tensor],
    proj: Tensor,
    kind: str,
    mats: List[Tensor],
    aux: List[List[Tensor]],
    bounds: List[List[int]],
):
    """One decoder step: x (B, 4H) lstm1 gates from the encoder, m (B, 128) previous frame -> y (B, 128)."""
    buf3, in1, in2, prenet, h1, h2, x3, h3 = bufs[1], bufs[2], bufs[3], bufs[4], bufs[5], bufs[6], bufs[7], bufs[8]
    c1, c2, c3, hidden, tmp, gates = bufs[9], bufs[10], bufs[11], bufs[12], bufs[13], bufs[15]
    views = bufs[16:]
    torch.addmm(pre_bias, m, pre_weight, out=hidden).relu_()
    _matmul(hidden, 0, biases[0], prenet, kind, mats, aux, bounds).relu_()
    _matmul(in1, 1, x, gates, kind, mats, aux, bounds)
    _cell(views, c1, h1, tmp)
    _matmul(in2, 2, biases[2], gates, kind, mats, aux, bounds)
    _cell(views, c2, h2, tmp)
    torch.add(h1, h2, out=x3)
    _matmul(buf3, 3, biases[3], gates, kind, mats, aux, bounds)
    _cell(views, c3, h3, tmp)
    torch.mm(buf3, proj, out=y)


def _decode(
    xproj: Tensor,
    out: Tensor,
    h: Tensor,
    c: Tensor,
    m: Tensor,
    pre_weight: Tensor,
    pre_bias: Tensor,
    biases: List[Tensor],
    proj: Tensor,
    kind: str,
    mats: List[Tensor],
    aux: List[List[Tensor]],
    bounds: List[List[int]],
) -> Tensor:
    """The autoregressive loop from state: xproj (B, T, 4H) lstm1 gates from the encoder, h / c (3, B, H) the three
    LSTMs' state, m (B, 128) the frame before the first (all zeros: the start). out (B, T, 128) is filled and
    returned; h and c are updated in place (``softvc.stream`` carries them across chunks)."""
    size, pre = proj.size(0) // 2, biases[0].size(0)
    bufs = _buffers(xproj.size(0), size, pre, pre_weight.size(1), proj.size(1), xproj)
    h1, h2, h3, c1, c2, c3 = bufs[5], bufs[6], bufs[8], bufs[9], bufs[10], bufs[11]
    h1.copy_(h[0])
    h2.copy_(h[1])
    h3.copy_(h[2])
    c1.copy_(c[0])
    c2.copy_(c[1])
    c3.copy_(c[2])
    for x, y in zip(xproj.unbind(1), out.unbind(1)):
        _frame(x, m, y, bufs, pre_weight, pre_bias, biases, proj, kind, mats, aux, bounds)
        m = y
    h.copy_(torch.stack((h1, h2, h3)))
    c.copy_(torch.stack((c1, c2, c3)))
    return out


try:  # TorchScript removes the Python interpreter from the per-frame loop; eager Python is the fallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still the cheapest loop
        _decode_loop = torch.jit.script(_decode)
except Exception:  # pragma: no cover - TorchScript unavailable in this build
    _decode_loop = _decode


def _loop_args(w):
    aux = [[s, *r] for s, r in zip(w.scales, w.rowsums)] if w.kind == "int8" else []
    return w.pre_weight, w.pre_bias, w.biases, w.proj, w.kind, w.mats, aux, w.bounds


class Stepper:
    """One decoder step on static buffers, the frame index ``t`` a device tensor that the step advances: what a
    CUDA graph captures. ``step()`` reads ``xproj[:, t]`` and writes ``out[:, t]``; ``reset()`` restarts."""

    def __init__(self, w, xproj, out):
        self.xproj, self.out, self.args = xproj, out, _loop_args(w)
        size, pre = w.proj.size(0) // 2, w.biases[0].size(0)
        self.bufs = _buffers(xproj.size(0), size, pre, w.pre_weight.size(1), w.proj.size(1), xproj)
        self.m = xproj.new_zeros([xproj.size(0), w.proj.size(1)])
        self.t = torch.zeros(1, dtype=torch.long, device=xproj.device)

    def reset(self):
        for b in self.bufs[:2] + self.bufs[9:12] + [self.m, self.t]:
            b.zero_()

    def step(self):
        x = self.xproj.index_select(1, self.t).squeeze(1)
        _frame(x, self.m, self.m, self.bufs, *self.args)  # eager: a graph replays kernels, Python runs at capture
        self.out.index_copy_(1, self.t, self.m.unsqueeze(1))
        self.t.add_(1)


class EagerGraph:
    """``torch.cuda.CUDAGraph``'s part that ``graph_decode`` uses, replaying by calling: the CPU stand-in that
    tests the capture / replay logic."""

    def capture(self, fn):
        self.fn = fn

    def replay(self):
        self.fn()


class CudaGraph:
    def capture(self, fn):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the graph (allocator, cuBLAS handles), as torch asks
            fn()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            fn()

    def replay(self):
        self.graph.replay()


def graph_decode(w, xproj, graph=None, frames_per_graph=FRAMES_PER_GRAPH):
    """The loop as replays of one captured graph of ``frames_per_graph`` steps: xproj (B, T, 4H) -> (B, T, 128).
    T is padded up to a whole number of graphs (the decoder is causal: extra frames change nothing before them)."""
    graph = graph or (CudaGraph() if xproj.is_cuda else EagerGraph())
    frames = xproj.size(1)
    padded = _round_up(frames, frames_per_graph)
    xproj = F.pad(xproj, (0, 0, 0, padded - frames))
    out = xproj.new_empty(xproj.shape[:2] + (w.proj.size(1),))
    stepper = Stepper(w, xproj, out)

    def steps():
        for _ in range(frames_per_graph):
            stepper.step()

    graph.capture(steps)
    stepper.reset()  # the warm-up ran steps
    for _ in range(padded // frames_per_graph):
        graph.replay()
    return out[:, :frames]


# ---------------------------------------------------------------------------------------------- C++
class PackedWeights:
    """Weights in ``decode.cpp``'s layout: panels of 32 output rows, k-major; an LSTM panel holds the gates
    (i, f, 2g, o) of 8 units (g doubled: tanh(g) = 2 sigmoid(2g) - 1; doubling a float is exact; int8 doubles the
    row scale instead). Sizes padded: prenet hidden and output to 32, H to 8, every int8 input segment to a
    multiple of 4 (padded weights and biases are 0, so padded units and rows stay 0). ``matrices``: prenet layers
    1 and 2, lstm1-3, proj, each (tensor, K, panels, kind, segment lengths, row scales, row sums)."""

    def __init__(self, decoder, precision, device):
        m = _Matrices(decoder, precision, device)
        H, P, Ph = m.hidden, m.prenet, m.pre1.size(0)
        self.Hp, self.Pp, self.Php = _round_up(H, 8), _round_up(P, 32), _round_up(Ph, 32)
        Hp, Pp, Php = self.Hp, self.Pp, self.Php
        self.enc_weight = self._lstm_rows(m.enc_weight)  # (4Hp, E)
        self.enc_bias = self._lstm_rows(m.enc_bias[:, None])[:, 0].contiguous()
        self.biases = [F.pad(m.pre1_bias, (0, Php - Ph)), F.pad(m.pre2_bias, (0, Pp - P))]
        self.biases += [self._lstm_rows(b[:, None])[:, 0].contiguous() for b in m.lstm_bias[1:]]
        fp32 = _KIND["fp32"]
        self.matrices = [self._entry(self._plain(m.pre1, Php, [(128, 128)]), fp32, [128])]
        segments = [[(Ph, Php)], [(P, Pp), (H, Hp)], [(H, Hp), (H, Hp)], [(H, Hp), (H, Hp)]]
        for k, seg in enumerate(segments):
            lengths = [padded for _, padded in seg]
            if precision == "int8":
                q, scale = m.quantized[k]
                if k == 0:
                    panel, scale = self._plain(q, Pp, seg), F.pad(scale, (0, Pp - P), value=1.0)
                else:
                    panel, scale = self._lstm(q, seg, double=False), self._lstm_rows(scale[:, None])[:, 0]
                panels, K = panel.shape[:2]
                bounds = torch.tensor([0, *lengths]).cumsum(0).tolist()
                rowsum = torch.stack([panel[:, a:b].sum(1).flatten() for a, b in zip(bounds[:-1], bounds[1:])])
                blocks = panel.view(panels, K // 4, 4, 4, 8).permute(0, 1, 3, 4, 2)  # (kk, j, i) -> (j, i, kk)
                self.matrices.append(
                    (blocks.to(torch.int8).contiguous(), K, panels, _KIND["int8"], lengths, scale.contiguous(),
                     rowsum.to(torch.int32).contiguous())
                )  # fmt: skip
                continue
            panel = self._plain(m.pre2, Pp, seg) if k == 0 else self._lstm(m.lstm[k - 1], seg)
            if precision == "bf16":  # per k, row 16q + 8e + i stored at 16q + 2i + e (decode.cpp, load_bf16)
                panels, K = panel.shape[:2]
                panel = panel.view(panels, K, 2, 2, 8).transpose(3, 4).to(torch.bfloat16).contiguous()
                self.matrices.append(self._entry(panel, _KIND["bf16"], lengths, K))
            else:
                dtype = torch.float16 if precision == "fp16" else torch.float32
                self.matrices.append(self._entry(panel.to(dtype).contiguous(), _KIND[precision], lengths))
        self.matrices.append(self._entry(self._plain(m.proj, 128, [(H, Hp)]), fp32, [Hp]))

    @staticmethod
    def _entry(tensor, kind, lengths, K=None):
        return tensor, K or tensor.size(1), tensor.size(0), kind, lengths, None, None

    def _lstm_rows(self, w, double=True):
        """(4H, K) rows in PyTorch's gate order -> (4Hp, K) in panel order (units 8p..8p+7 gate by gate)."""
        H = w.size(0) // 4
        w = w.reshape(4, H, -1)
        if double:
            w = w * torch.tensor([1.0, 1.0, 2.0, 1.0], device=w.device)[:, None, None]
        w = F.pad(w, (0, 0, 0, self.Hp - H)).view(4, self.Hp // 8, 8, -1)
        return w.permute(1, 0, 2, 3).reshape(4 * self.Hp, -1).contiguous()

    @staticmethod
    def _columns(w, segments):
        """Pad each input segment (length, padded length) of w's columns."""
        parts, start = [], 0
        for length, padded in segments:
            parts.append(F.pad(w[:, start : start + length], (0, padded - length)))
            start += length
        return torch.cat(parts, 1)

    def _plain(self, w, rows, segments):
        """(N, K) -> (rows / 32, K', 32) panels (rows padded to ``rows``, columns per segment)."""
        w = F.pad(self._columns(w, segments), (0, 0, 0, rows - w.size(0)))
        return w.view(rows // 32, 32, -1).transpose(1, 2).contiguous()

    def _lstm(self, w, segments, double=True):
        """(4H, K) LSTM matrix -> (Hp / 8, K', 32) panels of the gates (i, f, 2g, o) of 8 units."""
        w = self._lstm_rows(self._columns(w, segments), double)
        return w.view(self.Hp // 8, 32, -1).transpose(1, 2).contiguous()

    def plan(self, xproj, out, threads):
        """The ints ``_decode_ext.decode`` reads (decode.cpp, py_decode); the tensors must outlive the call."""
        plan = [*out.shape[:2], threads, self.Php, self.Pp, self.Hp, xproj.data_ptr(), out.data_ptr()]
        plan += [b.data_ptr() for b in self.biases] + [0]
        for i in range(len(self.matrices)):
            plan += self._fields(i)
        return plan

    def _fields(self, i):
        tensor, K, panels, kind, lengths, scale, rowsum = self.matrices[i]
        fields = [tensor.data_ptr(), K, panels, kind, len(lengths), *(lengths + [0])[:2]]
        return fields + [0 if scale is None else scale.data_ptr(), 0 if rowsum is None else rowsum.data_ptr()]

    def matmul(self, i, x, threads=1):
        """W x of ``matrices[i]`` alone, by the C++ kernels (tests): x (B, K) float32 in the matrix's padded input
        layout -> (B, 32 * panels) in its panel row order, without bias."""
        x = x.float().contiguous()
        if x.dim() != 2 or x.size(1) != self.matrices[i][1]:
            raise ValueError(f"matmul: x must be (B, {self.matrices[i][1]}), got {tuple(x.shape)}")
        out = x.new_empty(x.size(0), 32 * self.matrices[i][2])
        _decode_ext.matmul(self._fields(i), x.data_ptr(), x.size(0), out.data_ptr(), threads)
        return out


def fused_weights(decoder, precision="fp32", device="cpu", backend="torchscript"):
    """The cached weights of ``decoder`` for ``backend`` ("cpp": ``PackedWeights``, else ``TorchWeights``),
    rebuilt when any parameter was replaced or updated in place."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    versions = tuple((v.data_ptr(), v._version) for v in decoder.parameters())
    entries = _cache.setdefault(decoder, {})
    key = ("cpp" if backend == "cpp" else "torch", precision, str(device))
    if key not in entries or entries[key][0] != versions:
        cls = PackedWeights if backend == "cpp" else TorchWeights
        entries[key] = (versions, cls(decoder, precision, device))
    return entries[key][1]


def decode(decoder, xs, precision="fp32", lengths=None, backend=None, threads=None):
    """Free-running decoder: xs (B, T, E) encoder output -> (B, T, 128). Rows past ``lengths`` (B,) frames are 0.

    Same result as ``decoder.generate(xs)`` (fp32: ~1e-6); padding frames never reach valid ones (causal).
    ``backend``: "cpp", "torchscript" or "graph" (default: ``default_backend(xs.device)``); ``threads`` of the
    C++ loop (default ``torch.get_num_threads()``).
    """
    backend = backend or default_backend(xs.device)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend == "cpp" and (xs.device.type != "cpu" or not EXTENSION):
        raise ValueError("backend 'cpp' needs the built C++ extension and a CPU tensor")
    w = fused_weights(decoder, precision, xs.device, backend)
    xs = xs.float()
    xproj = F.linear(xs, w.enc_weight, w.enc_bias)  # (B, T, 4H)
    if backend == "cpp":
        xproj = xproj.contiguous()
        out = xs.new_empty(xs.shape[:2] + (128,))
        _decode_ext.decode(w.plan(xproj, out, threads or torch.get_num_threads()))
    elif backend == "graph":
        out = graph_decode(w, xproj)
    else:
        out = xs.new_empty(xs.shape[:2] + (w.proj.size(1),))
        h, c = (xproj.new_zeros(3, xproj.size(0), w.proj.size(0) // 2) for _ in "hc")
        _decode_loop(xproj, out, h, c, xproj.new_zeros(xproj.size(0), w.proj.size(1)), *_loop_args(w))
    if lengths is not None:
        out.masked_fill_(~valid_mask(lengths, xs.size(1)).to(xs.device)[..., None], 0)
    return out
