"""The shapes every part agrees on (DESIGN §1-§3): one place for each fact, and the one unit validator.

Audio runs at 16 kHz. Log-mels have 128 bins at a hop of 160 samples (100 Hz); units come at a hop of 320
samples (50 Hz), so a unit spans 2 mel frames. Discrete units are ids 0..99 (id 100 pads batches: row 100 of the
acoustic model's embedding, a convention, not ``padding_idx``); soft units are 256-dim floats. ESPnet's stock
TTS models read discrete units as the tokens of ``UNIT_TOKENS`` (unit u is token id u + 2).
"""

import torch

from espnet_softvc.utils.errors import UserError

SAMPLE_RATE = 16000
N_FFT = 1024
HOP = 160  # samples per mel frame
N_MELS = 128
LOG_FLOOR = 1e-5  # log-mels are ln(max(mel, 1e-5))
UNIT_HOP = 320  # samples per unit
FRAMES_PER_UNIT = UNIT_HOP // HOP
UNIT_DIM = 256
N_UNITS = 100
PAD_ID = N_UNITS


def unit_tokens(num_units=N_UNITS):
    """ESPnet token list of discrete units: ``<blank>`` = 0, ``<unk>`` = 1, unit u = u + 2, ``<sos/eos>`` last."""
    return ["<blank>", "<unk>", *map(str, range(num_units)), "<sos/eos>"]


UNIT_TOKENS = unit_tokens()
TOKEN_OFFSET = UNIT_TOKENS.index("0")


def valid_mask(lengths, max_length=None):
    """(B,) lengths -> (B, L) bool, True on real positions; L defaults to the longest length and may not be shorter.

    Written here, not taken from ESPnet: its public ``make_pad_mask`` / ``make_non_pad_mask`` send tensor lengths to
    their ONNX-traceable variant, which builds an (L, L) matrix (3.6 GB for the 60000 frames of 10 minutes), and log
    a warning on every call with a list of lengths. Comparing positions with lengths is O(B L), on the lengths'
    device, and gives what ESPnet's list-of-lengths branch gives."""
    lengths = torch.as_tensor(lengths).long()
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_length is None:
        max_length = longest
    elif longest > max_length:
        raise ValueError(f"valid_mask: length {longest} is longer than max_length {max_length}")
    return torch.arange(max_length, device=lengths.device) < lengths[:, None]


def _first_bad(bad):
    """Index of the first utterance (row) of a (B, ...) bool tensor with a True in it."""
    return int(bad.flatten(1).any(1).nonzero()[0])


def check_units(units, kind, name, lengths=None, batched=None):
    """Units for the ``kind`` ("soft" / "discrete") model as a tensor, or a one-line ``UserError``.

    Soft: float (N, 256) or (B, N, 256), finite. Discrete: integer ids 0..99, (N,) or (B, N).
    ``batched`` True / False demands a batch / one utterance (None: either). ``lengths`` (B,): only the first
    lengths[b] units of row b are checked. ``name``: a file or utterance id, or a list of ids (one per row).
    """
    units = torch.as_tensor(units)
    soft = kind == "soft"
    base = 2 if soft else 1
    one = [base] if batched is False else [base + 1] if batched else [base, base + 1]
    names = name if isinstance(name, (list, tuple)) else None
    label = names[0] if names else name
    expected = f"float (N, {UNIT_DIM})" if soft else f"integer ids 0..{N_UNITS - 1} (N,)"
    if units.is_floating_point() != soft:
        given = "float" if units.is_floating_point() else "integer"
        raise UserError(f"{label}: {given} units given to the {kind} model (expected {expected})")
    if units.dim() not in one or (soft and units.shape[-1] != UNIT_DIM):
        what = "the units of one utterance" if batched is False else f"{kind} units"
        raise UserError(f"{label}: expected {what}, {expected}, got shape {tuple(units.shape)}")
    batch = units if units.dim() == base + 1 else units[None]
    valid = torch.ones(batch.shape[:2], dtype=torch.bool, device=units.device)
    if lengths is not None:
        valid = valid_mask(lengths, batch.size(1))
    if soft:
        bad = ~torch.isfinite(batch) & valid[..., None]
        if bad.any():
            row = _first_bad(bad)
            raise UserError(f"{names[row] if names else label}: soft units contain NaN or Inf")
        return units.float() if units.dtype == torch.float64 else units  # float32 / bfloat16 / float16 stay
    bad = ((batch < 0) | (batch >= N_UNITS)) & valid
    if bad.any():
        row = _first_bad(bad)
        found = batch[row][valid[row]]
        raise UserError(
            f"{names[row] if names else label}: unit id out of range 0..{N_UNITS - 1} "
            f"(found {int(found.min())}..{int(found.max())})"
        )
    return units.long()
