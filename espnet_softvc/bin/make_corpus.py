"""Build the built-in tiny corpus (``espnet_softvc.data.corpus``) in LJSpeech layout.

python -m espnet_softvc.bin.make_corpus downloads/tiny [--num_utts N] [--voice VOICE]
"""

import argparse
from pathlib import Path

from espnet_softvc.data.corpus import build
from espnet_softvc.utils.errors import cli


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the tiny espeak-ng corpus in LJSpeech layout.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--num_utts", type=int, default=None, help="first N sentences only (default all)")
    parser.add_argument("--voice", default="en-us")
    args = parser.parse_args(argv)
    rows = build(args.out_dir, args.num_utts, args.voice)
    n_dev = sum(split == "dev" for *_, split in rows)
    print(f"wrote {len(rows) - n_dev} train and {n_dev} dev utterances to {args.out_dir}")


if __name__ == "__main__":
    main()
