"""Split a Kaldi scp into N contiguous parts, or merge part scps into one sorted scp (atomically).

python -m espnet_softvc.bin.split_scp data/train/wav.scp data/train/split4/wav 4   # -> wav.{1..4}.scp
python -m espnet_softvc.bin.split_scp --merge dump/train/feats.scp dump/train/data/feats.*.scp
"""

import argparse
from pathlib import Path

from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import write_lines
from espnet_softvc.utils.kaldi_data import merge_scp, read_scp


def split(scp, prefix, num_parts):
    entries = list(read_scp(scp, allow_pipes=True).items())
    if num_parts > len(entries):
        raise UserError(f"{scp}: {len(entries)} utterances cannot be split into {num_parts} jobs; lower --nj")
    for part in range(num_parts):
        chunk = entries[part * len(entries) // num_parts : (part + 1) * len(entries) // num_parts]
        write_lines(Path(f"{prefix}.{part + 1}.scp"), [f"{k} {v}" for k, v in chunk])


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    if args.merge:
        merge_scp(Path(args.args[0]), [Path(p) for p in args.args[1:]])
    elif len(args.args) == 3:
        split(Path(args.args[0]), args.args[1], int(args.args[2]))
    else:
        parser.error("expected SCP PREFIX N, or --merge OUT PART...")


if __name__ == "__main__":
    main()
