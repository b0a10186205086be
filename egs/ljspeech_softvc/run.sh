#!/usr/bin/env bash
# Soft-VC acoustic models (+ denoising postnet, + stock ESPnet TTS baselines) on LJSpeech or the built-in tiny
# espeak-ng corpus, ESPnet style. Usage: ./run.sh [options]   e.g. ./run.sh --stage 5 --stop_stage 6 --unit_type soft
#
# Stages: 1 data prep  2 mel dump  3 unit dump  4 stats/token list  5 train  6 decode
#         7 denoising postnet  8 scoring (RESULTS.md)  9 ESPnet baselines  10 pack (+ optional upload)
# Options (defaults in brackets):
#   --stage N --stop_stage M          stages to run [1, 10]
#   --corpus tiny|ljspeech            built-in tiny corpus, or LJSpeech downloaded in stage 1 [tiny]
#   --unit_type soft|discrete|both    which acoustic models [both]
#   --content_encoder offline|hubert  units made here (k-means + small soft encoder) or HuBERT checkpoints [offline for tiny]
#   --hubert_dir DIR                  where the HuBERT checkpoints are (downloaded there if missing) [downloads/hubert]
#   --nj N                            parallel jobs for dumps and decoding [2]
#   --ngpu N                          GPUs for training and decoding (ESPnet DDP when N > 1) [0]
#   --train_config FILE               acoustic-model config [conf/tuning/train_softvc_<kind>_tiny.yaml or conf/train_softvc_<kind>.yaml]
#   --inference_model FILE            model file in exp/<tag>/ used by stage 6 [valid.loss.ave.pth]
#   --vocoder_file FILE               HiFi-GAN (.pt, original Soft-VC) or ParallelWaveGAN (.pkl) vocoder [Griffin-Lim]
#   --num_utts N                      tiny corpus: first N sentences only [all 163]
#   --train_args "ARGS"               extra arguments for every training (e.g. "--max_epoch 2") [none]
#   --inference_args "ARGS"           extra arguments for decoding [none]
#   --dev_list FILE                   LJSpeech dev utterance ids (the paper's split) [every 100th utterance]
#   --allow_pipes true|false          run 'cmd |' entries of wav.scp [false]
#   --skip_upload true|false          stage 10 Hugging Face upload [true]
#   --hf_repo NAME                    Hugging Face repo for stage 10 [unset]
#   cmd_backend=slurm ./run.sh ...    submit jobs with sbatch instead of running them here (see cmd.sh)

set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=10
corpus=tiny
unit_type=both
content_encoder=""
hubert_dir=downloads/hubert
nj=2
ngpu=0
train_config=""
inference_model=valid.loss.ave.pth
vocoder_file=""
dev_list=""
num_utts=""
train_args=""
inference_args=""
allow_pipes=false
skip_upload=true
hf_repo=""

. utils/parse_options.sh
. ./path.sh
. ./cmd.sh

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh stage ${current_stage:-0}) $*"; }
die() { echo "error: $*" >&2; exit 1; }
run_stage() { current_stage=$1; [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

case $corpus in tiny|ljspeech) ;; *) die "--corpus must be tiny or ljspeech, got '$corpus'" ;; esac
case $unit_type in soft) kinds="soft" ;; discrete) kinds="discrete" ;; both) kinds="discrete soft" ;;
  *) die "--unit_type must be soft, discrete or both, got '$unit_type'" ;; esac
[ -n "$content_encoder" ] || content_encoder=$([ "$corpus" = tiny ] && echo offline || echo hubert)
case $content_encoder in offline|hubert) ;; *) die "--content_encoder must be offline or hubert" ;; esac
pipe_opt=""; [ "$allow_pipes" = true ] && pipe_opt="--allow_pipes"
sets="train dev"
config_for() {  # kind -> training config
  if [ -n "$train_config" ]; then echo "$train_config";
  elif [ "$corpus" = tiny ]; then echo "conf/tuning/train_softvc_$1_tiny.yaml";
  else echo "conf/train_softvc_$1.yaml"; fi
}

if run_stage 1; then
  log "data preparation ($corpus)"
  if [ "$corpus" = tiny ]; then
    python -m espnet_softvc.data.tiny_corpus downloads/tiny ${num_utts:+--num_utts "$num_utts"}
    corpus_dir=downloads/tiny
  else
    corpus_dir=downloads/LJSpeech-1.1
    if [ ! -f "$corpus_dir/metadata.csv" ]; then
      mkdir -p downloads
      wget -c -O downloads/LJSpeech-1.1.tar.bz2 https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2
      tar -xjf downloads/LJSpeech-1.1.tar.bz2 -C downloads
    fi
  fi
  python -m espnet_softvc.bin.data_prep "$corpus_dir" data ${dev_list:+--dev_list "$dev_list"}
fi

if run_stage 2; then
  log "mel dump (Soft-VC log-mels, $nj jobs)"
  for dset in $sets; do
    out=dump/$dset
    if [ -f "$out/feats.scp" ] && [ "$(wc -l <"$out/feats.scp")" -eq "$(wc -l <"data/$dset/wav.scp")" ]; then
      log "$out/feats.scp complete, skipped"; continue
    fi
    mkdir -p "$out/data" "data/$dset/split$nj"
    python -m espnet_softvc.bin.split_scp "data/$dset/wav.scp" "data/$dset/split$nj/wav" "$nj"
    ${train_cmd} JOB=1:"$nj" "$out/log/dump_mels.JOB.log" \
      python -m espnet_softvc.bin.dump_mels $pipe_opt "data/$dset/split$nj/wav.JOB.scp" "$out/data/feats.JOB"
    python -m espnet_softvc.bin.split_scp --merge "$out/feats.scp" "$out"/data/feats.*.scp
  done
fi
