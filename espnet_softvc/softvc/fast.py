"""Fused free-running decoder: the math of ``Decoder.generate`` (DESIGN §3) without its per-frame overhead (§10).

The original calls ``nn.LSTM`` three times per frame from Python. Here, per frame of the batch (B rows, H = 768):
- lstm1's input projection of the encoder output is one GEMM over all frames before the loop (both biases in it);
- each LSTM is ONE matmul of ``[input | h]`` with ``[W_ih | W_hh]``, gate rows reordered (i, f, o, g) so that one
  sigmoid and one tanh cover all gates; lstm1 and lstm2 read the same buffer ``[prenet(m) | h1 | h2]``, lstm3 reads
  ``[h1 + h2 | h3]`` and ``proj`` reads it too against ``[W_proj | W_proj]`` (= proj(x + x3) of the original);
- buffers are preallocated and written with ``out=``; the loop is TorchScript (no Python per frame).

``precision``: "fp32" (exact: ~1e-6 from the original loop), "bf16" / "fp16" (matmul weights, inputs and products
bfloat16 / float16, oneDNN on CPU for bf16; LSTM state, gates and outputs float32) or "int8" (CPU: per-channel int8
weights, activations quantized per matmul call, fbgemm). Fused weights are cached per decoder and rebuilt when its
parameters change.
"""

import warnings
import weakref
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from espnet_softvc.utils.shapes import valid_mask

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
Packed = List[torch.classes.quantized.LinearPackedParamsBase]  # fbgemm int8 weights (empty unless int8)
_cache = weakref.WeakKeyDictionary()  # decoder -> {(precision, device): (parameter versions, FusedWeights)}


def _ifog(w):
    """Gate rows of a PyTorch LSTM weight/bias from (i, f, g, o) to (i, f, o, g)."""
    i, f, g, o = w.chunk(4, 0)
    return torch.cat((i, f, o, g), 0)


class FusedWeights:
    """Decoder weights rearranged for the fused loop. ``mats`` feed the four fused matmuls of ``_decode``:
    prenet layer 2 (P <- P), lstm1 (4H <- P + H), lstm2 (4H <- 2H), lstm3 (4H <- 2H); prenet layer 1 and proj
    stay float32 (they are 1.5% of the weights at the paper's sizes P = 256, H = 768)."""

    def __init__(self, decoder, precision, device):
        p = {k: v.detach().to(device, torch.float32) for k, v in decoder.state_dict().items()}
        lstm = [
            (
                _ifog(p[f"lstm{k}.weight_ih_l0"]),
                _ifog(p[f"lstm{k}.weight_hh_l0"]),
                _ifog(p[f"lstm{k}.bias_ih_l0"] + p[f"lstm{k}.bias_hh_l0"]),
            )
            for k in (1, 2, 3)
        ]
        encoder_dim = lstm[0][0].size(1) - p["prenet.net.3.weight"].size(0)  # lstm1 reads [encoder | prenet(m)]
        self.enc_weight, self.enc_bias = lstm[0][0][:, :encoder_dim], lstm[0][2]  # its projection of the encoder
        weights = [p["prenet.net.3.weight"], torch.cat((lstm[0][0][:, encoder_dim:], lstm[0][1]), 1)]
        weights += [torch.cat(lstm[k][:2], 1) for k in (1, 2)]  # (out, in) each
        zero = torch.zeros_like(lstm[0][2])
        self.biases = [p["prenet.net.3.bias"], zero, lstm[1][2], lstm[2][2]]  # lstm1's comes with the projection
        self.pre_weight, self.pre_bias = p["prenet.net.0.weight"].t().contiguous(), p["prenet.net.0.bias"]
        self.proj = torch.cat((p["proj.weight"], p["proj.weight"]), 1).t().contiguous()  # (2H, 128)
        self.packed = torch.jit.annotate(Packed, [])
        cpu = torch.device(device).type == "cpu"
        if precision == "fp32":
            self.kind, self.mats = "fp32", [w.t().contiguous() for w in weights]
        elif precision == "bf16" and cpu and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            self.kind = "bf16-onednn"
            self.mats = [torch.ops.mkldnn._reorder_linear_weight(w.bfloat16(), 1) for w in weights]
        elif precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            self.kind, self.mats = "half", [w.t().contiguous().to(dtype) for w in weights]
        elif precision == "int8":
            if not cpu:
                raise ValueError("precision='int8' runs on CPU only (fbgemm); use 'bf16' on GPU")
            self.kind, self.mats = "int8", []
            for w in weights:
                scale = w.abs().amax(1).clamp_min(1e-12) / 127
                q = torch.quantize_per_channel(w, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
                self.packed.append(torch.ops.quantized.linear_prepack(q, None))
        else:
            raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")


def fused_weights(decoder, precision="fp32", device="cpu"):
    """The cached ``FusedWeights`` of ``decoder``, rebuilt when any parameter was replaced or updated in place."""
    versions = tuple((v.data_ptr(), v._version) for v in decoder.parameters())
    entries = _cache.setdefault(decoder, {})
    key = (precision, str(device))
    if key not in entries or entries[key][0] != versions:
        entries[key] = (versions, FusedWeights(decoder, precision, device))
    return entries[key][1]


def _matmul(x: Tensor, k: int, add: Tensor, out: Tensor, kind: str, mats: List[Tensor], packed: Packed) -> Tensor:
    """out = add + x @ W_k^T for the k-th fused weight. x, add, out float32 (B, *)."""
    if kind == "fp32":
        return torch.addmm(add, x, mats[k], out=out)
    if kind == "bf16-onednn":
        no_scalars = torch.jit.annotate(List[Optional[Union[int, float, complex]]], [])  # Scalar?[]
        y = torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), mats[k], None, "none", no_scalars, "")
    elif kind == "half":  # bf16 or fp16 weights and products
        y = torch.mm(x.to(mats[k].dtype), mats[k])
    else:
        y = torch.ops.quantized.linear_dynamic(x.contiguous(), packed[k], False)
    return torch.add(add, y, out=out)


