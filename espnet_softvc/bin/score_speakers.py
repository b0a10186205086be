"""softvc-score-speakers: whose voice is generated speech? Similarity to several reference speakers.

    softvc-score-speakers OUT_DIR --ref SPK WAVS [--ref SPK WAVS ...] --pred LABEL SPK WAVS [--pred ...]

WAVS: a directory of ``*.wav`` or a Kaldi ``wav.scp``. ``--ref``: a reference speaker and its speech (its mean
resemblyzer embedding); ``--pred``: generated speech, a label for it and the speaker it should sound like. Writes
OUT_DIR/scores.csv, summary.json and speakers.png; see ``espnet_softvc.scoring.speakers``.
"""

import argparse
import json
from pathlib import Path

import torch

from espnet_softvc.scoring.speakers import speaker_lines, speaker_scores
from espnet_softvc.utils.errors import UserError, cli


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="where scores.csv, summary.json and speakers.png go")
    parser.add_argument("--ref", nargs=2, action="append", required=True, metavar=("SPK", "WAVS"))
    parser.add_argument("--pred", nargs=3, action="append", required=True, metavar=("LABEL", "SPK", "WAVS"))
    args = parser.parse_args(argv)
    refs = dict(args.ref)
    if len(refs) < len(args.ref):
        raise UserError("--ref: a speaker is given twice")
    torch.set_num_threads(1)
    summary = speaker_scores(refs, [(label, spk, Path(wavs)) for label, spk, wavs in args.pred], args.out_dir)
    print("\n".join(speaker_lines({str(args.out_dir): summary})))
    print(json.dumps({r["label"]: round(r["sim_intended"], 4) for r in summary["rows"]}))


if __name__ == "__main__":
    main()
