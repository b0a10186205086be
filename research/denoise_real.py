"""Denoising on real speech with real noise (issue 19): the mel-SNR table, the front-end postnet experiment, and
where denoising pays before voice conversion.

Real speech: the three speech clips of tests/data/realdev (three speakers), mixed with its recorded background noise
at 0, 5 and 10 dB by ``espnet_softvc.scoring.denoising`` (recipe stage 7's table: three random excerpts each; "clean
kept": the output for the clean clip scored against it). Improvement = mel_snr(output) - mel_snr(noisy), Soft-VC mel.

    python research/denoise_real.py mel OUT [--postnet NAME=MODEL:SOURCE ...]  # SOURCE: unprocessed|rnnoise|...
    python research/denoise_real.py pairs WAV_SCP OUT.pt [--utts 300]          # flite speech, training corruptions
    python research/denoise_real.py train OUT.pt PAIRS.pt --source deepfilternet3 [--target clean|front_end]
    python research/denoise_real.py convert OUT RECIPE_DIR [--kinds soft discrete]  # stages 5 + 7, noisy realread
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.postnet import baselines, external, noise
from espnet_softvc.postnet.model import DenoisingPostnet, denoise_loss
from espnet_softvc.scoring import judges
from espnet_softvc.scoring.denoising import CLEAN, SNRS, denoising_lines, mel_of, mixtures, real_noise_scores
from espnet_softvc.tasks.load import load_postnet
from espnet_softvc.utils.io import load_audio

REALDEV = Path(__file__).resolve().parents[1] / "tests/data/realdev"
FRONT_ENDS = tuple(external.METHODS)


def realdev():
    """(speech, noises): the realdev speech clips and its recorded noise, 16 kHz float64 waveforms."""
    speech = sorted(REALDEV.glob("speech_*.wav")) + sorted(REALDEV.glob("vctk_*.wav"))
    return [[load_audio(p).double().numpy() for p in paths] for paths in (speech, sorted(REALDEV.glob("noise_*.wav")))]


def mel_table(out_dir, postnets):
    """``scoring.denoising.real_noise_scores`` on realdev, plus the mean of RNNoise and DeepFilterNet3 and each of
    ``postnets`` ({name: (model, source method)}); writes mel.json, prints the table."""

    def extra(outs):
        more = {"mean of rnnoise and deepfilternet3 (log-mel)": (outs["rnnoise"] + outs["deepfilternet3"]) / 2}
        more.update({name: model(outs[source][None])[0] for name, (model, source) in postnets.items()})
        return more

    table = real_noise_scores(*realdev(), extra=extra)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "mel.json").write_text(json.dumps(table, indent=1))
    print("\n".join(denoising_lines({"scores": table})))


def make_pairs(wav_scp, out, utts):
    """Training corruptions (``noise.corrupt``) of the first ``utts`` utterances of a wav.scp, with the mels of the
    clean, the noisy and each front end's output on both: {"clean", "noisy", "<fe>", "<fe>_clean"} lists."""
    paths = [line.split(maxsplit=1)[1] for line in Path(wav_scp).read_text().splitlines()][:utts]
    wavs = [load_audio(p).double().numpy() for p in paths]
    pairs = {key: [] for key in ("clean", "noisy", *FRONT_ENDS, *(f"{m}_clean" for m in FRONT_ENDS))}
    for i, wav in enumerate(tqdm(wavs, desc="pairs")):
        cleaned = {m: mel_of(external.denoise(wav, 16000, m)) for m in FRONT_ENDS}
        for copy in range(2):
            noisy, _ = noise.corrupt(wav, np.random.default_rng((0, i, copy)), wavs)
            pairs["clean"].append(mel_of(wav))
            pairs["noisy"].append(mel_of(noisy))
            for m in FRONT_ENDS:
                pairs[m].append(mel_of(external.denoise(noisy, 16000, m)))
                pairs[f"{m}_clean"].append(cleaned[m])
    torch.save(pairs, out)


def train(out, pairs_file, source, target, minutes, max_log_gain, crop=192, batch=16, lr=2e-3):
    """The tiny config's conv postnet on (``source`` mel -> ``target`` mel) crops, cosine learning rate, for
    ``minutes`` of wall clock; saves a research checkpoint {"config", "model"}."""
    torch.manual_seed(0)
    pairs = torch.load(pairs_file, weights_only=True)
    inputs, targets = pairs[source], pairs["clean" if target == "clean" else f"{source}_clean"]
    config = {"arch": "conv", "body_conf": {"channels": 160}, "max_log_gain": max_log_gain}
    model = DenoisingPostnet(**config)
    optimizer = torch.optim.Adam(model.parameters(), lr)
    rng, start, step = np.random.default_rng(0), time.time(), 0
    while (elapsed := time.time() - start) < 60 * minutes:
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * elapsed / (60 * minutes)))
        x = torch.full((batch, crop, 128), baselines.LOG_MIN)
        y = x.clone()
        for b, i in enumerate(rng.integers(len(inputs), size=batch)):
            frames = min(len(inputs[i]), len(targets[i]))
            s = int(rng.integers(max(1, frames - crop + 1)))
            n = min(crop, frames - s)
            x[b, :n], y[b, :n] = inputs[i][s : s + n], targets[i][s : s + n]
        loss, stats = denoise_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5)
        optimizer.step()
        step += 1
        if step % 200 == 0:
            print(f"step {step}: train mel-SNR {float(stats['mel_snr']):.2f} dB", flush=True)
    torch.save({"config": config, "model": model.state_dict()}, out)


