# shellcheck shell=bash
# shellcheck disable=SC2034  # read by local/data.sh
# Where the corpora live (ESPnet's db.sh), read by local/data.sh: it downloads or makes a corpus there when it is
# missing. Point a variable at an existing copy (e.g. LJSPEECH=/data/corpora) to use it in place.
LJSPEECH=downloads  # LJSpeech 1.1: $LJSPEECH/LJSpeech-1.1/{metadata.csv,wavs/}
TINY=downloads/tiny # the built-in tiny corpus (LJSpeech layout), made by espnet_softvc.bin.make_corpus
# Real recordings (tests/data/realdev of this repository: two VCTK speakers, a freesound speaker): their speech clips
# become data/realdev for the tiny corpus, converted into the target voice in stage 11
REALDEV=${REALDEV:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../tests/data/realdev}
# Real read speech with transcripts that nothing here trains on (Debian's pocketsphinx-testdata: 5 LibriVox
# sentences of one reader, 5 spoken card names): data/realread for the tiny corpus, converted in stage 11
PSTEST=${PSTEST:-/usr/share/pocketsphinx/test/data}
