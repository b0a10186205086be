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
#   --baseline_tf_utts N              train utterances decoded teacher-forced for the table's L1 train [32]
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
baseline_tf_utts=32
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
  python -m espnet_softvc.bin.validate_data_dir $(printf 'data/%s ' $sets)  # like Kaldi's validate_data_dir.sh
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

if run_stage 3; then
  log "unit dump ($unit_type units, $content_encoder content encoder)"
  if [ "$content_encoder" = offline ]; then
    # k-means over MFCCs of train, and a small soft encoder trained the HuBERT-Soft way on those labels
    units_opts=""; [[ $kinds == *soft* ]] || units_opts="--steps 0"  # discrete only: k-means, no soft encoder
    if [ ! -f exp/units/kmeans.pt ] || { [[ $kinds == *soft* ]] && [ ! -f exp/units/soft_encoder.pt ]; }; then
      ${train_cmd} exp/units/log/train_units.log \
        python -m espnet_softvc.bin.train_units data/train/wav.scp exp/units --dev data/dev/wav.scp $units_opts
    fi
    soft_opts="--checkpoint exp/units/soft_encoder.pt"; discrete_opts="--kmeans exp/units/kmeans.pt"
  else
    mkdir -p "$hubert_dir"
    for file in hubert-soft-35d9f29f.pt hubert-discrete-96b248c5.pt kmeans100-50f36a95.pt; do
      [ -f "$hubert_dir/$file" ] || wget -c -O "$hubert_dir/$file" "https://github.com/bshall/hubert/releases/download/v0.2/$file"
    done
    soft_opts="--checkpoint $hubert_dir/hubert-soft-35d9f29f.pt"
    discrete_opts="--checkpoint $hubert_dir/hubert-discrete-96b248c5.pt --kmeans $hubert_dir/kmeans100-50f36a95.pt"
  fi
  for kind in $kinds; do
    opts_var=${kind}_opts
    for dset in $sets; do
      ${cuda_cmd} --gpu "$ngpu" "dump/$kind/$dset/log/dump_units.log" \
        python -m espnet_softvc.bin.dump_units "$kind" "data/$dset" "dump/$kind/$dset" ${!opts_var} \
        --nj "$nj" --device "$([ "$ngpu" -gt 0 ] && echo cuda || echo cpu)"
    done
  done
fi

train_data_opts() {  # kind set-prefix -> ESPnet data options for the Soft-VC task
  echo "--${2}_data_path_and_name_and_type dump/$1/${3}/units.scp,units,kaldi_ark" \
       "--${2}_data_path_and_name_and_type dump/${3}/feats.scp,feats,kaldi_ark"
}

if run_stage 4; then
  log "statistics and shape files (collect_stats)"
  for kind in $kinds; do
    ${train_cmd} "exp/stats_softvc_$kind/log/collect_stats.log" \
      python -m espnet_softvc.bin.softvc_train --collect_stats true --config "$(config_for "$kind")" \
      $(train_data_opts "$kind" train train) $(train_data_opts "$kind" valid dev) \
      --output_dir "exp/stats_softvc_$kind" --ngpu 0 --num_workers 0
  done
fi

if run_stage 5; then
  for kind in $kinds; do
    expdir=exp/softvc_$kind
    log "training $expdir ($(config_for "$kind"), log: $expdir/train.log)"
    ddp_opts=""; [ "$ngpu" -gt 1 ] && ddp_opts="--multiprocessing_distributed true"
    ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
      python -m espnet_softvc.bin.softvc_train --config "$(config_for "$kind")" \
      $(train_data_opts "$kind" train train) $(train_data_opts "$kind" valid dev) \
      --train_shape_file "exp/stats_softvc_$kind/train/units_shape" \
      --train_shape_file "exp/stats_softvc_$kind/train/feats_shape" \
      --valid_shape_file "exp/stats_softvc_$kind/valid/units_shape" \
      --valid_shape_file "exp/stats_softvc_$kind/valid/feats_shape" \
      --output_dir "$expdir" --resume true --ngpu "$ngpu" $ddp_opts $train_args
  done
fi

