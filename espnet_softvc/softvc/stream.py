"""Streaming Soft-VC acoustic model: units pushed chunk by chunk -> the log-mel frames that are final so far.

B batch, C encoder channels, H decoder hidden size; units at 50 Hz, mel frames at 100 Hz (2 per unit).

Design (what is exact, what is approximated):

- Decoder: exact. It is causal: frame t depends on encoder frames <= t and on the state after frame t - 1,
  i.e. (h, c) of the three LSTMs and the last mel frame (``DecoderState``). ``decode_chunk`` carries that state,
  so any split of the encoder output decodes to the offline output (~1e-7: float rounding of the encoder
  projection, one GEMM per chunk). The fused C++ loop of ``fast`` starts from zeros only, so chunks call its
  kernels (``PackedWeights.matmul``, every precision) frame by frame, on one thread (a call would start its
  threads), the LSTM cells in PyTorch; ``backend="torchscript"`` runs ``fast``'s TorchScript step instead.
- Encoder convolutions: exact, with 5 units (100 ms) of look-ahead: conv5 at 50 Hz (2 units), the x2 transposed
  conv (an odd frame needs the next unit), 2 x conv5 at 100 Hz (1 unit each). Each conv keeps its last inputs and
  outputs the frames they complete, one GEMM per window (the transposed conv in its sub-pixel form): PyTorch's
  conv kernels cost milliseconds per call on a few frames.
- Encoder InstanceNorm1d: approximated. Offline, each of the 3 norms uses the mean and variance of its channel over
  the whole utterance, unknown before its end. Streaming uses cumulative statistics (online mean and variance
  normalisation): each norm keeps per-channel float64 sums of its input over every frame final so far (the
  chunks and the look-ahead; a frame is counted once, when its inputs are all in) and normalises its new frames
  with them. A frame is always inside its own statistics, so |x - mean| <= sqrt(n - 1) std: bounded at the start,
  where the n frames are few. From a cold start (the default) the first second deviates most and the statistics
  converge as the utterance goes on; ``prior_statistics`` of a few sentences of any voice, weighted as
  ``PRIOR_SECONDS``, start the sums from typical values instead (a global prior, as ASR front ends use). Measured
  on a trained paper-size model (``benchmarks/bench_stream.py``, log-mel std 1.9): mean abs deviation from
  offline output 0.76 (20 ms chunks) to 0.42 (320 ms) from a cold start, 0.07 with a prior.
  A single push holding the whole utterance (``final=True``, no prior) has the offline statistics and gives the
  offline output (~1e-6: float64 sums, GEMMs for convolutions).

Algorithmic latency of the acoustic model: chunk + ``LOOKAHEAD_MS`` (the decoder adds none).
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from espnet_softvc.softvc import fast
from espnet_softvc.utils.shapes import N_MELS, SAMPLE_RATE, UNIT_HOP

CONTEXT = LOOKAHEAD = 5  # units either side of a chunk that make the encoder's convolutions exact
LOOKAHEAD_MS = LOOKAHEAD * UNIT_HOP * 1000 // SAMPLE_RATE
PRIOR_SECONDS = 10.0  # weight of a prior's statistics (``prior_statistics``): as many seconds of the utterance


@dataclass
class DecoderState:
    """The decoder after a frame: ``h``, ``c`` (3, B, H) of lstm1-3 and ``m`` (B, 128) that mel frame."""

    h: Tensor
    c: Tensor
    m: Tensor

    @classmethod
    def zeros(cls, decoder, batch=1, device="cpu"):
        """The state before the first frame (the offline loop's: all zeros)."""
        h, c = (torch.zeros(3, batch, decoder.lstm1.hidden_size, device=device) for _ in "hc")
        return cls(h, c, torch.zeros(batch, N_MELS, device=device))


def _cpp_steps(w, xproj, h, c, m, threads=1):
    """The C++ kernels of ``w`` (``fast.PackedWeights``) one frame at a time from state (h, c, m), updated in
    place. xproj (B, t, 4Hp) in panel order (gates i, f, 2g, o of 8 units) -> (B, t, 128)."""
    B, H, Hp = xproj.size(0), h.size(-1), w.Hp
    hp, cp = F.pad(h, (0, Hp - H)), F.pad(c, (0, Hp - H))  # (3, B, Hp)
    out = xproj.new_empty(xproj.shape[:2] + (N_MELS,))
    for t in range(xproj.size(1)):
        hidden = w.matmul(0, m, threads).add_(w.biases[0]).relu_()
        pre = w.matmul(1, hidden, threads).add_(w.biases[1]).relu_()
        x = None
        for layer, add in enumerate((xproj[:, t], w.biases[2], w.biases[3])):
            inputs = (pre, hp[0]) if layer == 0 else (hp[0], hp[1]) if layer == 1 else (x, hp[2])
            gates = w.matmul(2 + layer, torch.cat(inputs, 1), threads).add_(add).view(B, Hp // 8, 4, 8).sigmoid_()
            i, f, g, o = gates.unbind(2)  # tanh(g) = 2 sigmoid(2g) - 1
            cell = f * cp[layer].view(B, -1, 8) + i * (2 * g - 1)
            cp[layer], hp[layer] = cell.view(B, Hp), (o * cell.tanh()).view(B, Hp)
            x = hp[0] + hp[1] if layer == 1 else x
        m = out[:, t] = w.matmul(5, x + hp[2], threads)
    h.copy_(hp[..., :H])
    c.copy_(cp[..., :H])
    return out


@torch.inference_mode()
def decode_chunk(decoder, xs, state=None, precision="fp32", backend=None):
    """Free-running decoder from ``state``: xs (B, t, E) encoder frames -> ((B, t, 128) mel, state after them).

    ``state`` None: the start (``DecoderState.zeros``); it is not modified. Chunks decoded one after the other
    give ``fast.decode`` of their concatenation (see the module docstring). ``backend``: "cpp" (default on CPU
    where the extension is built) or "torchscript"; ``precision`` as in ``fast.decode``.
    """
    backend = backend or ("cpp" if xs.device.type == "cpu" and fast.EXTENSION else "torchscript")
    if backend not in ("cpp", "torchscript"):
        raise ValueError(f"unknown streaming backend {backend!r} (cpp or torchscript)")
    if state is None:
        state = DecoderState.zeros(decoder, xs.size(0), xs.device)
    h, c, m = state.h.clone(), state.c.clone(), state.m.clone()
    w = fast.fused_weights(decoder, precision, xs.device, backend)
    xproj = F.linear(xs.float(), w.enc_weight, w.enc_bias)
    if backend == "cpp":
        out = _cpp_steps(w, xproj.contiguous(), h, c, m)
    else:
        out = fast._decode_loop(xproj, xs.new_empty(xs.shape[:2] + (N_MELS,)).float(), h, c, m, *fast._loop_args(w))
    return out, DecoderState(h, c, out[:, -1].clone() if out.size(1) else m)


def _as_gemm(layer):
    """A conv of ``encoder.convs`` as one GEMM per window of ``taps`` inputs: (weight (taps * C_in, stride * C_out),
    bias, taps, stride, zeros padded on either side of the input, outputs dropped at either end)."""
    w, stride, pad = layer.weight.detach(), layer.stride[0], layer.padding[0]
    bias = layer.bias.detach() if layer.bias is not None else w.new_zeros(layer.out_channels)
    if layer.dilation[0] != 1 or layer.kernel_size[0] % stride or (stride > 1 and not layer.transposed):
        raise ValueError(f"streaming supports the convolutions of Soft-VC's encoder, not {layer}")
    if layer.transposed:  # y[s m + r] = sum_t x[m - t] w[:, :, r + s t]: the last k / s inputs, s outputs at a time
        c_in, c_out, k = w.shape
        taps = k // stride
        w = w.view(c_in, c_out, taps, stride).flip(2).permute(2, 0, 3, 1).reshape(taps * c_in, stride * c_out)
        return w.contiguous(), bias.repeat(stride), taps, stride, taps - 1, pad
    c_out, c_in, k = w.shape  # y[m] = sum_t w[:, :, t] x[m + t] on the input padded with zeros
    return w.permute(2, 1, 0).reshape(k * c_in, c_out).contiguous(), bias, k, 1, pad, 0


class EncoderStream:
    """``Encoder`` as a stream, time-major (B, t, C): each conv of ``encoder.convs`` keeps its last inputs (the
    offline zero padding at the start) and outputs what they complete, as one GEMM per window (a transposed conv
    in its sub-pixel form); each norm adds its new frames to its cumulative statistics (started from ``prior``,
    see ``prior_statistics``) and normalises them with those (module docstring). Each frame passes each layer once.

    ``push(units, final=False)``: units (B, n) ids / (B, n, 256) that follow those pushed before -> (B, t, C) the
    frames newly final: up to 2 u - 9 for u units received (all but the last ``LOOKAHEAD`` units and the odd frame
    of the one before), all 2 u when ``final`` (the offline zero padding at the end)."""

    def __init__(self, encoder, prior=None):
        self.encoder = encoder.eval()
        convs = enumerate(encoder.convs)
        self.gemms = {k: _as_gemm(m) for k, m in convs if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))}
        self.kept, self.started = {}, set()  # conv index -> its last inputs (B, taps - 1, C); convs that output
        self.stats = dict(prior or {})  # norm index -> (frames, sum (B, C), sum of squares (B, C)), float64
        self.received = 0  # units

    def statistics(self, seconds=None):
        """The norms' statistics so far ({norm index: (frames, sum, sum of squares)}), weighted as ``seconds`` of
        audio if given: the ``prior`` of a next stream of the same voice (a session)."""
        scale = 1.0 if seconds is None else seconds * SAMPLE_RATE / UNIT_HOP / max(1, self.received)
        return {k: tuple(v * scale for v in stats) for k, stats in self.stats.items()}

    def _norm(self, k, norm, x):
        """x (B, t, C) new frames -> the same normalised with the statistics of every frame so far."""
        count, s, s2 = self.stats.get(k, (0, 0.0, 0.0))
        new = x.double()
        self.stats[k] = count, s, s2 = count + x.size(1), s + new.sum(1), s2 + new.square().sum(1)
        mean = s / count
        rstd = torch.rsqrt((s2 / count - mean.square()).clamp_min(0) + norm.eps)
        y = (x.float() - mean[:, None].float()) * rstd[:, None].float()
        return (y * norm.weight + norm.bias if norm.affine else y).to(x.dtype)

    def _conv(self, k, x, final):
        """The new inputs x (B, t, C_in) of conv k -> its outputs now final (B, t', C_out)."""
        w, bias, taps, stride, pad, drop = self.gemms[k]
        kept = self.kept.get(k, x.new_zeros(x.size(0), pad, x.size(2)))
        x = torch.cat((kept, x, x.new_zeros(x.size(0), pad if final else 0, x.size(2))), 1)
        windows = x.size(1) - taps + 1
        self.kept[k] = x[:, max(0, windows) :]
        if windows <= 0:
            return x.new_zeros(x.size(0), 0, w.size(1) // stride)
        x = x.unfold(1, taps, 1).transpose(2, 3).reshape(x.size(0), windows, -1)
        y = torch.addmm(bias, x.flatten(0, 1), w).view(x.size(0), windows * stride, -1)
        first = drop if k not in self.started else 0
        self.started.add(k)
        return y[:, first : y.size(1) - (drop if final else 0)]

    @torch.inference_mode()
    def push(self, units, final=False):
        enc = self.encoder
        self.received += units.size(1)
        x = enc.prenet(enc.embedding(units) if enc.embedding is not None else units)
        for k, layer in enumerate(enc.convs):
            if isinstance(layer, nn.InstanceNorm1d):
                x = self._norm(k, layer, x) if x.size(1) else x
            else:
                x = self._conv(k, x, final) if k in self.gemms else layer(x)
        return x


def prior_statistics(encoder, utterances, seconds=PRIOR_SECONDS):
    """Instance statistics of ``encoder`` pooled over ``utterances`` (units (n,) / (n, 256) each, e.g. of a few
    sentences of any voice), weighted as ``seconds`` of audio: the ``prior`` that a stream starts from (online
    mean and variance normalisation with a global prior, as ASR front ends do)."""
    pooled, units = {}, 0
    for u in utterances:
        stream = EncoderStream(encoder)
        stream.push(u[None], final=True)
        units += u.size(0)
        for k, stats in stream.stats.items():
            pooled[k] = tuple(a + b for a, b in zip(pooled.get(k, (0, 0.0, 0.0)), stats))
    scale = seconds * SAMPLE_RATE / UNIT_HOP / units
    return {k: tuple(v * scale for v in stats) for k, stats in pooled.items()}


class AcousticStream:
    """``AcousticModel.generate`` chunk by chunk: ``push(units (B, n[, 256]), final=False)`` -> (B, 2k, 128)
    log-mel frames newly final (``EncoderStream``, then ``decode_chunk`` with the carried ``DecoderState``).
    The model is put in eval mode (dropout off); ``sids``: the target speaker of a multi-speaker model."""

    def __init__(self, model, precision="fp32", backend=None, prior=None, sids=None):
        self.encoder = EncoderStream(model.eval().encoder, prior)
        self.decoder, self.precision, self.backend, self.state = model.decoder, precision, backend, None
        self.model, self.sids = model, sids

    def push(self, units, final=False):
        xs = self.encoder.push(units, final)
        xs = xs + self.model.speaker(self.sids, xs.size(0))
        if xs.size(1) == 0:
            return xs.new_zeros(xs.shape[:2] + (N_MELS,), dtype=torch.float32)
        mel, self.state = decode_chunk(self.decoder, xs, self.state, self.precision, self.backend)
        return mel
