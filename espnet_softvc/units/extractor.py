"""One object that turns a 16 kHz waveform into speech units, whichever encoder files the user has.

soft:     ``checkpoint`` = HuBERT-Soft (bshall/hubert v0.2/v0.1) or our small soft encoder -> (N, 256) float32
discrete: ``kmeans`` = bshall/hubert kmeans100 + ``checkpoint`` = HuBERT-Discrete (layer 7) -> (N,) int64,
          or ``kmeans`` = our offline MFCC k-means alone (no checkpoint),
          or ``checkpoint`` = our small soft encoder alone: the units it predicts (argmax of its cosine logits over
          the label embeddings, i.e. the MFCC k-means units it was trained on, from any voice)
N = floor(S / 320) for S samples at 16 kHz (50 Hz units).
"""

import functools

import numpy as np
import torch

from espnet_softvc.units.hubert import (
    DISCRETE_LAYER,
    HOP,
    PUBLISHED,
    RELEASE_URL,
    content_encoder_from,
    is_content_encoder,
    load_content_encoder,
)
from espnet_softvc.units.kmeans import MFCC_DIM, is_kmeans, kmeans_from, load_kmeans, mfcc
from espnet_softvc.utils.device import check_device
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import load_audio
from espnet_softvc.utils.torch_files import torch_load


