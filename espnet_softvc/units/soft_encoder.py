"""A small soft content encoder trained here the HuBERT-Soft way (bshall/hubert train.py, without masking).

Backbone = torchaudio wav2vec2/HuBERT blocks at small width: 3 post-norm transformer layers of 192 over either
Soft-VC log-mel frames stacked in pairs at the unit rate (``frontend="logmel"``, 1.3 M parameters; the recipe's) or
HuBERT's 7-conv front end on the wav (``"conv"``, same kernels and strides, 64 -> 192 channels; 1.6 M parameters);
then ``proj`` -> 256 and cosine-similarity logits against ``label_embedding`` / 0.1, trained with cross-entropy on
every frame against discrete units (our MFCC k-means labels). Optimiser as the original (AdamW betas (0.9, 0.98),
eps 1e-6, weight decay 1e-2, clip 10) with a higher learning rate and a short warm-up: it starts from scratch instead
of fine-tuning HuBERT-Discrete. Batches are random crops aligned to the 320-sample unit frames.
Why log-mels: from 30 minutes of speech the conv front end learns slowly (built-in corpus with its other voices,
dev accuracy 56 % after 1000 steps at lr 2e-3), the log-mel one fast (61 / 67 / 71 / 76 % after 250 / 500 / 750 /
1000 steps, about 2.5 min on one CPU core; 2026-11-30).
"""

import copy
import logging
import random

import torch
import torch.nn.functional as F
from tqdm import tqdm

from espnet_softvc.units.hubert import HOP, HUBERT_BASE, ContentEncoder

SMALL_BACKBONE = {  # HuBERT-base's blocks at small size
    **HUBERT_BASE,
    "extractor_conv_layer_config": [
        [64, 10, 5],
        [64, 3, 2],
        [128, 3, 2],
        [128, 3, 2],
        [192, 3, 2],
        [192, 2, 2],
        [192, 2, 2],
    ],
    "encoder_embed_dim": 192,
    "encoder_pos_conv_kernel": 32,
    "encoder_pos_conv_groups": 8,
    "encoder_num_layers": 3,
    "encoder_num_heads": 4,
    "encoder_ff_interm_features": 512,
}
SMALL_LOGMEL = {**SMALL_BACKBONE, "frontend": "logmel", "extractor_conv_layer_config": [[256, 400, 320]]}
BACKBONES = {"conv": SMALL_BACKBONE, "logmel": SMALL_LOGMEL}


def _batch(wavs, labels, batch_size, segment, rng):
    """Random crops aligned to 320-sample frames: wavs (B, 320 L), labels (B, L), L <= ``segment`` frames."""
    picks = rng.sample(range(len(wavs)), min(batch_size, len(wavs)))
    length = min(segment, *(len(labels[i]) for i in picks))
    starts = [rng.randint(0, len(labels[i]) - length) for i in picks]
    x = torch.stack([wavs[i][s * HOP : (s + length) * HOP] for i, s in zip(picks, starts)])
    y = torch.stack([labels[i][s : s + length] for i, s in zip(picks, starts)])
    return x, y


@torch.no_grad()
def evaluate(model, wavs, labels):
    """Mean cross-entropy and accuracy over whole utterances (one at a time, eval mode)."""
    model.eval()
    losses, correct, total = [], 0, 0
    for wav, label in zip(wavs, labels):
        logits = model(wav[None])[0]
        losses.append(F.cross_entropy(logits, label).item())
        correct += (logits.argmax(-1) == label).sum().item()
        total += len(label)
    model.train()
    return sum(losses) / len(losses), correct / total


def train_soft_encoder(
    wavs,
    labels,
    num_labels=100,
    dev=None,
    steps=400,
    batch_size=8,
    segment=50,
    lr=5e-4,
    warmup=100,
    valid_interval=100,
    seed=0,
    frontend="conv",
    perturb=None,
):
    """Train a small ``ContentEncoder`` to predict ``labels`` from ``wavs``; return it (best on dev) and the log.

    wavs: list of 16 kHz (S_i,) tensors; labels: list of (floor(S_i / 320),) int64 tensors in 0..num_labels-1;
    dev: optional (wavs, labels) scored every ``valid_interval`` steps. Log: dicts with step, loss, (dev) metrics.
    perturb: a ``units.perturb.Perturbation``: each batch's channel is changed, and (log-mel front end) its voice.
    """
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = ContentEncoder(BACKBONES[frontend], num_labels)
    if perturb is not None and frontend == "logmel":
        model.backbone.feature_extractor.perturb = perturb.voice
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    log, best, best_loss = [], None, float("inf")
    model.train()
    for step in tqdm(range(1, steps + 1), desc="soft encoder"):
        x, y = _batch(wavs, labels, batch_size, segment, rng)
        if perturb is not None:
            x = perturb.channel(x)
        loss = F.cross_entropy(model(x).transpose(1, 2), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        scheduler.step()
        entry = {"step": step, "loss": loss.item()}
        if dev is not None and (step % valid_interval == 0 or step == steps):
            entry["dev_loss"], entry["dev_accuracy"] = evaluate(model, *dev)
            logging.info("step %d: train loss %.3f, dev loss %.3f, dev accuracy %.3f", step, *list(entry.values())[1:])
            if entry["dev_loss"] < best_loss:
                best, best_loss = copy.deepcopy(model.state_dict()), entry["dev_loss"]
        log.append(entry)
    if best is not None:
        model.load_state_dict(best)
    if frontend == "logmel":
        model.backbone.feature_extractor.perturb = None
    return model.eval(), log
