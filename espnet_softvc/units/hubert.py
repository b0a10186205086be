"""HuBERT content encoders of bshall/hubert on ``torchaudio.models``, loading the original checkpoints.

A ``ContentEncoder`` is a torchaudio wav2vec2/HuBERT backbone plus the HuBERT-Soft head: ``proj`` (D -> 256)
and ``label_embedding`` (K, 256) for the cosine-similarity logits it is trained with. With HuBERT-base it is
bshall/hubert's ``Hubert``; a small backbone gives the offline soft encoder (``units.soft_encoder``).
Waveforms are zero-padded by 40 samples each side, so a 16 kHz wav of S samples gives N = floor(S / 320) frames.
Up to ``CHUNK`` frames (30 s) are encoded at once, as in bshall/hubert; longer audio in chunks (``encode``), so that
a 10-minute file needs no more memory than a 30 s one (whole, HuBERT-base would need tens of GB for it).

Original files (parameter names of bshall/hubert ``hubert/model.py``): v0.2 ``{"hubert": state_dict with
"module."}`` (hubert-soft-35d9f29f.pt, hubert-discrete-96b248c5.pt), v0.1 a bare state_dict
(hubert-soft-0d54a1f4.pt). HuBERT-Soft has 100 label embeddings, HuBERT-Discrete the 504 of pretraining.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio

from espnet_softvc.feats.log_mel import PAD as MEL_PAD
from espnet_softvc.feats.log_mel import LogMelSpectrogram
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import N_MELS, UNIT_DIM, UNIT_HOP
from espnet_softvc.utils.torch_files import is_state_dict, load_strict, strip_prefix, torch_load

HOP = UNIT_HOP
PAD = (400 - HOP) // 2  # samples added each side: receptive field 400, hop 320
CHUNK, CONTEXT = 1500, 100  # frames (20 ms) encoded at once, frames of context either side of a chunk
DISCRETE_LAYER = 7
TEMPERATURE = 0.1
PUBLISHED = {
    "soft": "hubert-soft-35d9f29f.pt",
    "discrete": "hubert-discrete-96b248c5.pt",
    "kmeans": "kmeans100-50f36a95.pt",
}
RELEASE_URL = "https://github.com/bshall/hubert/releases/tag/v0.2"
OURS = "content_encoder"  # key of the config in checkpoints written by softvc-train-units


class LogMelFrontEnd(nn.Module):
    """In place of the conv feature extractor (``frontend: logmel``): the Soft-VC log-mel of the padded wav, minus
    its mean over time (cepstral mean normalisation, as in ASR front ends), its 100 Hz frames stacked in pairs.
    (B, 320 N + 80 [+ r]) -> (B, N, 256), the N frames the conv stack gives."""

    def __init__(self):
        super().__init__()
        self.logmel = LogMelSpectrogram()
        self.perturb = None  # training only: (B, 128, T) log-mel -> perturbed (``units.perturb.Perturbation.voice``)
        self.mel = None  # inference: (B, S) wav -> (B, 128, T) log-mel in place of ``logmel`` (a source denoiser's)

    def forward(self, x, length=None):
        n = (x.size(-1) - 2 * PAD) // HOP
        if x.size(-1) <= MEL_PAD:  # reflect padding needs more samples than it adds
            x = F.pad(x, (0, MEL_PAD + 1 - x.size(-1)))
        mel = (self.logmel if self.mel is None else self.mel)(x)  # (B, 128, floor((320 N + 80) / 160) = 2N)
        mel = mel[..., : 2 * n]
        if self.training and self.perturb is not None:
            mel = self.perturb(mel)
        mel = mel - mel.mean(-1, keepdim=True)  # mean normalisation over time: less of the voice and channel
        return mel.transpose(1, 2).reshape(x.size(0), n, 2 * N_MELS), None


FRONT_ENDS = ("conv", "logmel")


class ContentEncoder(nn.Module):
    """Backbone (B, S) wav -> (B, N, D) features; ``proj`` -> (B, N, 256) soft units; cosine logits (B, N, K).

    ``backbone_config``: ``torchaudio.models.wav2vec2_model`` arguments, and ``frontend``: "conv" (HuBERT's conv
    feature extractor, the default) or "logmel" (``LogMelFrontEnd``; the last conv layer of the config must then
    have 256 channels, the stacked mel frames).
    """

    def __init__(self, backbone_config, num_labels=100):
        super().__init__()
        self.backbone_config = dict(backbone_config)
        config = dict(backbone_config)
        frontend = config.pop("frontend", "conv")
        if frontend not in FRONT_ENDS:
            raise ValueError(f"unknown content-encoder frontend {frontend!r} (choose {' or '.join(FRONT_ENDS)})")
        self.backbone = torchaudio.models.wav2vec2_model(**config)
        if frontend == "logmel":
            self.backbone.feature_extractor = LogMelFrontEnd()
        dim = backbone_config["encoder_embed_dim"]
        self.proj = nn.Linear(dim, UNIT_DIM)
        self.label_embedding = nn.Embedding(num_labels, UNIT_DIM)

    @property
    def num_layers(self):
        return self.backbone_config["encoder_num_layers"]

    def encode(self, wavs, layer=None, chunk=CHUNK, context=CONTEXT):
        """(B, S) 16 kHz -> (B, N = floor(S / 320), D): output of transformer ``layer`` (1-based; None = last).

        N <= ``chunk``: one pass over the whole wav. Longer: frames ``[i, i + chunk)`` come from a pass over the
        audio of frames ``[i - context, i + chunk + context)`` (clipped to the wav), keeping memory bounded."""
        wavs = F.pad(wavs, (PAD, PAD))
        frames = (wavs.size(1) - 2 * PAD) // HOP
        chunks = []
        for start in range(0, frames, chunk):
            low, high = max(0, start - context), start + chunk + context
            end = HOP * high + 2 * PAD if high < frames else None  # the last chunk keeps the wav's trailing samples
            x, _ = self.backbone.extract_features(wavs[:, HOP * low : end], num_layers=layer)
            chunks.append(x[-1][:, start - low : start - low + chunk])
        return torch.cat(chunks, 1)

    def soft_units(self, wavs):
        """(B, S) -> (B, N, 256): ``proj`` of the last layer, the HuBERT-Soft units."""
        return self.proj(self.encode(wavs))

    def logits(self, units):
        """(B, N, 256) -> (B, N, K): cosine similarity with every label embedding, divided by 0.1."""
        return F.normalize(units, dim=-1) @ F.normalize(self.label_embedding.weight, dim=-1).T / TEMPERATURE

    def forward(self, wavs):
        """(B, S) -> logits (B, N, K) for cross-entropy against discrete units (the HuBERT-Soft objective)."""
        return self.logits(self.soft_units(wavs))

    def checkpoint(self, **extra):
        """A ``torch.load(weights_only=True)``-safe dict that ``load_content_encoder`` reads back."""
        config = {"backbone": self.backbone_config, "num_labels": self.label_embedding.num_embeddings}
        return {OURS: config, "model": {k: v.detach().cpu() for k, v in self.state_dict().items()}, **extra}


# bshall/hubert's ``Hubert``: torchaudio's HuBERT-base (post-norm, group-norm extractor), as wav2vec2_model arguments
HUBERT_BASE = dict(
    extractor_mode="group_norm",
    extractor_conv_layer_config=None,
    extractor_conv_bias=False,
    encoder_embed_dim=768,
    encoder_projection_dropout=0.1,
    encoder_pos_conv_kernel=128,
    encoder_pos_conv_groups=16,
    encoder_num_layers=12,
    encoder_num_heads=12,
    encoder_attention_dropout=0.1,
    encoder_ff_interm_features=3072,
    encoder_ff_interm_dropout=0.0,
    encoder_dropout=0.1,
    encoder_layer_norm_first=False,
    encoder_layer_drop=0.0,
    aux_num_out=None,
)


def hubert_base(num_labels=100):
    """bshall/hubert's ``Hubert``: HuBERT-base + soft head."""
    return ContentEncoder(HUBERT_BASE, num_labels)


