"""Soft-VC in ESPnet: ``SoftVC`` (an ``AbsTTS`` around ``AcousticModel``) and ``ESPnetSoftVCModel`` (the task's model).

B batch, N units (50 Hz), T = 2N mel frames (100 Hz), 128 natural-log mel bins (DESIGN §2, §3).
Units arrive either raw (``units`` data of ``SoftVCTask``: ids 0..99 or (N, 256) floats) or, when ESPnet's
``TTSTask`` builds the model (``idim`` given), as ``text`` token ids of the list ``<blank> <unk> 0 .. 99 <sos/eos>``,
where unit u is id u + 2. The mel target is truncated to 2N frames and the decoder is teacher-forced with the
target shifted right by one zero frame, as in bshall/acoustic-model ``train.py``.
"""

from typing import Dict, List, Sequence

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.tts.abs_tts import AbsTTS

from espnet_softvc.postnet.model import DenoisingPostnet, denoise_loss
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import (
    FRAMES_PER_UNIT,
    N_MELS,
    N_UNITS,
    PAD_ID,
    TOKEN_OFFSET,
    UNIT_TOKENS,
    check_units,
    valid_mask,
)

CACHE_MB = 1024  # default bound of the free-running cache (per process)


def _utt(utt_id, index):
    return utt_id[index] if utt_id is not None else f"utterance {index} of the batch"


