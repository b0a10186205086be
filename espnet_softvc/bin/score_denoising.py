"""Denoising on real speech with recorded noise: ours next to RNNoise and DeepFilterNet3 (recipe stage 7).

    python -m espnet_softvc.bin.score_denoising SPEECH NOISE OUT_DIR [--model_file M --train_config C]
        [--judge [--text TEXT] [--vocoder V]]

SPEECH, NOISE: a directory of ``*.wav`` or a Kaldi ``wav.scp`` (any rate). Writes OUT_DIR/summary.json (scores,
counts) and prints the table; ``espnet_softvc.scoring.denoising`` says what is measured. ``--judge`` adds what the
outside judges hear (pocketsphinx WER, against TEXT or else the ASR's transcript of the clean speech; DNSMOS).
"""

import argparse
import json
from pathlib import Path

import torch

from espnet_softvc.postnet.pairs import read_wavs
from espnet_softvc.scoring.denoising import SNRS, denoising_lines, judged_lines, judged_scores, real_noise_scores
from espnet_softvc.tasks.load import load_postnet
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path
from espnet_softvc.utils.kaldi_data import read_scp
from espnet_softvc.vocoders import load_vocoder


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("speech", type=Path, help="clean real speech: wav directory or wav.scp")
    parser.add_argument("noise", type=Path, help="recorded noise: wav directory or wav.scp")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model_file", type=Path, help="our denoiser (ESPnet model file or research checkpoint)")
    parser.add_argument("--train_config", type=Path, help="config.yaml of an ESPnet --model_file")
    parser.add_argument("--excerpts", type=int, default=3, help="noise excerpts per speech wav and SNR")
    parser.add_argument("--snrs", type=float, nargs="+", default=list(SNRS))
    parser.add_argument("--judge", action="store_true", help="also WER and DNSMOS of what a listener hears")
    parser.add_argument("--text", type=Path, help="--judge: Kaldi text of SPEECH (default: the ASR's transcripts)")
    parser.add_argument("--vocoder", type=Path, help="--judge: vocoder of the mel outputs (default Griffin-Lim)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    speech, noises = read_wavs(args.speech), list(read_wavs(args.noise).values())
    texts = read_scp(args.text) if args.text is not None else None
    missing = [u for u in speech if texts is not None and u not in texts]
    if missing:
        raise UserError(f"{args.text}: no transcript of {missing[0]} ({len(missing)} of {len(speech)} missing)")
    for source, wavs in ((args.speech, speech), (args.noise, noises)):
        if not wavs:
            raise UserError(f"{source}: no wavs")
    postnet = load_postnet(args.model_file, args.train_config) if args.model_file is not None else None
    snrs = [int(s) if float(s).is_integer() else s for s in args.snrs]
    scores = real_noise_scores(list(speech.values()), noises, postnet, snrs, args.excerpts)
    summary = {"scores": scores, "n_speech": len(speech), "n_noises": len(noises), "excerpts": args.excerpts}
    if args.judge:
        vocoder = load_vocoder(args.vocoder) if args.vocoder is not None else None
        refs = [texts[u] for u in speech] if texts is not None else None
        summary["judged"] = judged_scores(list(speech.values()), noises, postnet, refs, vocoder, snrs)
        summary["reference_text"] = "text" if texts is not None else "asr"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out_dir / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1))
    print("\n".join(denoising_lines(summary)))
    if args.judge:
        print("\nWER % / DNSMOS OVRL\n" + "\n".join(judged_lines(summary["judged"])))


if __name__ == "__main__":
    main()