if run_stage 6; then
  for kind in $kinds; do
    expdir=exp/softvc_$kind
    for dset in dev; do
      outdir=$expdir/decode_$dset
      log "decoding $outdir with $inference_model (${vocoder_file:-Griffin-Lim})"
      keys=$outdir/logdir/keys
      mkdir -p "$keys"
      python -m espnet_softvc.bin.split_scp "dump/$kind/$dset/units.scp" "$keys/units" "$nj"
      ${decode_cmd} --gpu "$ngpu" JOB=1:"$nj" "$outdir/logdir/decode.JOB.log" \
        python -m espnet_softvc.bin.softvc_inference --model_file "$expdir/$inference_model" \
        --data_path_and_name_and_type "$keys/units.JOB.scp,units,kaldi_ark" \
        --output_dir "$outdir/logdir/output.JOB" ${vocoder_file:+--vocoder_file "$vocoder_file"} \
        --device "$([ "$ngpu" -gt 0 ] && echo cuda || echo cpu)" $inference_args
      mkdir -p "$outdir/norm" "$outdir/wav"
      python -m espnet_softvc.bin.split_scp --merge "$outdir/norm/feats.scp" "$outdir"/logdir/output.*/norm/feats.scp
      if [ -z "$inference_args" ] || [[ $inference_args != *"--vocode false"* ]]; then
        find "$outdir"/logdir/output.*/wav -name '*.wav' -exec mv -t "$outdir/wav" {} +
        (cd "$outdir/wav" && for f in *.wav; do echo "${f%.wav} $PWD/$f"; done) >"$outdir/wav/.wav.scp.tmp"
        mv "$outdir/wav/.wav.scp.tmp" "$outdir/wav/wav.scp"
      fi
    done
  done
fi

if run_stage 7; then
  # (a) Soft-VC's postnet option: a second training of exp/softvc_<kind> with the acoustic model frozen, on its own
  # free-running output (generated once, in the first epoch); then dev decoded with it: "+ denoising postnet" rows
  postnet_config=$([ "$corpus" = tiny ] && echo conf/tuning/train_softvc_postnet_tiny.yaml || echo conf/train_softvc_postnet.yaml)
  train_postnet() {  # kind
    local expdir=exp/softvc_$1_postnet
    log "training $expdir: denoising postnet on the frozen exp/softvc_$1 ($postnet_config, log: $expdir/train.log)"
    ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
      python -m espnet_softvc.bin.softvc_train --config "$postnet_config" \
      --tts_conf discrete="$([ "$1" = discrete ] && echo true || echo false)" \
      --init_param "exp/softvc_$1/$inference_model" --freeze_param tts.model \
      $(train_data_opts "$1" train train) $(train_data_opts "$1" valid dev) \
      --train_shape_file "exp/stats_softvc_$1/train/units_shape" \
      --train_shape_file "exp/stats_softvc_$1/train/feats_shape" \
      --valid_shape_file "exp/stats_softvc_$1/valid/units_shape" \
      --valid_shape_file "exp/stats_softvc_$1/valid/feats_shape" \
      --output_dir "$expdir" --resume true --ngpu "$ngpu" $train_args
    ${decode_cmd} --gpu "$ngpu" "$expdir/decode_dev/log/decode.log" \
      python -m espnet_softvc.bin.softvc_inference --model_file "$expdir/$inference_model" \
      --data_path_and_name_and_type "dump/$1/dev/units.scp,units,kaldi_ark" --output_dir "$expdir/decode_dev" \
      --vocode false --device "$([ "$ngpu" -gt 0 ] && echo cuda || echo cpu)"
  }
  pids=()  # on CPU (one thread each) both kinds at once; on a GPU one after the other
  for kind in $kinds; do
    if [ "$ngpu" -eq 0 ]; then train_postnet "$kind" & pids+=($!); else train_postnet "$kind"; fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "postnet training failed (exp/softvc_*_postnet/train.log)"; done
  # (b) the standalone denoiser (--tts denoiser) for mels from any source, trained on noisy/clean pairs made here
  denoiser_config=$([ "$corpus" = tiny ] && echo conf/tuning/train_denoiser_tiny.yaml || echo conf/train_denoiser.yaml)
  expdir=exp/denoiser_softvc
  log "standalone denoiser: noisy/clean pairs, training ($denoiser_config, log: $expdir/train.log), applying"
  for dset in $sets; do
    [ -f "dump/denoise/$dset/clean.scp" ] || ${train_cmd} "dump/denoise/$dset/log/make_pairs.log" \
      python -m espnet_softvc.postnet.make_pairs "data/$dset/wav.scp" "dump/denoise/$dset" --copies 2
  done
  pair_opts() {  # prefix set
    echo "--${1}_data_path_and_name_and_type dump/denoise/$2/noisy.scp,units,kaldi_ark" \
         "--${1}_data_path_and_name_and_type dump/denoise/$2/clean.scp,feats,kaldi_ark"
  }
  ${train_cmd} exp/stats_denoiser/log/collect_stats.log \
    python -m espnet_softvc.bin.softvc_train --collect_stats true --config "$denoiser_config" \
    $(pair_opts train train) $(pair_opts valid dev) --output_dir exp/stats_denoiser --ngpu 0 --num_workers 0
  ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
    python -m espnet_softvc.bin.softvc_train --config "$denoiser_config" $(pair_opts train train) $(pair_opts valid dev) \
    --train_shape_file exp/stats_denoiser/train/feats_shape --valid_shape_file exp/stats_denoiser/valid/feats_shape \
    --output_dir "$expdir" --resume true --ngpu "$ngpu" $train_args
  for kind in $kinds; do  # the acoustic models' decoded mels through it: "+ denoiser" rows of the results table
    ${decode_cmd} "exp/softvc_$kind/decode_dev_denoiser/log/denoise.log" \
      python -m espnet_softvc.bin.denoise "exp/softvc_$kind/decode_dev/norm/feats.scp" \
      "exp/softvc_$kind/decode_dev_denoiser/norm" --model_file "$expdir/$inference_model" --train_config "$expdir/config.yaml"
  done
