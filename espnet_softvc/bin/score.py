"""softvc-score: score a directory of wavs with outside judges (ASR, speaker similarity, DNSMOS, MCD, F0).

    softvc-score PRED_DIR [--text TEXT] [--ref_dir REF_DIR] [--src_dir SRC_DIR [--asr_ref]] --out_dir OUT
                 [--no_dnsmos] [--nj N]

Writes OUT/scores.csv (a row per utterance) and OUT/summary.json; see ``espnet_softvc.scoring.score``.
"""

import argparse
import json
from pathlib import Path

import torch

from espnet_softvc.scoring.score import score_dir
from espnet_softvc.utils.errors import cli


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pred_dir", type=Path, help="directory of *.wav to score (utterance id = file stem)")
    parser.add_argument("--text", type=Path, help="Kaldi text 'uttid transcript' (WER, CER)")
    parser.add_argument("--ref_dir", type=Path, help="wavs of the reference speaker (similarity); same ids: MCD, F0")
    parser.add_argument("--src_dir", type=Path, help="source wavs of converted speech, same ids (spk_sim_src)")
    parser.add_argument(
        "--asr_ref",
        action="store_true",
        help="no --text: the ASR's transcript of each source wav is the reference (written to OUT/ref_text)",
    )
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--no_dnsmos", action="store_true", help="skip DNSMOS (about 1 s per utterance)")
    parser.add_argument("--nj", type=int, default=1, help="processes scoring the utterances at once [1]")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    summary = score_dir(
        args.pred_dir,
        args.out_dir,
        args.text,
        args.ref_dir,
        dnsmos=not args.no_dnsmos,
        src_dir=args.src_dir,
        nj=args.nj,
        asr_ref=args.asr_ref,
    )
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}, indent=1))


if __name__ == "__main__":
    main()
