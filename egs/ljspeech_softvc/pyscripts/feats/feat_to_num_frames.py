#!/usr/bin/env python3
"""Frames of every matrix of a Kaldi feats.scp: one ``utt_id T`` line each (Kaldi's ``feat-to-len``; ESPnet's
``pyscripts/feats/feat-to-shape.py`` writes ``T,D``). Both live in Kaldi / ESPnet checkouts, not in the espnet wheel.

    python pyscripts/feats/feat_to_num_frames.py dump/org/train/feats.scp dump/org/train/utt2num_frames
"""

import argparse

import kaldiio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("feats_scp")
    parser.add_argument("out", help="utt2num_frames file to write")
    args = parser.parse_args(argv)
    with open(args.out, "w", encoding="utf-8") as out:
        for utt, mat in kaldiio.load_scp_sequential(args.feats_scp):
            out.write(f"{utt} {mat.shape[0]}\n")


if __name__ == "__main__":
    main()