def _rename(key):
    """Original bshall/hubert parameter name -> our name (``None`` for ``masked_spec_embed``, unused here)."""
    parts = key.split(".")
    prefix, name = parts[0], ".".join(parts[1:])
    if prefix in ("proj", "label_embedding"):
        return key
    if prefix == "masked_spec_embed":
        return None  # mask embedding of masked pretraining; never used to extract units
    if prefix == "feature_extractor":
        i = name[4] if name.startswith("conv") else "0"  # conv{i}.weight or norm0.{weight,bias}
        sub = "conv" if name.startswith("conv") else "layer_norm"
        return f"backbone.feature_extractor.conv_layers.{i}.{sub}.{parts[-1]}"
    if prefix == "feature_projection":
        return f"backbone.encoder.feature_projection.{name.replace('norm', 'layer_norm')}"
    if prefix == "positional_embedding":
        param = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
        return f"backbone.encoder.transformer.pos_conv_embed.conv.{param.get(parts[-1], parts[-1])}"
    if prefix == "norm":
        return f"backbone.encoder.transformer.layer_norm.{name}"
    if prefix == "encoder" and parts[1] == "layers":
        sub = {
            "self_attn": "attention",
            "linear1": "feed_forward.intermediate_dense",
            "linear2": "feed_forward.output_dense",
            "norm1": "layer_norm",
            "norm2": "final_layer_norm",
        }
        return f"backbone.encoder.transformer.layers.{parts[2]}.{sub.get(parts[3], parts[3])}.{'.'.join(parts[4:])}"
    raise KeyError(key)