@torch.no_grad()
def convert_table(out_dir, recipe_dir, sets=("realread",), kinds=("soft",)):
    """Voice conversion of noisy real speech (issue 33): each wav of the recipe's data/<set> (transcribed: realread)
    clean and in one excerpt of data/realdev_noise per SNR, converted with no / RNNoise / DeepFilterNet3 / fusion
    (stage 7's exp/denoiser_softvc) cleaning of the source. Per unit kind, denoiser and SNR: pocketsphinx WER against
    the text, units' agreement with the clean source's (discrete: same id; soft: cosine), resemblyzer similarity to
    the target voice (stage 11's reference utterances), DNSMOS OVRL. Writes convert.json, prints the table."""
    from espnet_softvc.bin.vc_inference import Speech2Speech
    from espnet_softvc.postnet.pairs import read_wavs
    from espnet_softvc.utils.kaldi_data import read_scp

    exp, data = Path(recipe_dir) / "exp", Path(recipe_dir) / "data"
    refs = read_scp(exp / "convert_target_wav.scp").values()
    target = judges.mean_embedding([judges.speaker_embedding(load_audio(p).numpy()) for p in refs])
    noises = list(read_wavs(data / "realdev_noise/wav.scp").values())
    denoiser = exp / "denoiser_softvc/valid.loss.ave.pth"
    heard = {}  # (kind, denoiser, condition) -> [(text, hypothesis, agreement, similarity, dnsmos)]
    for dset in sets:
        speech, texts = read_wavs(data / dset / "wav.scp"), read_scp(data / dset / "text")
        for kind in kinds:
            model = exp / f"softvc_{kind}"
            files = (model / "config.yaml", model / "valid.loss.ave.pth", exp / "units/soft_encoder.pt")
            converters = {fe: Speech2Speech(*files, denoise=None if fe == "none" else fe, denoiser_file=denoiser)
                          for fe in ("none", *FRONT_ENDS, "fusion")}  # fmt: skip
            clean_units = {}
            mixed = list(mixtures(list(speech.values()), noises, excerpts=1))
            for u, condition, clean, noisy in tqdm(mixed, desc=f"{dset} {kind}"):
                utt = list(speech)[u]
                if condition == CLEAN:
                    clean_units[u] = converters["none"].convert_16k(torch.as_tensor(clean).float())["units"]
                for fe, s2s in converters.items():
                    out = s2s.convert_16k(torch.as_tensor(noisy).float(), utt)
                    units, ref = out["units"], clean_units[u]
                    same = (units == ref).float() if kind == "discrete" else torch.cosine_similarity(units, ref, -1)
                    wav = out["wav"].numpy()
                    similarity = float(judges.speaker_embedding(wav) @ target)
                    mos = judges.dnsmos(wav)["dnsmos_ovrl"]
                    score = (texts[utt], judges.transcribe(wav), float(same.mean()), similarity, mos)
                    heard.setdefault((kind, fe, condition), []).append(score)
    rows = []
    for (kind, fe, condition), scores in heard.items():
        texts, hyps, agree, sim, mos = zip(*scores)
        rows.append(dict(kind=kind, source_denoiser=fe, condition=condition, n=len(scores),
                         wer=judges.error_rates(texts, hyps)[0], units_vs_clean=float(np.mean(agree)),
                         similarity=float(np.mean(sim)), dnsmos=float(np.mean(mos))))  # fmt: skip
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "convert.json").write_text(json.dumps(rows, indent=1))
    conditions = [CLEAN, *map(str, SNRS)]
    print("| units | source denoiser | WER % (clean / 0 / 5 / 10 dB) | units vs clean source (0 / 5 / 10 dB) | "
          "similarity to target | DNSMOS |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for kind in kinds:
        for fe in ("none", *FRONT_ENDS, "fusion"):
            row = {r["condition"]: r for r in rows if r["kind"] == kind and r["source_denoiser"] == fe}
            wer = " / ".join(f"{row[c]['wer']:.1f}" for c in conditions)
            agree = " / ".join(f"{row[c]['units_vs_clean']:.3f}" for c in conditions[1:])
            noisy = [row[c] for c in conditions[1:]]
            sim, mos = (np.mean([r[k] for r in noisy]) for k in ("similarity", "dnsmos"))
            print(f"| {kind} | {fe} | {wer} | {agree} | {sim:.3f} | {mos:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("mel")
    p.add_argument("out_dir")
    p.add_argument("--postnet", action="append", default=[], help="NAME=MODEL:SOURCE (model file or checkpoint)")
    p = sub.add_parser("pairs")
    p.add_argument("wav_scp")
    p.add_argument("out")
    p.add_argument("--utts", type=int, default=300)
    p = sub.add_parser("train")
    p.add_argument("out")
    p.add_argument("pairs")
    p.add_argument("--source", default="deepfilternet3", choices=("noisy", *FRONT_ENDS))  # a pairs key
    p.add_argument("--target", default="clean", choices=("clean", "front_end"))
    p.add_argument("--minutes", type=float, default=6.0)
    p.add_argument("--max_log_gain", type=float, default=0.5)
    p = sub.add_parser("convert")
    p.add_argument("out_dir")
    p.add_argument("recipe_dir")
    p.add_argument("--kinds", nargs="+", default=["soft"], choices=("soft", "discrete"))
    args = parser.parse_args()
    if args.mode == "mel":
        postnets = {}
        for spec in args.postnet:
            name, rest = spec.split("=", 1)
            path, source = rest.rsplit(":", 1)
            postnets[name] = (load_postnet(path), source)
        mel_table(args.out_dir, postnets)
    elif args.mode == "pairs":
        make_pairs(args.wav_scp, args.out, args.utts)
    elif args.mode == "train":
        train(args.out, args.pairs, args.source, args.target, args.minutes, args.max_log_gain)
    else:
        convert_table(args.out_dir, args.recipe_dir, kinds=args.kinds)


if __name__ == "__main__":
    main()
