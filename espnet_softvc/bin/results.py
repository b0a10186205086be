"""softvc-results: score every model variation of a recipe and write the results table.

    python -m espnet_softvc.bin.results exp dump --set dev --train_set train --corpus tiny

See ``espnet_softvc.scoring.results`` for what is read and written.
"""

import argparse
from pathlib import Path

import torch

from espnet_softvc.scoring.results import write_results
from espnet_softvc.scoring.wav_judging import Judging
from espnet_softvc.utils.errors import UserError, cli


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Write RESULTS.md / results.csv / figures of all model variations.")
    parser.add_argument("exp_dir", help="dir of ESPnet model dirs exp/<tag>/ with decode_<set>*/ inside")
    parser.add_argument("ref_dir", help="dump dir with the ground-truth <set>/feats.scp (raw Soft-VC log-mels)")
    parser.add_argument("--set", default="dev", dest="eval_set", help="evaluation set [dev]")
    parser.add_argument("--train_set", default="train", help="training set (for decode_<train_set>_tf) [train]")
    parser.add_argument("--out_dir", help="where RESULTS.md, results.csv and the PNGs go [exp_dir]")
    parser.add_argument("--corpus", default="", help="corpus name for the header")
    parser.add_argument("--tags", nargs="+", help="only these exp/<tag> dirs, in this order [all, Soft-VC first]")
    parser.add_argument("--plot_utts", type=int, default=2, help="dev utterances to plot [2]")
    parser.add_argument(
        "--maxlenratio",
        type=float,
        default=3.0,
        help="--maxlenratio of the free-running decodes, to count utterances that hit it [3.0]",
    )
    parser.add_argument("--text", type=Path, help="Kaldi text of the set: judge every row (WER, similarity, DNSMOS)")
    parser.add_argument("--wav_scp", type=Path, help="Kaldi wav.scp of the set: ground truth and reference speaker")
    parser.add_argument("--vocoder_file", help="also a resynthesis row through this vocoder (HiFi-GAN .pt, PWG .pkl)")
    parser.add_argument("--nj", type=int, default=1, help="processes judging the utterances at once [1]")
    args = parser.parse_args(argv)
    args.out_dir = args.out_dir or args.exp_dir
    judging = None
    if (args.text is None) != (args.wav_scp is None):
        raise UserError("--text and --wav_scp go together (the judges need both)")
    if args.text is not None:
        judging = Judging(args.text, args.wav_scp, Path(args.exp_dir) / "reference", args.vocoder_file, args.nj)
    torch.set_num_threads(1)
    rows = write_results(
        args.exp_dir,
        args.ref_dir,
        args.out_dir,
        args.eval_set,
        args.train_set,
        args.corpus,
        args.tags,
        args.plot_utts,
        args.maxlenratio,
        judging,
    )
    print(f"wrote {Path(args.out_dir) / 'RESULTS.md'} ({len(rows)} rows), results.csv and figures")


if __name__ == "__main__":
    main()