class UnitExtractor:
    def __init__(self, kind, checkpoint=None, kmeans=None, device="cpu"):
        self.kind, self.device = kind, check_device(device)
        self.encoder = self.kmeans = self.features = None
        if kind == "soft":
            if checkpoint is None:
                raise UserError(
                    f"soft units need --checkpoint: {PUBLISHED['soft']} ({RELEASE_URL}) "
                    "or a soft encoder from softvc-train-units"
                )
            if kmeans is not None:
                raise UserError("--kmeans is only used for discrete units")
            self._soft(*load_content_encoder(checkpoint, self.device), checkpoint)
            return
        if kind != "discrete":
            raise UserError(f"unknown unit kind {kind!r} (soft or discrete)")
        if kmeans is None:
            encoder, found = load_content_encoder(checkpoint, self.device) if checkpoint is not None else (None, None)
            if found != "small":
                raise UserError(
                    f"discrete units need --kmeans: {PUBLISHED['kmeans']} ({RELEASE_URL}) "
                    "or an MFCC k-means from softvc-train-units (or --checkpoint soft_encoder.pt of softvc-train-units)"
                )
            self._predicted(encoder)
            return
        self.kmeans, self.features = load_kmeans(kmeans)
        if self.features == "mfcc":
            if checkpoint is not None:
                raise UserError(f"{kmeans}: this k-means clusters MFCCs; drop --checkpoint")
            self._check_mfcc(kmeans)
            return
        if checkpoint is None:
            raise UserError(
                f"{kmeans}: this k-means clusters HuBERT layer-{DISCRETE_LAYER} features: "
                f"give --checkpoint {PUBLISHED['discrete']}"
            )
        self._hubert_kmeans(load_content_encoder(checkpoint, self.device)[0], checkpoint, kmeans)

    @classmethod
    def from_files(cls, content_encoder, kmeans=None, device="cpu", prefer="soft"):
        """The content encoder of voice conversion, its kind read from the files (each read once):

        - ``content_encoder`` HuBERT-Soft (either release): soft units;
        - HuBERT-Discrete + ``kmeans`` = bshall/hubert's kmeans100: discrete units;
        - an MFCC k-means file of softvc-train-units alone (it is the whole encoder): discrete units;
        - a soft encoder of softvc-train-units: either kind, ``prefer`` ("soft" or "discrete") picks.
        """
        self = cls.__new__(cls)
        self.device, self.encoder, self.kmeans, self.features = check_device(device), None, None, None
        obj = torch_load(content_encoder)
        if is_kmeans(obj):
            self.kind = "discrete"
            self.kmeans, self.features = kmeans_from(obj, content_encoder)
            if self.features != "mfcc":
                raise UserError(
                    f"{content_encoder}: a k-means of HuBERT layer-{DISCRETE_LAYER} features, not a content encoder: "
                    f"give it as the k-means, with HuBERT-Discrete ({PUBLISHED['discrete']}) as the content encoder"
                )
            if kmeans is not None:
                raise UserError(
                    f"{kmeans}: {content_encoder} is an MFCC k-means, a whole discrete encoder: give no other k-means"
                )
            self._check_mfcc(content_encoder)
            return self
        if not is_content_encoder(obj):
            raise UserError(
                f"{content_encoder}: not a content encoder (expected HuBERT-Soft {PUBLISHED['soft']}, HuBERT-Discrete "
                f"{PUBLISHED['discrete']} with a k-means, or soft_encoder.pt / kmeans.pt of softvc-train-units)"
            )
        encoder, found = content_encoder_from(obj, content_encoder, self.device)
        if kmeans is None:
            if found == "hubert-discrete":
                raise UserError(
                    f"{content_encoder}: HuBERT-Discrete gives discrete units with a k-means ({PUBLISHED['kmeans']}); "
                    f"for soft units use HuBERT-Soft ({PUBLISHED['soft']})"
                )
            if found == "small" and prefer == "discrete":
                self.kind = "discrete"
                self._predicted(encoder)
                return self
            self.kind = "soft"
            self._soft(encoder, found, content_encoder)
            return self
        self.kind = "discrete"
        self.kmeans, self.features = load_kmeans(kmeans)
        if self.features == "mfcc":
            raise UserError(f"{kmeans}: this k-means clusters MFCCs: give it alone as the content encoder")
        self._hubert_kmeans(encoder, content_encoder, kmeans)
        return self

    def _soft(self, encoder, found, checkpoint):
        if found == "hubert-discrete":
            raise UserError(
                f"{checkpoint}: this is HuBERT-Discrete (504 pretraining labels); "
                f"soft units need HuBERT-Soft ({PUBLISHED['soft']})"
            )
        self.encoder = encoder

    def _predicted(self, encoder):
        self.encoder, self.features = encoder, "predicted"

    @property
    def num_units(self):
        """Discrete: the number of unit ids (k-means clusters, or label embeddings of a predicting encoder)."""
        if self.features == "predicted":
            return self.encoder.label_embedding.num_embeddings
        return self.kmeans.n_clusters if self.kmeans is not None else None

    def _check_mfcc(self, kmeans):
        width = self.kmeans.n_features_in_
        if width != MFCC_DIM:
            raise UserError(f"{kmeans}: k-means width {width} does not match the {MFCC_DIM}-dim MFCC features")

    def _hubert_kmeans(self, encoder, checkpoint, kmeans):
        self.encoder, width = encoder, self.kmeans.n_features_in_
        dim = self.encoder.backbone_config["encoder_embed_dim"]
        if self.encoder.num_layers < DISCRETE_LAYER or width != dim:
            raise UserError(
                f"{kmeans}: k-means width {width} does not match {checkpoint} "
                f"(layer-{DISCRETE_LAYER} features of width {dim}, {self.encoder.num_layers} layers)"
            )

    @torch.inference_mode()
    def __call__(self, wav, name="audio"):
        """16 kHz wav (S,) -> soft (N, 256) float32 or discrete (N,) int64 numpy units, N = floor(S / 320)."""
        if wav.numel() < HOP:
            raise UserError(f"{name}: audio too short ({wav.numel()} samples at 16 kHz, need {HOP} for one unit)")
        if self.kind == "soft":
            return self.encoder.soft_units(wav[None].to(self.device))[0].float().cpu().numpy()
        if self.features == "predicted":
            logits = self.encoder.logits(self.encoder.soft_units(wav[None].to(self.device)))
            return logits[0].argmax(-1).cpu().numpy().astype(np.int64)
        if self.features == "mfcc":
            feats = mfcc(wav)
        else:
            feats = self.encoder.encode(wav[None].to(self.device), layer=DISCRETE_LAYER)[0].float().cpu()
        return self.kmeans.predict(feats.numpy()).astype(np.int64)

    def from_file(self, path, name=None):
        """Units of an audio file (any sample rate; resampled to 16 kHz, mono); errors start with ``name``."""
        try:
            return self(load_audio(path), path)
        except UserError as e:
            raise UserError(f"{name}: {e}" if name else str(e)) from None


@functools.lru_cache(maxsize=1)
def cached_extractor(kind, checkpoint=None, kmeans=None, device="cpu"):
    """One ``UnitExtractor`` per process; workers forked by ``run_jobs`` reuse the parent's."""
    return UnitExtractor(kind, checkpoint, kmeans, device)
