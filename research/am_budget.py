"""How intelligible does the Soft-VC acoustic model get in a CPU time budget? (research for the recipe's tiny configs)

Trains ``AcousticModel`` with the paper's loss (teacher-forced L1, padding masked) on units of the built-in corpus for
``--minutes``, and every ``--eval_every`` minutes decodes dev free-running, vocodes it with Griffin-Lim and scores it
with pocketsphinx (WER) -- the outside judge of the recipe. Prints a line per evaluation.

    python research/am_budget.py UNITS_DIR MELS_DIR TEXT --kind soft --minutes 8 --hidden 384 --channels 256
"""

import argparse
import time
from pathlib import Path

import kaldiio
import numpy as np
import torch
import torch.nn.functional as F

from espnet_softvc.scoring import judges
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.utils.kaldi_data import read_scp
from espnet_softvc.utils.shapes import valid_mask
from espnet_softvc.vocoders import GriffinLim


def load(units_scp, feats_scp):
    units, feats = kaldiio.load_scp(str(units_scp)), kaldiio.load_scp(str(feats_scp))
    return [(u, torch.from_numpy(np.asarray(units[u])), torch.from_numpy(feats[u])) for u in sorted(units)]


def batches(data, batch_size, rng):
    order = rng.permutation(len(data))
    for i in range(0, len(order) - batch_size + 1, batch_size):
        yield [data[j] for j in order[i : i + batch_size]]


def collate(items, discrete):
    n = torch.tensor([len(u) for _, u, _ in items])
    width = int(n.max())
    if discrete:
        units = torch.full((len(items), width), 100, dtype=torch.long)
    else:
        units = torch.zeros(len(items), width, 256)
    mels = torch.zeros(len(items), 2 * width, 128)
    for b, (_, u, m) in enumerate(items):
        units[b, : len(u)] = u.long() if discrete else u
        mels[b, : 2 * len(u)] = m[: 2 * len(u)]
    return units, mels, n


def evaluate(model, dev, texts, vocoder, precision="fp32"):
    refs, hyps, l1 = [], [], []
    for utt, u, m in dev:
        mel = model.generate(u.long() if model.discrete else u, precision=precision)[0]
        l1.append(float((mel - m[: len(mel)]).abs().mean()))
        hyps.append(judges.transcribe(vocoder(mel).numpy()))
        refs.append(texts[utt])
    wer, cer = judges.error_rates(refs, hyps)
    return wer, cer, float(np.mean(l1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("units_dir", type=Path, help="dump/<kind> with train/ and dev/ units.scp")
    p.add_argument("mels_dir", type=Path, help="dump with train/ and dev/ feats.scp")
    p.add_argument("text", type=Path)
    p.add_argument("--kind", default="soft")
    p.add_argument("--minutes", type=float, default=8)
    p.add_argument("--eval_every", type=float, default=2)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--channels", type=int, default=512)
    p.add_argument("--prenet", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dev_utts", type=int, default=39)
    p.add_argument("--prenet_dropout", type=float, default=0.5, help="decoder prenet dropout (paper: 0.5)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    discrete = args.kind == "discrete"
    train = load(args.units_dir / "train/units.scp", args.mels_dir / "train/feats.scp")
    dev = load(args.units_dir / "dev/units.scp", args.mels_dir / "dev/feats.scp")[: args.dev_utts]
    texts = read_scp(args.text)
    model = AcousticModel(discrete, args.prenet, args.channels, args.prenet, args.hidden)
    for layer in model.decoder.prenet.net:
        if isinstance(layer, torch.nn.Dropout):
            layer.p = args.prenet_dropout
    params = sum(q.numel() for q in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.8, 0.99), eps=1e-8, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup) if args.warmup else 1.0)
    vocoder, rng = GriffinLim(), np.random.default_rng(0)
    print(f"{params / 1e6:.2f} M parameters, {len(train)} train utterances", flush=True)
    start, train_time, step, next_eval = time.time(), 0.0, 0, args.eval_every * 60
    while train_time < args.minutes * 60:
        for items in batches(train, args.batch, rng):
            t0 = time.time()
            units, mels, n = collate(items, discrete)
            model.train()
            pred = model(units, F.pad(mels, (0, 0, 1, 0))[:, :-1])
            mask = valid_mask(2 * n, mels.size(1))[..., None]
            loss = ((pred.float() - mels).abs() * mask).sum((1, 2)) / (128 * 2 * n)
            loss = loss.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            train_time += time.time() - t0
            if train_time >= next_eval or train_time >= args.minutes * 60:
                next_eval += args.eval_every * 60
                wer, cer, l1 = evaluate(model, dev, texts, vocoder)
                print(
                    f"train {train_time / 60:5.1f} min  step {step:5d}  loss {loss.item():.3f}  "
                    f"dev free L1 {l1:.3f}  WER {wer:5.1f}  CER {cer:5.1f}  (wall {(time.time() - start) / 60:.1f})",
                    flush=True,
                )
            if train_time >= args.minutes * 60:
                break


if __name__ == "__main__":
    main()