def from_original_state_dict(state_dict, path):
    """Map an original bshall/hubert state_dict (``module.`` stripped) onto ``hubert_base`` and load it strictly."""
    mapped = {}
    try:
        for key, value in state_dict.items():
            name = _rename(key)
            if name is None:
                continue
            if name.endswith("attention.in_proj_weight") or name.endswith("attention.in_proj_bias"):
                base, kind = name.rsplit(".in_proj_", 1)
                for proj, chunk in zip("qkv", value.chunk(3)):  # nn.MultiheadAttention packs q, k, v
                    mapped[f"{base}.{proj}_proj.{kind}"] = chunk
            else:
                mapped[name] = value
    except (KeyError, IndexError, AttributeError):
        raise UserError(f"{path}: not a bshall/hubert checkpoint (unexpected parameter {key!r})") from None
    if "label_embedding.weight" not in mapped:
        raise UserError(f"{path}: not a bshall/hubert checkpoint (no label_embedding.weight)")
    model = hubert_base(num_labels=mapped["label_embedding.weight"].shape[0])
    return load_strict(model, mapped, path, "a HuBERT-base checkpoint")


def load_content_encoder(path, device="cpu"):
    """Load a content encoder in eval mode: original HuBERT-Soft/-Discrete (v0.2 or v0.1) or one of ours.

    Returns ``(model, kind)``, kind "hubert-soft", "hubert-discrete" (504 pretraining labels) or "small".
    """
    return content_encoder_from(torch_load(path), path, device)


def is_content_encoder(obj):
    """Whether a loaded checkpoint object looks like a content encoder (ours or bshall/hubert's), without building
    it: our ``content_encoder`` key, or a HuBERT state_dict (``label_embedding`` + a feature extractor)."""
    if isinstance(obj, dict) and OURS in obj:
        return True
    if isinstance(obj, dict) and "hubert" in obj:
        obj = obj["hubert"]
    keys = [k.removeprefix("module.") for k in obj] if is_state_dict(obj) else []
    return "label_embedding.weight" in keys and any(k.startswith("feature_extractor.") for k in keys)


def content_encoder_from(obj, path, device="cpu"):
    """``load_content_encoder`` on an object already read from ``path`` with ``torch_load``."""
    if isinstance(obj, dict) and OURS in obj:
        try:
            config = obj[OURS]
            model = ContentEncoder(config["backbone"], config["num_labels"])
            model.load_state_dict(obj["model"], strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            reason = str(e).splitlines()[0]
            raise UserError(f"{path}: broken content-encoder checkpoint ({reason})") from None
        kind = "small"
    else:
        if isinstance(obj, dict) and "hubert" in obj:
            obj = obj["hubert"]
        if not is_state_dict(obj):
            raise UserError(
                f"{path}: not a content-encoder checkpoint (expected bshall/hubert {PUBLISHED['soft']}/"
                f"{PUBLISHED['discrete']} or a file from softvc-train-units)"
            )
        model = from_original_state_dict(strip_prefix(obj), path)
        kind = "hubert-discrete" if model.label_embedding.num_embeddings == 504 else "hubert-soft"
    return model.eval().to(device), kind