class SoftVC(AbsTTS):
    """Soft-VC acoustic model with ESPnet's TTS interface.

    Args:
        idim: ESPnet vocabulary size when units come as ``text`` token ids (set by ``TTSTask``, must be 103);
            None for raw units (``SoftVCTask``).
        odim: mel bins, must be 128.
        discrete: discrete units (ids 0..99, embedding row 100 pads) or soft units ((N, 256) floats, 0 pads).
        mask_padding: leave padded frames out of the L1 loss (the per-utterance mean L1 whatever the batch);
            False is the original loss (sum over the padded batch / (128 * true length)).
        free_running_valid: in eval mode also report ``l1_free``, the L1 of ``generate()`` against the target.
        postnet: None, or "denoising" for a ``DenoisingPostnet`` (``postnet_conf`` its arguments) on the free-running
            output. Its loss (``postnet_loss``: ``denoise_loss`` with ``postnet_loss_conf``) is added; train it in a
            second stage with ``--init_param`` of the acoustic model and ``--freeze_param tts.model`` (the frozen
            model's teacher-forced L1 is then skipped, and valid reports ``postnet_l1_free`` next to ``l1_free``);
            ``inference`` then returns the denoised mel.
        free_running_cache_mb: while the acoustic model is frozen, its free-running output (the postnet's input)
            is kept in memory for later epochs, up to this many MB per process; utterances beyond it are generated
            again each epoch.
        encoder_prenet, encoder_channels, decoder_prenet, decoder_hidden: ``AcousticModel`` sizes (the paper's).
        spks: number of target speakers (ESPnet's convention): ``forward`` and ``inference`` take ``sids``, the
            speaker id of each utterance (data name ``sids``, a Kaldi ``utt2sid`` read as ``text_int``); None: one.
        train_crop: in training, each utterance longer than this many units is cut to a random window of that
            many units and its 2x mel frames (teacher forcing keeps the true previous frame at the window's
            start): the step costs time in proportion to the frames, so short crops train on more steps in the
            same time; 0 trains on whole utterances (the paper's). Validation always uses whole utterances.
    """

    def __init__(
        self,
        idim=None,
        odim=N_MELS,
        discrete=False,
        mask_padding=True,
        free_running_valid=True,
        postnet=None,
        postnet_conf=None,
        postnet_loss_conf=None,
        free_running_cache_mb=CACHE_MB,
        encoder_prenet=256,
        encoder_channels=512,
        decoder_prenet=256,
        decoder_hidden=768,
        spks=None,
        train_crop=0,
    ):
        super().__init__()
        if odim != N_MELS:
            raise UserError(f"Soft-VC predicts {N_MELS} mel bins, got odim={odim}")
        if idim is not None and discrete and idim != len(UNIT_TOKENS):
            raise UserError(
                f"Soft-VC needs the unit token list <blank> <unk> 0..{N_UNITS - 1} <sos/eos> "
                f"({len(UNIT_TOKENS)} tokens), got a vocabulary of {idim}"
            )
        self.token_ids = idim is not None
        self.discrete = discrete
        self.mask_padding = mask_padding
        self.train_crop = train_crop
        self.free_running_valid = free_running_valid
        self.model = AcousticModel(discrete, encoder_prenet, encoder_channels, decoder_prenet, decoder_hidden, spks)
        if postnet not in (None, "denoising"):
            raise UserError(f"unknown postnet {postnet!r} (choose none or denoising)")
        self.postnet = DenoisingPostnet(**(postnet_conf or {})) if postnet else None
        self.postnet_loss_conf = postnet_loss_conf or {}
        self._free_running_cache = {}  # utt_id -> (2N, 128) on CPU, while the acoustic model is frozen
        self._cache_budget = int(free_running_cache_mb * 2**20)  # bytes left for it

    def _units(self, units, lengths, utt_id=None):
        """Checked (B, N) long ids with PAD_ID beyond each length, or (B, N, 256) floats with zeros there."""
        names = list(utt_id) if utt_id is not None else [_utt(None, b) for b in range(units.size(0))]
        if self.discrete and self.token_ids and not units.is_floating_point():
            units = units.long() - TOKEN_OFFSET  # ESPnet token id u + 2 is unit u
        kind = "discrete" if self.discrete else "soft"
        try:
            units = check_units(units, kind, names, lengths, batched=True)
        except UserError as e:
            raise UserError(f"{e}; ESPnet token id u + 2 is unit u" if self.token_ids else str(e)) from None
        valid = valid_mask(lengths, units.size(1))
        if self.discrete:
            return units.masked_fill(~valid, PAD_ID)
        return units.masked_fill(~valid[..., None], 0.0)

    def _target(self, feats, feats_lengths, unit_lengths, utt_id=None):
        """(B, T', 128) mels -> (B, 2N, 128) targets truncated to 2N_i frames, zero beyond, and the (B, 2N) mask."""
        if feats.size(-1) != N_MELS:
            raise UserError(f"{_utt(utt_id, 0)}: mels must have {N_MELS} bins, got {feats.size(-1)}")
        short = feats_lengths < FRAMES_PER_UNIT * unit_lengths
        if short.any():
            i = int(short.nonzero()[0])
            raise UserError(
                f"{_utt(utt_id, i)}: {int(feats_lengths[i])} mel frames for {int(unit_lengths[i])} units "
                f"(need at least 2N = {2 * int(unit_lengths[i])}; units and mels of different audio?)"
            )
        frames = FRAMES_PER_UNIT * int(unit_lengths.max())
        mask = valid_mask(FRAMES_PER_UNIT * unit_lengths, frames)
        return feats[:, :frames] * mask[..., None], mask

    def _crop(self, units, previous, target, mask, lengths):
        """Training with ``train_crop`` = C: a random window of min(N_i, C) units per utterance, the same window of
        units (B, C[, 256]), previous and target frames (B, 2C, 128), mask (B, 2C) and the lengths (B,)."""
        if not (self.training and self.train_crop) or int(lengths.max()) <= self.train_crop:
            return units, previous, target, mask, lengths
        new_lengths = lengths.clamp(max=self.train_crop)
        starts = (torch.rand(lengths.shape, device=lengths.device) * (lengths - new_lengths + 1)).long()
        index = starts[:, None] + torch.arange(self.train_crop, device=lengths.device)  # (B, C)
        index = index.clamp(max=units.size(1) - 1)
        frames = (FRAMES_PER_UNIT * index[..., None] + torch.arange(FRAMES_PER_UNIT, device=index.device)).flatten(1)
        units = units.gather(1, index if units.dim() == 2 else index[..., None].expand(-1, -1, units.size(-1)))
        valid = valid_mask(new_lengths, self.train_crop)  # pad again beyond the new lengths
        units = units.masked_fill(~valid, PAD_ID) if self.discrete else units.masked_fill(~valid[..., None], 0.0)
        pick = frames[..., None].expand(-1, -1, N_MELS)
        mask = valid_mask(FRAMES_PER_UNIT * new_lengths, frames.size(1))
        target = target.gather(1, pick) * mask[..., None]
        return units, previous.gather(1, pick), target, mask, new_lengths

    def _l1(self, pred, target, mask, lengths):
        """Per-utterance L1 / (128 * 2N), mean over the batch; padded frames count unless masked."""
        error = (pred - target).abs()
        if self.mask_padding:
            error = error * mask[..., None]
        return (error.sum(dim=(1, 2)) / (N_MELS * 2 * lengths)).mean()

    def _frozen(self):
        """True when no acoustic-model parameter is trained (``--freeze_param tts.model``)."""
        return not any(p.requires_grad for p in self.model.parameters())

    def _free_running(self, units, lengths, utt_id, sids=None):
        """(B, 2N, 128) free-running output, zero beyond 2 * lengths, for the postnet to learn from. While the
        acoustic model is frozen (``--freeze_param tts.model``) it is a fixed function of the units: generated
        once per utterance and kept on CPU (up to ``free_running_cache_mb``), so that only the first epoch pays
        for the autoregressive loop."""
        if utt_id is None or not self._frozen():
            # clone: a normal tensor, not an inference-mode one
            return self.model.generate(units, lengths=lengths, sids=sids).clone()
        cache = self._free_running_cache
        missing = [b for b, utt in enumerate(utt_id) if utt not in cache]
        if missing:
            index = torch.as_tensor(missing, device=units.device)
            width = int(lengths[index].max())
            some = None if sids is None else sids.reshape(-1)[index]
            generated = self.model.generate(units[index, :width], lengths=lengths[index], sids=some)
            fresh = {
                utt_id[b]: mel[: FRAMES_PER_UNIT * int(lengths[b])].clone().cpu() for b, mel in zip(missing, generated)
            }
            for utt, mel in fresh.items():
                size = mel.numel() * mel.element_size()
                if size <= self._cache_budget:  # full: later utterances are generated again next time
                    cache[utt], self._cache_budget = mel, self._cache_budget - size
        else:
            fresh = {}
        mels = [fresh[utt] if utt in fresh else cache[utt] for utt in utt_id]
        return torch.nn.utils.rnn.pad_sequence(mels, batch_first=True).to(units.device)

    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        utt_id: Sequence[str] | None = None,
        sids: torch.Tensor | None = None,
        **kwargs,
    ):
        """Teacher-forced L1. text: units (B, N) ids or (B, N, 256), feats: log-mels (B, T', 128) with T' >= 2N,
        sids: (B, 1) speaker ids of a multi-speaker model (``spks``).

        Returns loss, stats (``loss``, ``l1_loss`` and in eval mode ``l1_free``) and the batch size as weight.
        """
        units = self._units(text, text_lengths, utt_id)
        target, mask = self._target(feats, feats_lengths, text_lengths, utt_id)
        loss, stats = 0.0, {}
        if self.postnet is None or not self._frozen():  # a frozen model's teacher-forced L1 is a constant: skipped
            previous = torch.nn.functional.pad(target, (0, 0, 1, 0))[:, :-1]
            crop = self._crop(units, previous, target, mask, text_lengths)  # whole utterances unless cropping
            loss = self._l1(self.model(*crop[:2], sids), *crop[2:])
            stats["l1_loss"] = loss.detach()
        if self.postnet is not None:  # trained on what it will see: the free-running output (no gradient into it)
            generated = self._free_running(units, text_lengths, utt_id, sids)
            denoised = self.postnet(generated, 2 * text_lengths)
            post_loss, post_stats = denoise_loss(denoised, target, 2 * text_lengths, **self.postnet_loss_conf)
            loss = loss + post_loss
            stats.update(postnet_loss=post_loss.detach(), postnet_mel_snr=post_stats["mel_snr"])
        stats["loss"] = loss.detach()
        if not self.training and self.free_running_valid:  # free-running outputs are zero beyond 2 * lengths
            if self.postnet is None:
                generated = self.model.generate(units, lengths=text_lengths, sids=sids)
            stats["l1_free"] = self._l1(generated, target, mask, text_lengths)
            if self.postnet is not None:
                stats["postnet_l1_free"] = self._l1(denoised, target, mask, text_lengths)
        loss, stats, weight = force_gatherable((loss, stats, units.size(0)), loss.device)
        return loss, stats, weight

    def inference(
        self,
        text: torch.Tensor,
        feats: torch.Tensor | None = None,
        use_teacher_forcing=False,
        precision="fp32",
        sids: torch.Tensor | None = None,
        **kwargs,
    ):
        """One utterance: units (N,) ids or (N, 256) -> {"feat_gen": (2N, 128)}, free-running unless teacher-forced
        on ``feats`` (T' >= 2N, 128); ``precision`` of the free-running loop: see ``AcousticModel.generate``;
        ``sids`` (1,): the speaker of a multi-speaker model (None: speaker 0)."""
        lengths = text.new_tensor([text.size(0)], dtype=torch.long)
        units = self._units(text[None], lengths)
        if not use_teacher_forcing:
            generated = self.model.generate(units, precision=precision, sids=sids)[0]
            if self.postnet is None:
                return dict(feat_gen=generated)
            return dict(feat_gen=self.postnet(generated[None])[0], feat_gen_before_postnet=generated)
        if feats is None:
            raise UserError("teacher-forced inference needs the target mels (feats)")
        target, _ = self._target(feats[None], lengths.new_tensor([feats.size(0)]), lengths)
        return dict(feat_gen=self.model(units, torch.nn.functional.pad(target, (0, 0, 1, 0))[:, :-1], sids)[0])


