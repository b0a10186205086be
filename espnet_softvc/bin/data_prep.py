"""Kaldi data dirs (wav.scp, text, utt2spk, spk2utt) for the train and dev sets of an LJSpeech-layout corpus.

    python -m espnet_softvc.bin.data_prep CORPUS_DIR DATA_DIR [--dev_list FILE]

Split: ``wavs/train`` and ``wavs/dev`` when the corpus has them (the original acoustic-model layout, and the
built-in corpus, whose ``wavs/test``, ``wavs/others`` and ``wavs/multi`` become sets of those names too); otherwise
``wavs/*.wav`` with the ids of ``--dev_list`` (one per line) as dev, or, without a list, every ``--dev_every``-th
utterance. Text comes from ``metadata.csv`` (normalized column). Speaker = id up to its first ``-``.
"""

import argparse
from pathlib import Path

from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import write_lines
from espnet_softvc.utils.kaldi_data import validate_data_dir

SETS = ("train", "dev", "test", "others", "multi")


def read_metadata(path):
    """``{utt_id: normalized text}`` from an LJSpeech ``metadata.csv`` (``id|text|normalized``)."""
    if not path.is_file():
        raise UserError(f"{path}: metadata.csv not found")
    texts = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("|")
        if len(fields) < 2:
            raise UserError(f"{path}:{lineno}: expected 'id|text|normalized text'")
        texts[fields[0]] = " ".join(fields[-1].split())
    return texts


def split_corpus(corpus, dev_list, dev_every):
    """``{"train": {utt: wav}, "dev": {utt: wav}[, "test": ..., "others": ...]}``."""
    wav_dir = corpus / "wavs"
    if (wav_dir / "train").is_dir() and (wav_dir / "dev").is_dir():
        sets = [s for s in SETS if (wav_dir / s).is_dir()]
        return {s: {p.stem: p for p in sorted((wav_dir / s).rglob("*.wav"))} for s in sets}
    wavs = {p.stem: p for p in sorted(wav_dir.glob("*.wav"))}
    if dev_list is not None:
        dev_ids = set(Path(dev_list).read_text().split())
        unknown = sorted(dev_ids - set(wavs))
        if unknown:
            raise UserError(f"{dev_list}: {len(unknown)} ids not in {wav_dir} (first: {unknown[0]})")
    else:
        dev_ids = set(list(wavs)[dev_every - 1 :: dev_every])
        print(f"note: no --dev_list given: every {dev_every}th utterance of {wav_dir} is dev ({len(dev_ids)})")
    return {
        "train": {u: p for u, p in wavs.items() if u not in dev_ids},
        "dev": {u: p for u, p in wavs.items() if u in dev_ids},
    }


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--dev_list", type=Path, default=None, help="file of dev utterance ids")
    parser.add_argument("--dev_every", type=int, default=100)
    args = parser.parse_args(argv)
    texts = read_metadata(args.corpus_dir / "metadata.csv")
    for name, wavs in split_corpus(args.corpus_dir, args.dev_list, args.dev_every).items():
        if not wavs:
            raise UserError(f"{args.corpus_dir}: the {name} set is empty")
        missing = sorted(set(wavs) - set(texts))
        if missing:
            raise UserError(f"{args.corpus_dir / 'metadata.csv'}: no text for {missing[0]} ({len(missing)} missing)")
        out = args.data_dir / name
        utts = sorted(wavs)
        spk = {u: u.split("-")[0] for u in utts}
        write_lines(out / "wav.scp", [f"{u} {wavs[u].resolve()}" for u in utts])
        write_lines(out / "text", [f"{u} {texts[u]}" for u in utts])
        write_lines(out / "utt2spk", [f"{u} {spk[u]}" for u in utts])
        write_lines(
            out / "spk2utt", [f"{s} {' '.join(u for u in utts if spk[u] == s)}" for s in sorted(set(spk.values()))]
        )
        print(f"{out}: {validate_data_dir(out)} utterances")


if __name__ == "__main__":
    main()
