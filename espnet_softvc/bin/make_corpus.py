"""Build the built-in corpus (``espnet_softvc.data.corpus``) in LJSpeech layout.

python -m espnet_softvc.bin.make_corpus downloads/tiny [--num_utts N] [--voice slt] [--others rms,awb,...]
    [--multi rms,awb,...]
"""

import argparse
from collections import Counter
from pathlib import Path

from espnet_softvc.data.corpus import HELD_OUT, MULTI, OTHERS, build
from espnet_softvc.utils.errors import cli


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the built-in corpus (CMU ARCTIC prompts, flite voices).")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--num_utts", type=int, default=None, help='train + dev: the first N ARCTIC "a" prompts (default all 593)'
    )
    voices = "a flite voice (slt rms awb kal16 kal) or an espeak-ng voice (e.g. en-us)"
    parser.add_argument("--voice", default="slt", help=f"target speaker: {voices} [slt]")
    parser.add_argument("--dev_every", type=int, default=15, help="every N-th sentence goes to dev [15]")
    parser.add_argument("--others", default=",".join(OTHERS), help="held-out speakers, comma-separated ('' none)")
    parser.add_argument(
        "--multi", default=",".join(MULTI), help="voices on train prompts for the content encoder ('' none)"
    )
    parser.add_argument("--num_test", type=int, default=HELD_OUT, help=f"held-out test sentences [{HELD_OUT}]")
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs [2]")
    args = parser.parse_args(argv)
    others, multi = ([v for v in option.split(",") if v] for option in (args.others, args.multi))
    rows = build(args.out_dir, args.num_utts, args.voice, args.dev_every, others, args.num_test, args.nj, multi)
    counts = Counter(path.split("/")[1] for _, _, path, _ in rows)
    print(f"wrote {', '.join(f'{n} {s}' for s, n in counts.items())} utterances to {args.out_dir}")


if __name__ == "__main__":
    main()
