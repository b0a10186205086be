"""One object that turns a 16 kHz waveform into speech units, whichever encoder files the user has.

soft:     ``checkpoint`` = HuBERT-Soft (bshall/hubert v0.2/v0.1) or our small soft encoder -> (N, 256) float32
discrete: ``kmeans`` = bshall/hubert kmeans100 + ``checkpoint`` = HuBERT-Discrete (layer 7) -> (N,) int64,
          or ``kmeans`` = our offline MFCC k-means alone (no checkpoint)
N = floor(S / 320) for S samples at 16 kHz (50 Hz units).
"""

import functools

import numpy as np
import torch

from espnet_softvc.units.hubert import DISCRETE_LAYER, HOP, PUBLISHED, RELEASE_URL, load_content_encoder
from espnet_softvc.units.kmeans import MFCC_DIM, load_kmeans, mfcc
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import load_audio


class UnitExtractor:
    def __init__(self, kind, checkpoint=None, kmeans=None, device="cpu"):
        self.kind, self.device = kind, torch.device(device)
        self.encoder = self.kmeans = None
        if kind == "soft":
            if checkpoint is None:
                raise UserError(
                    f"soft units need --checkpoint: {PUBLISHED['soft']} ({RELEASE_URL}) "
                    "or a soft encoder from softvc-train-units"
                )
            if kmeans is not None:
                raise UserError("--kmeans is only used for discrete units")
            self.encoder, found = load_content_encoder(checkpoint, self.device)
            if found == "hubert-discrete":
                raise UserError(
                    f"{checkpoint}: this is HuBERT-Discrete (504 pretraining labels); "
                    f"soft units need HuBERT-Soft ({PUBLISHED['soft']})"
                )
            return
        if kind != "discrete":
            raise UserError(f"unknown unit kind {kind!r} (soft or discrete)")
        if kmeans is None:
            raise UserError(
                f"discrete units need --kmeans: {PUBLISHED['kmeans']} ({RELEASE_URL}) "
                "or an MFCC k-means from softvc-train-units"
            )
        self.kmeans, self.features = load_kmeans(kmeans)
        width = self.kmeans.n_features_in_
        if self.features == "mfcc":
            if checkpoint is not None:
                raise UserError(f"{kmeans}: this k-means clusters MFCCs; drop --checkpoint")
            if width != MFCC_DIM:
                raise UserError(f"{kmeans}: k-means width {width} does not match the {MFCC_DIM}-dim MFCC features")
            return
        if checkpoint is None:
            raise UserError(
                f"{kmeans}: this k-means clusters HuBERT layer-{DISCRETE_LAYER} features: "
                f"give --checkpoint {PUBLISHED['discrete']}"
            )
        self.encoder, _ = load_content_encoder(checkpoint, self.device)
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
