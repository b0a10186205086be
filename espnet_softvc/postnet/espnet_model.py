"""The denoising postnet in ESPnet: ``MelDenoiser``, a standalone ``AbsTTS`` of ``SoftVCTask`` (``--tts denoiser``).

It reads the task's ``units`` data as the noisy log-mels (B, T, 128) and ``feats`` as the clean ones, so the
Trainer, averaging, packing and ``softvc-denoise --model_file --train_config`` work as for Soft-VC. Pairs for
training come from ``python -m espnet_softvc.bin.make_pairs`` (seeded corruption of wavs, then our mel). With
``arch: fusion`` (``fusion.FrontEndFusion``) ``units`` holds [noisy | RNNoise's | DeepFilterNet3's] log-mels
(B, T, 384) instead (``make_pairs --front_ends``).
"""

from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.tts.abs_tts import AbsTTS

from espnet_softvc.postnet.fusion import FrontEndFusion
from espnet_softvc.postnet.model import DenoisingPostnet, denoise_loss
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import N_MELS


class MelDenoiser(AbsTTS):
    """Standalone denoiser. Args: ``idim``/``odim`` (ESPnet's, odim must be 128) and ``DenoisingPostnet``'s
    ``arch``, ``body_conf``, ``max_log_gain``, or ``arch: fusion`` with ``FrontEndFusion``'s arguments as
    ``body_conf``; ``l1_weight`` of :func:`denoise_loss`."""

    def __init__(self, idim=None, odim=N_MELS, arch="conv", body_conf=None, max_log_gain=0.5, l1_weight=0.1):
        super().__init__()
        if odim != N_MELS:
            raise UserError(f"the denoiser works on {N_MELS}-bin mels, got odim={odim}")
        if arch == "fusion":
            self.postnet = FrontEndFusion(**(body_conf or {}))
        else:
            self.postnet = DenoisingPostnet(arch, body_conf, max_log_gain)
        self.l1_weight = l1_weight

    def forward(self, text, text_lengths, feats, feats_lengths, utt_id=None, **kwargs):
        """text: noisy (B, T, 128), feats: clean (B, T, 128) of the same lengths -> loss, stats, weight."""
        dim = getattr(self.postnet, "input_dim", N_MELS)
        if text.dim() != 3 or text.size(-1) != dim or feats.shape[:2] != text.shape[:2] or feats.size(-1) != N_MELS:
            name = utt_id[0] if utt_id else "batch"
            raise UserError(
                f"{name}: noisy and clean mels must be (T, {dim}) and (T, {N_MELS}) of the same length, got "
                f"{tuple(text.shape[1:])} and {tuple(feats.shape[1:])}"
            )
        loss, stats = denoise_loss(self.postnet(text, text_lengths), feats, text_lengths, self.l1_weight)
        stats = dict(loss=loss.detach(), **stats)
        return force_gatherable((loss, stats, text.size(0)), loss.device)

    def inference(self, text, **kwargs):
        """One noisy log-mel (T, 128) (fusion: (T, 384)) -> {"feat_gen": denoised (T, 128)}."""
        return dict(feat_gen=self.postnet(text[None].float())[0])