def _cell(gates: List[Tensor], c: Tensor, h: Tensor, tmp: Tensor):
    """LSTM cell in place. gates: views (all sigmoid gates, g, i, f, o) of the (B, 4H) pre-activations ordered
    (i, f, o, g); updates c (B, H), writes h (B, H)."""
    gates[0].sigmoid_()
    gates[1].tanh_()
    c.mul_(gates[3]).addcmul_(gates[2], gates[1])
    torch.mul(gates[4], torch.tanh(c, out=tmp), out=h)


def _decode(
    xproj: Tensor,
    out: Tensor,
    pre_weight: Tensor,
    pre_bias: Tensor,
    biases: List[Tensor],
    proj: Tensor,
    kind: str,
    mats: List[Tensor],
    packed: Packed,
) -> Tensor:
    """The autoregressive loop. xproj (B, T, 4H) lstm1 gates from the encoder, out (B, T, 128) filled and returned."""
    batch, size, pre = xproj.size(0), proj.size(0) // 2, biases[0].size(0)
    buf12 = xproj.new_zeros([batch, pre + 2 * size])  # [prenet(m) | h1 | h2]
    buf3 = xproj.new_zeros([batch, 2 * size])  # [h1 + h2 | h3]
    in1, in2 = buf12[:, : pre + size], buf12[:, pre:]  # lstm1's [prenet(m) | h1], lstm2's [h1 | h2]
    prenet, h1, h2 = buf12[:, :pre], buf12[:, pre : pre + size], buf12[:, pre + size :]
    x3, h3 = buf3[:, :size], buf3[:, size:]
    c1, c2, c3 = xproj.new_zeros([3, batch, size]).unbind(0)
    hidden, tmp = xproj.new_empty([batch, pre_weight.size(1)]), xproj.new_empty([batch, size])
    gates = xproj.new_empty([batch, 4 * size])
    views = [gates[:, : 3 * size], gates[:, 3 * size :]] + list(gates[:, : 3 * size].split(size, 1))
    m = xproj.new_zeros([batch, proj.size(1)])
    for x, y in zip(xproj.unbind(1), out.unbind(1)):
        torch.addmm(pre_bias, m, pre_weight, out=hidden).relu_()
        _matmul(hidden, 0, biases[0], prenet, kind, mats, packed).relu_()
        _matmul(in1, 1, x, gates, kind, mats, packed)
        _cell(views, c1, h1, tmp)
        _matmul(in2, 2, biases[2], gates, kind, mats, packed)
        _cell(views, c2, h2, tmp)
        torch.add(h1, h2, out=x3)
        _matmul(buf3, 3, biases[3], gates, kind, mats, packed)
        _cell(views, c3, h3, tmp)
        m = torch.mm(buf3, proj, out=y)
    return out


try:  # TorchScript removes the Python interpreter from the per-frame loop; eager Python is the fallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still the cheapest loop
        _decode_loop = torch.jit.script(_decode)
except Exception:  # pragma: no cover - TorchScript unavailable in this build
    _decode_loop = _decode


def decode(decoder, xs, precision="fp32", lengths=None):
    """Free-running decoder: xs (B, T, E) encoder output -> (B, T, 128). Rows past ``lengths`` (B,) frames are 0.

    Same result as ``decoder.generate(xs)`` (fp32: within 1e-5); padding frames never reach valid ones (causal).
    """
    w = fused_weights(decoder, precision, xs.device)
    xs = xs.float()
    xproj = F.linear(xs, w.enc_weight, w.enc_bias)  # (B, T, 4H)
    out = xs.new_empty(xs.shape[:2] + (w.proj.size(1),))
    _decode_loop(xproj, out, w.pre_weight, w.pre_bias, w.biases, w.proj, w.kind, w.mats, w.packed)
    if lengths is not None:
        out.masked_fill_(~valid_mask(lengths, xs.size(1)).to(xs.device)[..., None], 0)
    return out
