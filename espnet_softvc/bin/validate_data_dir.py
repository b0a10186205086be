"""Check Kaldi data dirs like Kaldi's ``utils/validate_data_dir.sh``: ``wav.scp``, ``text``, ``utt2spk`` and
``spk2utt`` list the same sorted, unique utterance ids, and every audio file exists.

    python -m espnet_softvc.bin.validate_data_dir data/train [data/dev ...]
"""

import argparse
from pathlib import Path

from espnet_softvc.utils.errors import cli
from espnet_softvc.utils.kaldi_data import validate_data_dir


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dirs", type=Path, nargs="+")
    for data_dir in parser.parse_args(argv).data_dirs:
        print(f"{data_dir}: {validate_data_dir(data_dir)} utterances, ok")


if __name__ == "__main__":
    main()