fi

score_results() {  # RESULTS.md, results.csv, mels_<utt>.png, curves.png in the recipe dir
  ${train_cmd} exp/log/score.log \
    python -m espnet_softvc.scoring.results exp dump --set dev --train_set train --out_dir . --corpus "$corpus"
  log "results: $PWD/RESULTS.md (table), results.csv, mels_*.png, curves.png"
}
if run_stage 8; then
  score_results
fi

baseline_data_opts() {  # train|valid set with_fastspeech2_data -> ESPnet data options of the stock baselines
  local o="--$1_data_path_and_name_and_type dump/discrete/$2/text,text,text"
  o+=" --$1_data_path_and_name_and_type dump/$2/feats.scp,speech,kaldi_ark"
  if [ "$3" = true ]; then
    o+=" --$1_data_path_and_name_and_type dump/baselines/$2/durations,durations,text_int"
    o+=" --$1_data_path_and_name_and_type dump/baselines/$2/pitch.scp,pitch,kaldi_ark"
    o+=" --$1_data_path_and_name_and_type dump/baselines/$2/energy.scp,energy,kaldi_ark"
  fi
  echo "$o"
}
baseline() {  # train one stock ESPnet model on the discrete units, then decode dev (free-running, teacher-forced)
  local model=$1 expdir=exp/tts_$1 stats=exp/stats_baselines fs2=false extra_opts="" ddp_opts="" config
  config=conf/train_$model.yaml; [ "$corpus" = tiny ] && config=conf/tuning/train_${model}_tiny.yaml
  if [ "$model" = fastspeech2 ]; then
    fs2=true extra_opts="--pitch_normalize_conf stats_file=$stats/train/pitch_stats.npz"
    extra_opts+=" --energy_normalize_conf stats_file=$stats/train/energy_stats.npz"
  fi
  [ "$ngpu" -gt 1 ] && ddp_opts="--multiprocessing_distributed true"
  log "training $expdir ($config, log: $expdir/train.log)"
  ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
    python -m espnet2.bin.tts_train --config "$config" $baseline_common_opts \
    --normalize global_mvn --normalize_conf "stats_file=$stats/train/feats_stats.npz" $extra_opts \
    $(baseline_data_opts train train $fs2) $(baseline_data_opts valid dev $fs2) \
    --train_shape_file "$stats/train/text_shape" --train_shape_file "$stats/train/speech_shape" \
    --valid_shape_file "$stats/valid/text_shape" --valid_shape_file "$stats/valid/speech_shape" \
    --output_dir "$expdir" --resume true --ngpu "$ngpu" $ddp_opts $train_args
  # free-running dev, capped at 1.5x the reference length (2 frames per unit x 1.5 = --maxlenratio 3); teacher-forced
  # dev and the first $baseline_tf_utts train utterances (L1 train). FastSpeech2 teacher-forced: baseline_decode.
  head -n "$baseline_tf_utts" dump/discrete/train/text | cut -d' ' -f1 >"$expdir/train_tf_keys"
  local mode dset outdir keys tf_opts
  for mode in dev dev_tf train_tf; do
    dset=${mode%_tf} outdir=$expdir/decode_$mode keys="" tf_opts="--maxlenratio 3.0"
    log "decoding $outdir with $inference_model"
    [ "$mode" = train_tf ] && keys="--key_file $expdir/train_tf_keys"
    if [ "$mode" != dev ] && [ "$fs2" = true ]; then
      ${decode_cmd} --gpu "$ngpu" "$outdir/log/decode.log" \
        python -m espnet_softvc.bin.baseline_decode "$expdir/config.yaml" "$expdir/$inference_model" \
        "dump/discrete/$dset/text" "dump/$dset/feats.scp" "dump/baselines/$dset" "$outdir" $keys
    else
      [ "$mode" != dev ] && tf_opts="--use_teacher_forcing true --data_path_and_name_and_type dump/$dset/feats.scp,speech,kaldi_ark"
      ${decode_cmd} --gpu "$ngpu" "$outdir/log/decode.log" \
        python -m espnet2.bin.tts_inference --ngpu "$ngpu" --train_config "$expdir/config.yaml" \
        --model_file "$expdir/$inference_model" --data_path_and_name_and_type "dump/discrete/$dset/text,text,text" \
        $tf_opts $keys --output_dir "$outdir"
    fi
  done
}

