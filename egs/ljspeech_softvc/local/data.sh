#!/usr/bin/env bash
# Stage 1 of this recipe (called by softvc.sh): get the corpus and write the Kaldi data dirs data/{train,dev}
# ({wav.scp,text,utt2spk,spk2utt}). Corpus locations: db.sh.
#   local/data.sh [--corpus tiny|ljspeech] [--num_utts N] [--dev_list FILE]
#   --corpus tiny      the built-in tiny corpus (espnet_softvc.bin.make_corpus, LJSpeech layout), made in $TINY [default]
#            ljspeech  LJSpeech 1.1, downloaded and unpacked in $LJSPEECH unless it is there already
#   --num_utts N       tiny corpus: the first N sentences only [all]
#   --voice VOICE      tiny corpus: the target speaker (flite slt rms awb kal16, or an espeak-ng voice) [slt]
#   --dev_list FILE    LJSpeech dev utterance ids, one per line (the paper's split) [every 100th utterance]
set -euo pipefail
corpus=tiny
num_utts=""
voice=""
dev_list=""
. utils/parse_options.sh
. ./db.sh

case $corpus in
  tiny)
    corpus_dir=$TINY${voice:+_$voice}  # one folder per target voice: finished wavs are not made again
    python -m espnet_softvc.bin.make_corpus "$corpus_dir" ${num_utts:+--num_utts "$num_utts"} ${voice:+--voice "$voice"}
    ;;
  ljspeech)
    [ -z "$num_utts" ] || echo "note: --num_utts is for the tiny corpus; LJSpeech is used whole"
    corpus_dir=$LJSPEECH/LJSpeech-1.1
    if [ ! -f "$corpus_dir/metadata.csv" ]; then
      mkdir -p "$LJSPEECH"
      wget -c -O "$LJSPEECH/LJSpeech-1.1.tar.bz2" https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2
      tar -xjf "$LJSPEECH/LJSpeech-1.1.tar.bz2" -C "$LJSPEECH"
    fi
    ;;
  *)
    echo "error: --corpus must be tiny or ljspeech, got '$corpus'" >&2
    exit 1
    ;;
esac
python -m espnet_softvc.bin.data_prep "$corpus_dir" data ${dev_list:+--dev_list "$dev_list"}
if [ "$corpus" = tiny ] && [ -d "$REALDEV" ]; then  # the real speech clips (not the noise and RIR files): data/realdev
  mkdir -p data/realdev
  realdev=$(cd "$REALDEV" && pwd)
  find "$realdev" -maxdepth 1 \( -name 'speech_*.wav' -o -name 'vctk_*.wav' \) | LC_ALL=C sort |
    awk '{n = split($1, p, "/"); id = p[n]; sub(/\.wav$/, "", id); print id, $1}' >data/realdev/wav.scp
  awk '{print $1, $1}' data/realdev/wav.scp | tee data/realdev/utt2spk >data/realdev/spk2utt
  echo "data/realdev: $(wc -l <data/realdev/wav.scp) real speech clips of $realdev (one speaker each, no text)"
  mkdir -p data/realdev_noise  # its recorded background noise: the real-noise denoising evaluation of stage 7
  find "$realdev" -maxdepth 1 -name 'noise_*.wav' | LC_ALL=C sort |
    awk '{n = split($1, p, "/"); id = p[n]; sub(/\.wav$/, "", id); print id, $1}' >data/realdev_noise/wav.scp
fi
if [ "$corpus" = tiny ] && [ -d "$PSTEST/librivox" ]; then  # real read speech with transcripts: data/realread
  mkdir -p data/realread
  pstest=$(cd "$PSTEST" && pwd)
  for pair in "librivox transcription" "cards cards.transcription"; do
    # shellcheck disable=SC2086  # the pair's two words
    set -- $pair
    # "<s> words </s> (file id)" -> "<set>-<file id> words"
    awk -v set="$1" '{ id = $NF; gsub(/[()]/, "", id); text = ""
      for (i = 2; i < NF - 1; i++) text = text (text == "" ? "" : " ") $i
      print set "-" id, text }' "$pstest/$1/$2"
  done | LC_ALL=C sort -k1,1 >data/realread/text
  awk -v dir="$pstest" '{ split($1, p, "-"); file = substr($1, length(p[1]) + 2)
    print $1, dir "/" p[1] "/" file ".wav" }' data/realread/text >data/realread/wav.scp
  awk '{ split($1, p, "-"); print $1, p[1] }' data/realread/text >data/realread/utt2spk
  awk '{ utts[$2] = utts[$2] " " $1 } END { for (s in utts) print s utts[s] }' data/realread/utt2spk |
    LC_ALL=C sort -k1,1 >data/realread/spk2utt
  echo "data/realread: $(wc -l <data/realread/wav.scp) real read utterances with transcripts of $pstest"
fi
