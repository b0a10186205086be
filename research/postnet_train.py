"""Plain-PyTorch research trainer for the denoising postnet (the recipe trains it through ESPnet's Trainer).

Noisy/clean mel pairs are made on the fly from 16 kHz training speech (``noise.corrupt``, seeded per step);
optional acoustic-model pairs (``--am_pairs``: an .npz of ``gen_<id>`` / ``ref_<id>`` (T, 128) arrays) are mixed
in. Model selection uses dev utterances corrupted with *training* noise types only.

    python research/postnet_train.py CORPUS_DIR OUT.pt --arch unet --minutes 5
"""

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.feats.log_mel import LogMelSpectrogram
from espnet_softvc.postnet import noise
from espnet_softvc.postnet.baselines import LOG_MIN
from espnet_softvc.postnet.model import DenoisingPostnet, denoise_loss
from espnet_softvc.tasks.load import load_postnet
from espnet_softvc.utils.errors import cli
from espnet_softvc.utils.io import atomic_path, find_files, load_audio
from espnet_softvc.utils.shapes import HOP


def load_split(corpus, split):
    """16 kHz float64 waveforms of ``corpus/wavs/<split>/*.wav``, sorted by name."""
    return [load_audio(p).double().numpy() for p in find_files(Path(corpus) / "wavs" / split, ".wav")]


def _crop(mel, start, frames):
    """(T, 128) -> (frames, 128) from ``start``, padded with the log floor."""
    mel = mel[start : start + frames]
    return np.pad(mel, ((0, frames - len(mel)), (0, 0)), constant_values=LOG_MIN)


def noisy_batch(rng, speech, babble_pool, batch_size, seconds, logmel, am_pairs=(), p_am=0.0):
    """(noisy, clean) log-mels (B, T, 128) of random crops; a ``p_am`` share comes from ``am_pairs``."""
    samples = int(seconds * noise.SAMPLE_RATE)
    noisy, clean = [], []
    for _ in range(batch_size):
        if am_pairs and rng.random() < p_am:
            gen, ref = am_pairs[rng.integers(len(am_pairs))]
            frames = samples // HOP
            start = rng.integers(max(1, len(ref) - frames + 1))
            noisy.append(_crop(gen, start, frames))
            clean.append(_crop(ref, start, frames))
            continue
        wav = speech[rng.integers(len(speech))]
        start = rng.integers(max(1, wav.size - samples + 1))
        wav = np.pad(wav[start : start + samples], (0, max(0, samples - wav.size))) * 10 ** rng.uniform(-0.5, 0.5)
        corrupted, _ = noise.corrupt(wav, rng, babble_pool)
        with torch.no_grad():
            noisy.append(logmel(torch.as_tensor(corrupted, dtype=torch.float32)).T.numpy())
            clean.append(logmel(torch.as_tensor(wav, dtype=torch.float32)).T.numpy())
    return torch.as_tensor(np.stack(noisy)), torch.as_tensor(np.stack(clean))


def validation_set(dev, babble_pool, logmel, seed=1234):
    """Fixed (noisy, clean) mel pairs: every dev utterance with each training noise at 0, 5 and 10 dB."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i, wav in enumerate(dev):
        for kind in noise.TRAIN_NOISES:
            n = noise.train_noise(kind, wav.size, rng, babble_pool)
            noisy = noise.mix(wav, n, (0, 5, 10)[i % 3])
            pairs.append(tuple(logmel(torch.as_tensor(x, dtype=torch.float32)).T for x in (noisy, wav)))
    return pairs


@torch.no_grad()
def validate(model, pairs):
    """Mean mel-SNR improvement (dB) of ``model`` on ``pairs``."""
    model.eval()
    gains = []
    for noisy, clean in pairs:
        _, after = denoise_loss(model(noisy[None]), clean[None])
        _, before = denoise_loss(noisy[None], clean[None])
        gains.append(float(after["mel_snr"] - before["mel_snr"]))
    model.train()
    return float(np.mean(gains))


def train(
    corpus,
    out,
    arch="unet",
    body_conf=None,
    minutes=5.0,
    batch_size=16,
    seconds=2.0,
    lr=2e-3,
    l1_weight=0.1,
    seed=0,
    am_pairs=(),
    p_am=0.0,
    valid_every=50,
    init=None,
):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    logmel = LogMelSpectrogram()
    speech, dev = load_split(corpus, "train"), load_split(corpus, "dev")
    pairs = validation_set(dev, speech, logmel)
    model = DenoisingPostnet(arch, body_conf) if init is None else load_postnet(init).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    best, step, start, history = -np.inf, 0, time.time(), []
    with tqdm(desc=f"postnet {arch}") as bar:
        while (elapsed := (time.time() - start) / (minutes * 60)) < 1:
            for group in optimizer.param_groups:  # cosine decay over the time budget
                group["lr"] = lr * (0.02 + 0.49 * (1 + math.cos(math.pi * elapsed)))
            noisy, clean = noisy_batch(rng, speech, speech, batch_size, seconds, logmel, am_pairs, p_am)
            loss, stats = denoise_loss(model(noisy), clean, l1_weight=l1_weight)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            step += 1
            bar.update()
            if step % valid_every == 0:
                gain = validate(model, pairs)
                history.append((step, loss.item(), gain))
                bar.set_postfix(loss=f"{loss.item():.2f}", valid_gain=f"{gain:.2f}")
                if gain > best:
                    best = gain
                    with atomic_path(out) as tmp:
                        torch.save(
                            {
                                "model": model.state_dict(),
                                "config": {"arch": arch, "body_conf": body_conf or {}},
                                "valid_gain": gain,
                                "step": step,
                            },
                            tmp,
                        )
    return best, step, history


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the denoising postnet on synthetic noisy speech.")
    parser.add_argument("corpus", type=Path, help="LJSpeech-layout corpus with wavs/train and wavs/dev")
    parser.add_argument("out", type=Path, help="output .pt (best validation model)")
    parser.add_argument("--arch", default="unet", choices=["conv", "unet"])
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--l1_weight", type=float, default=0.1)
    parser.add_argument("--am_pairs", type=Path, default=None)
    parser.add_argument("--p_am", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--init", type=Path, default=None, help="start from this checkpoint (same arch)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    am_pairs = ()
    if args.am_pairs:
        data = np.load(args.am_pairs)
        am_pairs = [(data[k], data["ref_" + k[4:]]) for k in data.files if k.startswith("gen_")]
    body_conf = {"channels": args.channels} if args.channels else None
    best, steps, history = train(
        args.corpus,
        args.out,
        args.arch,
        body_conf,
        args.minutes,
        args.batch_size,
        lr=args.lr,
        l1_weight=args.l1_weight,
        am_pairs=am_pairs,
        p_am=args.p_am if am_pairs else 0.0,
        init=args.init,
    )
    print(f"{args.arch}: {steps} steps, best valid mel-SNR gain {best:.2f} dB (training noise types)")
    for row in history:
        print("step {} loss {:.3f} valid_gain {:.2f}".format(*row))


if __name__ == "__main__":
    main()