class ESPnetSoftVCModel(AbsESPnetModel):
    """The model of ``SoftVCTask``: data names ``units`` and ``feats`` fed to ``tts``.

    Only ``tts`` holds parameters, so the state_dict keys (``tts.model.*``) are those of ESPnet's
    ``ESPnetTTSModel`` around the same ``tts``: ``TTSTask.build_model_from_file`` loads our model files.
    """

    def __init__(self, tts: AbsTTS):
        super().__init__()
        self.tts = tts

    def forward(self, units, units_lengths, feats, feats_lengths, utt_id: List[str] | None = None, sids=None, **kwargs):
        """units (B, N) or (B, N, 256), feats (B, T', 128)[, sids (B, 1)] -> loss, stats, weight."""
        return self.tts(units, units_lengths, feats, feats_lengths, utt_id=utt_id, sids=sids)

    def collect_feats(self, units, units_lengths, feats, feats_lengths, **kwargs) -> Dict[str, torch.Tensor]:
        return dict(feats=feats, feats_lengths=feats_lengths)

    def inference(self, units, feats=None, **decode_config) -> Dict[str, torch.Tensor]:
        return self.tts.inference(units, feats=feats, **decode_config)

    @torch.no_grad()
    def plot_mels(self, units, units_lengths, feats, feats_lengths, sids=None, **kwargs) -> Dict[str, torch.Tensor]:
        """First utterance of a batch: target, teacher-forced and free-running mels, each (2N, 128)."""
        units, feats = units[0, : units_lengths[0]], feats[0, : feats_lengths[0]]
        sids = None if sids is None else sids[:1]
        teacher_forced = self.inference(units, feats, use_teacher_forcing=True, sids=sids)["feat_gen"]
        return dict(
            target=feats[: teacher_forced.size(0)],
            teacher_forced=teacher_forced,
            free_running=self.inference(units, sids=sids)["feat_gen"],
        )