if run_stage 9; then
  # Stock ESPnet TTS models on the same discrete units (text, --token_type word) and the same dumped Soft-VC mels
  # (--odim 128, GlobalMVN): Tacotron2 without / with guided attention, Transformer-TTS, FastSpeech2.
  [ -f dump/discrete/train/text ] || die "stage 9 needs the discrete units of stage 3 (--unit_type discrete or both)"
  baseline_common_opts="--token_type word --token_list dump/discrete/train/tokens.txt --cleaner none --g2p none --odim 128"
  for dset in $sets; do
    if [ ! -f "dump/baselines/$dset/durations" ]; then
      log "FastSpeech2 durations (2 frames per unit), token-averaged pitch and energy: dump/baselines/$dset"
      ${train_cmd} "dump/baselines/$dset/log/baseline_data.log" \
        python -m espnet_softvc.bin.baseline_data "dump/$dset/feats.scp" "dump/discrete/$dset/text" \
        "data/$dset/wav.scp" "dump/baselines/$dset" --token_list dump/discrete/train/tokens.txt --nj "$nj" $pipe_opt
    fi
  done
  if [ ! -f exp/stats_baselines/train/feats_stats.npz ]; then
    log "statistics of the baselines (one collect_stats for all: mels, given pitch and energy)"
    ${train_cmd} exp/stats_baselines/log/collect_stats.log \
      python -m espnet2.bin.tts_train --collect_stats true $baseline_common_opts --normalize none --ngpu 0 \
      --num_workers 0 $(baseline_data_opts train train true) $(baseline_data_opts valid dev true) \
      --output_dir exp/stats_baselines
  fi
  # On CPU each training uses one thread: run $nj at once. On a GPU, one after the other.
  at_once=1; [ "$ngpu" -eq 0 ] && at_once=$nj
  pids=()
  for model in tacotron2 tacotron2_ga transformer fastspeech2; do
    baseline "$model" & pids+=($!)
    if [ "${#pids[@]}" -ge "$at_once" ]; then for pid in "${pids[@]}"; do wait "$pid" || die "baseline training failed"; done; pids=(); fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "baseline training failed"; done
  score_results  # RESULTS.md again, now with the baselines
fi

if run_stage 10; then
  for kind in $kinds; do
    tag=softvc_$kind; expdir=exp/$tag; packed=$expdir/${tag}_${inference_model%.*}.zip
    pack_opts=(--train_config "$expdir/config.yaml" --model_file "$expdir/$inference_model" --tag "$tag" --outpath "$packed")
    [ -f RESULTS.md ] && pack_opts+=(--results RESULTS.md)
    if [ -f exp/denoiser_softvc/config.yaml ]; then  # the standalone denoising postnet of stage 7
      pack_opts+=(--postnet_config exp/denoiser_softvc/config.yaml --postnet_file "exp/denoiser_softvc/$inference_model")
    fi
    log "packing $expdir -> $packed"
    python -m espnet_softvc.bin.pack "${pack_opts[@]}"
    if [ "$skip_upload" = false ]; then  # like egs2/TEMPLATE/tts1: a clone of the HF repo, git-lfs, push
      [ -n "$hf_repo" ] || die "--hf_repo is needed for the upload (e.g. --hf_repo <user>/${tag}_ljspeech)"
      [ "$kinds" = "$kind" ] || die "one model per Hugging Face repo: upload with --unit_type soft or discrete"
      git lfs --version >/dev/null 2>&1 || die "the upload needs git-lfs"
      dir_repo=$expdir/hf_${hf_repo//\//_}
      [ -d "$dir_repo" ] || git clone "https://huggingface.co/$hf_repo" "$dir_repo"
      unzip -o "$packed" -d "$dir_repo"  # README.md in the zip is the model card
      (cd "$dir_repo" && git lfs track "*.pth" "*.npz" && git add . &&
        { git diff --cached --quiet || git commit -m "Update $tag"; } && git push)
      log "uploaded $packed to https://huggingface.co/$hf_repo"
    else
      log "upload skipped (--skip_upload false --hf_repo <user>/<name> uploads $packed)"
    fi
  done
fi

current_stage=$stop_stage
log "done. Results: $PWD/RESULTS.md (stage 8); models, plots and decoded mels/wavs: $PWD/exp/softvc_*/{images,decode_dev/norm,decode_dev/wav}"
