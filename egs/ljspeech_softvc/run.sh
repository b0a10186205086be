#!/usr/bin/env bash
# Soft-VC acoustic models (+ denoising postnets, + stock ESPnet TTS baselines) on LJSpeech or the built-in tiny
# corpus, ESPnet style: this script sets the corpus' options and runs the stages of ./softvc.sh (as an
# egs2/<corpus>/tts1/run.sh runs tts.sh). Corpus locations: db.sh; data preparation: local/data.sh.
#   ./run.sh [options]    e.g. ./run.sh --stage 5 --stop_stage 6 --unit_type soft
# Options of this corpus (defaults in brackets):
#   --corpus tiny|ljspeech   the built-in tiny corpus (configs conf/tuning/*_tiny.yaml, offline content encoder),
#                            or LJSpeech downloaded in stage 1 (configs conf/*.yaml, HuBERT content encoder) [tiny]
#   --num_utts N             tiny corpus: the first N sentences only [all]
#   --voice VOICE            tiny corpus: the target speaker, a flite voice (slt rms awb kal16) or an espeak-ng
#                            voice (en-us: the earlier espeak-ng corpus) [slt]
#   --dev_list FILE          LJSpeech dev utterance ids (the paper's split) [every 100th utterance]
# Every other option goes to ./softvc.sh, after the ones set here:

set -euo pipefail
cd "$(dirname "$0")"

corpus=tiny
num_utts=""
voice=""
dev_list=""
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --help | -h)
      sed -n '2,/^$/s/^# \{0,1\}//p' "$(basename "$0")"
      ./softvc.sh --help | sed '/^Stages:/,$!d'
      exit 0
      ;;
    --corpus=* | --num_utts=* | --voice=* | --dev_list=*)
      name=${1%%=*}
      printf -v "${name#--}" '%s' "${1#*=}"
      shift
      ;;
    --corpus | --num_utts | --voice | --dev_list)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      printf -v "${1#--}" '%s' "$2"
      shift 2
      ;;
    --*=*)
      args+=("$1")
      shift
      ;;
    *)  # --name value (or a stray word: softvc.sh refuses it)
      args+=("$1")
      shift
      if [ $# -gt 0 ]; then args+=("$1") && shift; fi
      ;;
  esac
done

case $corpus in
  tiny)  # other voices for speaker-independent units, held-out speakers and real recordings: the units' speaker
    # probe (stage 3), conversion (stage 11) and several target voices (stage 12, opt-in). The default run is the main
    # job in under half an hour on 2 CPU cores: the denoising postnets (stage 7, ~25 min) and the stock ESPnet
    # baselines (stage 9, ~2 h) are opt-in (--skip_stages ""). Conversion (stage 11) takes 5 sentences of each
    # held-out voice (30), the real read speech with transcripts (realread, 10) and the real clips (realdev, 3)
    corpus_opts=(--conf_dir conf/tuning --conf_suffix _tiny --content_encoder offline --units_extra_sets multi
      --units_opts "--targets phones --perturb true --steps 2000"
      --probe_sets "test others" --convert_sets "others realread realdev" --spk_sets multi --skip_stages "7 9"
      --convert_utts_per_spk 5)
    ;;
  ljspeech) corpus_opts=(--conf_dir conf --conf_suffix "" --content_encoder hubert) ;;
  *) echo "error: --corpus must be tiny or ljspeech, got '$corpus'" >&2; exit 1 ;;
esac

./softvc.sh \
  --local_data_opts "--corpus $corpus${num_utts:+ --num_utts $num_utts}${voice:+ --voice $voice}${dev_list:+ --dev_list $dev_list}" \
  --train_set train \
  --valid_set dev \
  --test_sets dev \
  --inference_config conf/decode.yaml \
  --baseline_inference_config conf/decode_baselines.yaml \
  --corpus_name "$corpus" \
  "${corpus_opts[@]}" \
  "${args[@]}"
