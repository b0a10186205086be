"""softvc-samples: a voice conversion samples page (source, soft and discrete conversions, mels, scores).

    softvc-samples EXP_DIR DATA_DIR --target_scp SCP --out_dir OUT [--per_speaker 2] [--sets "others realdev"]

Reads the recipe's stage-11 outputs ``EXP_DIR/softvc_<kind>/convert_<set>/{wav,score}`` and the source data dirs
``DATA_DIR/<set>``; writes ``OUT/index.html`` with its audio and images under ``OUT`` (self-contained: zip it and
open it anywhere). See ``espnet_softvc.scoring.samples``.
"""

import argparse
from pathlib import Path

import torch

from espnet_softvc.scoring.samples import write_samples
from espnet_softvc.utils.errors import cli


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exp_dir", type=Path, help="the recipe's exp dir (softvc_<kind>/convert_<set>/{wav,score})")
    parser.add_argument("data_dir", type=Path, help="directory of the source data dirs <set>/{wav.scp,utt2spk,text}")
    parser.add_argument("--target_scp", type=Path, required=True, help="Kaldi wav.scp of the target speaker")
    parser.add_argument("--target_utt", help="utterance of --target_scp shown on top [its first]")
    parser.add_argument("--out_dir", type=Path, required=True, help="page folder: index.html, audio/, mel/")
    parser.add_argument("--per_speaker", type=int, default=2, help="utterances shown per source speaker [2]")
    parser.add_argument("--sets", nargs="+", help="converted sets to show [all of EXP_DIR]")
    parser.add_argument("--title", help="page title [Soft-VC voice conversion samples]")
    parser.add_argument("--allow_pipes", action="store_true", help="run 'cmd |' entries of the wav.scp files")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    index = write_samples(
        args.exp_dir,
        args.data_dir,
        args.target_scp,
        args.out_dir,
        per_speaker=args.per_speaker,
        sets=args.sets,
        target_utt=args.target_utt,
        title=args.title,
        allow_pipes=args.allow_pipes,
    )
    print(f"samples page: {index}")


if __name__ == "__main__":
    main()
