"""Denoising on real speech with recorded noise: ours next to RNNoise and DeepFilterNet3 (recipe stage 7).

    python -m espnet_softvc.bin.score_denoising SPEECH NOISE OUT_DIR [--model_file M --train_config C]

SPEECH, NOISE: a directory of ``*.wav`` or a Kaldi ``wav.scp`` (any rate). Writes OUT_DIR/summary.json (scores,
counts) and prints the table; ``espnet_softvc.scoring.denoising`` says what is measured.
"""

import argparse
import json
from pathlib import Path

import torch

from espnet_softvc.postnet.pairs import read_wavs
from espnet_softvc.scoring.denoising import SNRS, denoising_lines, real_noise_scores
from espnet_softvc.tasks.load import load_postnet
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path


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
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    speech, noises = (list(read_wavs(source).values()) for source in (args.speech, args.noise))
    for source, wavs in ((args.speech, speech), (args.noise, noises)):
        if not wavs:
            raise UserError(f"{source}: no wavs")
    postnet = load_postnet(args.model_file, args.train_config) if args.model_file is not None else None
    snrs = [int(s) if float(s).is_integer() else s for s in args.snrs]
    scores = real_noise_scores(speech, noises, postnet, snrs, args.excerpts)
    summary = {"scores": scores, "n_speech": len(speech), "n_noises": len(noises), "excerpts": args.excerpts}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out_dir / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1))
    print("\n".join(denoising_lines(summary)))


if __name__ == "__main__":
    main()
