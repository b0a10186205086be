#!/usr/bin/env bash
# softvc.sh: the corpus-agnostic stages of a Soft-VC recipe (as egs2/TEMPLATE/tts1/tts.sh is for ESPnet TTS): Soft-VC
# acoustic models, denoising postnets and stock ESPnet TTS baselines on speech units. A corpus' run.sh sets its
# options (data prep, set names, configs) and passes its own command line last, so a user's options win.
#   ./softvc.sh [options]    e.g. ./softvc.sh --stage 5 --stop_stage 6 --unit_type soft
#
# Stages: 1 data prep (local/data.sh)  2 mel dump, then removal of too-short / too-long utterances (every model,
#         baselines included, uses the kept ones)  3 unit dump  4 stats/token list  5 train  6 decode
#         7 denoising postnets  8 scoring (RESULTS.md: mel distances, and outside judges on the wavs: pocketsphinx
#         WER, resemblyzer speaker similarity, DNSMOS; reference rows)  9 ESPnet baselines  10 pack (+ upload)
#         11 voice conversion of held-out speakers into the target voice (softvc-convert), scored (softvc-score),
#            samples/index.html  12 (opt-in, --stop_stage 12) several target voices: a multi-speaker model (sids)
#            and fine-tuning onto a new voice, scored by speaker similarity (softvc-score-speakers)
# Options (defaults in brackets; *_args and *_opts are split at spaces, as in ESPnet):
#   --stage N --stop_stage M          stages to run [1, 11]
#   --skip_stages "N ..."             stages of that range not to run (as ESPnet's asr.sh) [none]
#   --nj N                            parallel jobs for dumps and decoding [2]
#   --ngpu N                          GPUs for training and decoding (ESPnet DDP when N > 1) [0]
#   --local_data_opts "OPTS"          options of local/data.sh (stage 1) [none]
#   --train_set --valid_set NAME      Kaldi data dirs data/NAME (stage 1) for training and validation [train, dev]
#   --test_sets "NAMES"               sets decoded in stages 6, 7 and 9; the first is scored in RESULTS.md [dev]
#   --min_wav_duration SEC            stage 2 keeps the train and valid utterances of min..max seconds (mel frames
#   --max_wav_duration SEC            / 100) for every model, baselines included; test-only sets stay whole [0.5, 20]
#   --allow_pipes true|false          run 'cmd |' entries of wav.scp [false]
#   --unit_type soft|discrete|both    which acoustic models [both]
#   --content_encoder offline|hubert  units made here (k-means + small soft encoder) or HuBERT checkpoints [offline]
#   --hubert_dir DIR                  where the HuBERT checkpoints are (downloaded there if missing) [downloads/hubert]
#   --conf_dir DIR --conf_suffix S    model M trains with DIR/train_M<S>.yaml (M: softvc_<kind>, softvc_postnet,
#                                     denoiser, tacotron2, tacotron2_ga, transformer, fastspeech2) [conf, none]
#   --train_config FILE               acoustic-model config for every unit type [<conf_dir>/train_softvc_<kind><S>.yaml]
#   --train_args "ARGS"               extra arguments for every training (e.g. "--max_epoch 2") [none]
#   --inference_config FILE           decoding options of softvc_inference (YAML, stages 6-7) [conf/decode.yaml]
#   --inference_args "ARGS"           extra arguments for decoding, after the config (e.g. "--dtype bfloat16") [none]
#   --inference_model FILE            model file in exp/<tag>/ used by stages 6, 7, 9 and 10 [valid.loss.ave.pth]
#   --vocoder_file FILE               HiFi-GAN (.pt, original Soft-VC) or ParallelWaveGAN (.pkl) vocoder [Griffin-Lim]
#   --baseline_inference_config FILE  decoding options of espnet2.bin.tts_inference (stage 9) [conf/decode_baselines.yaml]
#   --baseline_tf_utts N              train utterances decoded teacher-forced for the table's L1 train [32]
#   --baselines "NAMES"               stock ESPnet models of stage 9, of: tacotron2 tacotron2_ga transformer
#                                     fastspeech2 [all four]
#   --corpus_name NAME                corpus named in RESULTS.md [none]
#   --skip_upload true|false          stage 10 Hugging Face upload [true]
#   --hf_repo NAME                    Hugging Face repo for stage 10 [unset]
#   --hf_tag TAG                      packed model to upload: softvc_<kind> or softvc_<kind>_postnet [softvc_<unit_type>]
#   --convert_sets "NAMES"            Kaldi data dirs data/NAME converted into the target voice in stage 11 [none]
#   --convert_ref_utts N              train utterances whose mean embedding is the target speaker (stage 11) [50]
#   --convert_utts_per_spk N          stage 11 converts the first N utterances of each speaker (utt2spk) of a set [all]
#   --probe_sets "NAMES"              data dirs for the units' speaker probe (stage 3, offline encoders) [none]
#   --units_extra_sets "NAMES"        data dirs of other voices for the offline soft encoder (stage 3): sentences
#                                     also in train learn the target's units (speaker-independent units) [none]
#   --units_opts "OPTS"               more options of the offline content encoder's training (stage 3,
#                                     python -m espnet_softvc.bin.train_units --help) [none]
#   --noise_dir DIR                   recorded noise for the denoiser's training pairs (stage 7), MUSAN layout (its
#                                     noise/ part) or any folder of wavs; half of the corruptions use it [none]
#   --spk_sets "NAMES"                data dirs of other voices for stage 12: with the train set (speaker 0) they
#                                     train a multi-speaker model (sids); one of them is the fine-tuning voice [none]
#   --spk_valid_utts N                last utterances of each such voice that validate instead of train [5]
#   --finetune_spk NAME               the voice of --spk_sets to fine-tune onto (stage 12) [the first]
#   --finetune_init FILE              model fine-tuned from: ESPnet model file or original Soft-VC checkpoint
#                                     [exp/softvc_<kind>/<inference_model>]
#   --finetune_seconds SEC            at most this much of the new voice's speech trains the fine-tuning [300]
#   --finetune_args "ARGS"            extra arguments of the fine-tuning (e.g. "--max_epoch 4") [none]
#   cmd_backend=slurm ./run.sh ...    submit jobs with sbatch instead of running them here (see cmd.sh)

set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=11
skip_stages=""
nj=2
ngpu=0
local_data_opts=""
train_set=train
valid_set=dev
test_sets=dev
min_wav_duration=0.5
max_wav_duration=20
allow_pipes=false
unit_type=both
content_encoder=offline
hubert_dir=downloads/hubert
conf_dir=conf
conf_suffix=""
train_config=""
train_args=""
inference_config=conf/decode.yaml
inference_args=""
inference_model=valid.loss.ave.pth
vocoder_file=""
baseline_inference_config=conf/decode_baselines.yaml
baseline_tf_utts=32
readonly all_baselines="tacotron2 tacotron2_ga transformer fastspeech2"  # not an option
baselines=$all_baselines
corpus_name=""
skip_upload=true
hf_repo=""
hf_tag=""
convert_sets=""
convert_ref_utts=50
convert_utts_per_spk=""
probe_sets=""
units_extra_sets=""
units_opts=""
noise_dir=""
spk_sets=""
spk_valid_utts=5
finetune_spk=""
finetune_init=""
finetune_seconds=300
finetune_args=""

. utils/parse_options.sh
. ./path.sh
. ./cmd.sh

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (softvc.sh stage ${current_stage:-0}) $*"; }
die() { echo "error: $*" >&2; exit 1; }
run_stage() { current_stage=$1; [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] && [[ " $skip_stages " != *" $1 "* ]]; }
min() { echo $(($1 < $2 ? $1 : $2)); }

case $unit_type in
  soft) kinds="soft" ;;
  discrete) kinds="discrete" ;;
  both) kinds="discrete soft" ;;
  *) die "--unit_type must be soft, discrete or both, got '$unit_type'" ;;
esac
for model in $baselines; do
  [[ " $all_baselines " == *" $model "* ]] || die "--baselines: unknown model '$model' (of: $all_baselines)"
done
for s in $skip_stages; do [[ $s =~ ^[0-9]+$ ]] || die "--skip_stages: '$s' is not a stage number"; done
[ -z "$convert_utts_per_spk" ] || [[ $convert_utts_per_spk =~ ^[1-9][0-9]*$ ]] || die "--convert_utts_per_spk must be a positive number, got '$convert_utts_per_spk'"
case $content_encoder in offline | hubert) ;; *) die "--content_encoder must be offline or hubert, got '$content_encoder'" ;; esac
[ -n "$test_sets" ] || die "--test_sets is empty"
for f in "$inference_config" "$baseline_inference_config"; do [ -f "$f" ] || die "$f: decoding config not found"; done
pipe_opt=""
[ "$allow_pipes" = true ] && pipe_opt="--allow_pipes"
device=$([ "$ngpu" -gt 0 ] && echo cuda || echo cpu)
ddp_opts=""
[ "$ngpu" -gt 1 ] && ddp_opts="--multiprocessing_distributed true"
eval_set=${test_sets%% *}
# every set once, in order: train, valid, test sets
all_sets=$(printf '%s\n' "$train_set" "$valid_set" $test_sets | awk '!seen[$0]++' | tr '\n' ' ')
config_of() { echo "$conf_dir/train_$1$conf_suffix.yaml"; }  # model -> its training config
acoustic_config() { if [ -n "$train_config" ]; then echo "$train_config"; else config_of "softvc_$1"; fi; }

split_scp() {  # SCP N DIR -> DIR/split.0 .. DIR/split.<N-1> (ESPnet's split_scps, round robin; N=1: a copy)
  local scp=$1 n=$2 dir=$3 tmp
  tmp=$(dirname "$dir")/.$(basename "$dir").tmp
  rm -rf "$tmp"
  mkdir -p "$tmp/keys"
  if [ "$n" -gt 1 ]; then
    python -m espnet2.bin.split_scps --scps "$scp" --names keys --num_splits "$n" --output_dir "$tmp" \
      --log_level WARNING >"$tmp/split.log" 2>&1 || { cat "$tmp/split.log" >&2; die "splitting $scp failed"; }
  else
    cp "$scp" "$tmp/keys/split.0"
  fi
  rm -rf "$dir"
  mv "$tmp/keys" "$dir"
  rm -rf "$tmp"
}
merge_scp() {  # OUT PART... -> OUT: the parts' lines sorted by utterance id (C locale), written atomically
  local out=$1 tmp
  shift
  tmp=$(dirname "$out")/.$(basename "$out").tmp
  cat "$@" | LC_ALL=C sort -k1,1 >"$tmp"
  mv "$tmp" "$out"
}
filter_scp() {  # [--exclude] KEYS FILE... -> the lines of FILE... whose first field is (--exclude: is not) a first
  # field of KEYS ("-": standard input), in FILE's order, as Kaldi's utils/filter_scp.pl
  local exclude=0
  [ "$1" = --exclude ] && exclude=1 && shift
  awk -v exclude="$exclude" 'NR == FNR { keep[$1]; next } ($1 in keep) != exclude' "$@"
}
parts() {  # PATTERN N -> the N file names of PATTERN with JOB = 0 .. N-1
  local j
  for ((j = 0; j < $2; j++)); do echo "${1//JOB/$j}"; done
}

if run_stage 1; then
  log "data preparation: local/data.sh $local_data_opts"
  # shellcheck disable=SC2086  # options, split at spaces
  local/data.sh $local_data_opts
  # shellcheck disable=SC2046,SC2086  # set names: no spaces
  python -m espnet_softvc.bin.validate_data_dir $(printf 'data/%s ' $all_sets)  # like Kaldi's validate_data_dir.sh
fi

dump_mels_set() {  # DSET LO HI: dump/org/DSET/feats.scp (every utterance), dump/DSET (those of LO..HI seconds)
  local dset=$1 lo=$2 hi=$3 org num_utts _nj tmp kept removed
  org=dump/org/$dset  # every utterance of data/$dset; dump/$dset: the kept ones
  num_utts=$(wc -l <"data/$dset/wav.scp")
  if [ -f "$org/feats.scp" ] && [ "$(wc -l <"$org/feats.scp")" -eq "$num_utts" ]; then
    log "$org/feats.scp complete, skipped"
  else
    _nj=$(min "$nj" "$num_utts")
    split_scp "data/$dset/wav.scp" "$_nj" "$org/split$_nj"
    ${train_cmd} JOB=0:$((_nj - 1)) "$org/log/dump_mels.JOB.log" \
      python -m espnet_softvc.bin.dump_mels $pipe_opt "$org/split$_nj/split.JOB" "$org/data/feats.JOB"
    # shellcheck disable=SC2046
    merge_scp "$org/feats.scp" $(parts "$org/data/feats.JOB.scp" "$_nj")
  fi
  # Remove long/short data (like tts.sh): keep utterances of lo..hi seconds. dump/$dset is a Kaldi data dir of the
  # kept utterances (+ feats.scp).
  if [ ! -f "$org/utt2num_frames" ] || [ "$org/feats.scp" -nt "$org/utt2num_frames" ]; then
    python pyscripts/feats/feat_to_num_frames.py "$org/feats.scp" "$org/.utt2num_frames.tmp"
    mv "$org/.utt2num_frames.tmp" "$org/utt2num_frames"
  fi
  tmp=dump/.$dset.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp"
  awk -v lo="$lo" -v hi="$hi" '$2 / 100 >= lo + 0 && (hi == "inf" || $2 / 100 <= hi + 0)' "$org/utt2num_frames" \
    >"$tmp/utt2num_frames"
  for f in wav.scp text utt2spk; do
    filter_scp "$tmp/utt2num_frames" "data/$dset/$f" >"$tmp/$f"
  done
  filter_scp "$tmp/utt2num_frames" "$org/feats.scp" >"$tmp/feats.scp"
  awk '{ utts[$2] = utts[$2] " " $1 } END { for (s in utts) print s utts[s] }' "$tmp/utt2spk" |
    LC_ALL=C sort -k1,1 >"$tmp/spk2utt"
  kept=$(wc -l <"$tmp/utt2num_frames")
  [ "$kept" -gt 0 ] || die "$dset: no utterance of ${lo}..${hi} s left (--min_wav_duration / --max_wav_duration)"
  removed=$(filter_scp --exclude "$tmp/utt2num_frames" "$org/utt2num_frames" | cut -d' ' -f1 | head -n 10 |
    tr '\n' ' ')
  rm -rf "dump/$dset"
  mv "$tmp" "dump/$dset"
  log "dump/$dset: $kept of $num_utts utterances kept (${lo} s <= duration <= ${hi} s)${removed:+; removed: ${removed}...}"
}

if run_stage 2; then
  log "mel dump (Soft-VC log-mels, $nj jobs), then removal of too-short / too-long utterances"
  # shellcheck disable=SC2046,SC2086
  python -m espnet_softvc.bin.validate_data_dir $(printf 'data/%s ' $all_sets)
  for dset in $all_sets; do  # train and valid sets: min..max seconds; a set that is only a test set stays whole
    if [ "$dset" = "$train_set" ] || [ "$dset" = "$valid_set" ]; then
      dump_mels_set "$dset" "$min_wav_duration" "$max_wav_duration"
    else
      dump_mels_set "$dset" 0 inf
    fi
  done
fi

encoder_files() {  # kind -> options naming its content encoder files (softvc-encode, dump_units, softvc-convert)
  if [ "$content_encoder" = offline ]; then
    echo "--checkpoint exp/units/soft_encoder.pt"  # soft: its units; discrete: the labels it predicts
  else
    [ "$1" = soft ] && echo "--checkpoint $hubert_dir/hubert-soft-35d9f29f.pt" ||
      echo "--checkpoint $hubert_dir/hubert-discrete-96b248c5.pt --kmeans $hubert_dir/kmeans100-50f36a95.pt"
  fi
}

dump_units_set() {  # KIND DSET: dump/KIND/DSET/units.scp of dump/DSET with the content encoder of stage 3
  # shellcheck disable=SC2046
  ${cuda_cmd} --gpu "$ngpu" "dump/$1/$2/log/dump_units.log" \
    python -m espnet_softvc.bin.dump_units "$1" "dump/$2" "dump/$1/$2" $(encoder_files "$1") --nj "$nj" \
    --device "$device"
}

if run_stage 3; then
  log "unit dump ($unit_type units, $content_encoder content encoder)"
  if [ "$content_encoder" = offline ]; then
    # a small content encoder trained the HuBERT-Soft way (k-means units of the train set's MFCCs or, with
    # --units_opts "--targets phones", phones): soft units are its output, discrete units the labels it predicts
    train_units_opts=$units_opts probe_dirs="" extra_dirs=""  # one option per list (argparse nargs="+")
    for dset in $probe_sets; do
      if [ -f "data/$dset/wav.scp" ]; then probe_dirs+=" data/$dset"; else log "probe: no data/$dset, left out"; fi
    done
    [ -z "$probe_dirs" ] || train_units_opts+=" --probe$probe_dirs"
    for dset in $units_extra_sets; do
      [ -f "data/$dset/wav.scp" ] || die "--units_extra_sets $dset: data/$dset/wav.scp not found"
      extra_dirs+=" data/$dset"
    done
    [ -z "$extra_dirs" ] || train_units_opts+=" --extra_train$extra_dirs"
    if [ ! -f exp/units/soft_encoder.pt ]; then
      # shellcheck disable=SC2086  # the stage's one job: --nj threads
      OMP_NUM_THREADS=$nj ${train_cmd} exp/units/log/train_units.log \
        python -m espnet_softvc.bin.train_units "dump/$train_set" exp/units --dev "dump/$valid_set" \
        $train_units_opts
    fi
  else
    mkdir -p "$hubert_dir"
    for file in hubert-soft-35d9f29f.pt hubert-discrete-96b248c5.pt kmeans100-50f36a95.pt; do
      [ -f "$hubert_dir/$file" ] ||
        wget -c -O "$hubert_dir/$file" "https://github.com/bshall/hubert/releases/download/v0.2/$file"
    done
  fi
  for kind in $kinds; do
    for dset in $all_sets; do dump_units_set "$kind" "$dset"; done
  done
fi

data_opts() {  # kind mode set -> ESPnet data options of the Soft-VC task (mode: train or valid)
  echo "--${2}_data_path_and_name_and_type dump/$1/$3/units.scp,units,kaldi_ark" \
    "--${2}_data_path_and_name_and_type dump/$3/feats.scp,feats,kaldi_ark"
}
shape_opts() {  # stats dir -> ESPnet shape options
  echo "--train_shape_file $1/train/units_shape --train_shape_file $1/train/feats_shape" \
    "--valid_shape_file $1/valid/units_shape --valid_shape_file $1/valid/feats_shape"
}

if run_stage 4; then
  log "statistics and shape files (collect_stats)"
  for kind in $kinds; do
    # shellcheck disable=SC2046
    ${train_cmd} "exp/stats_softvc_$kind/log/collect_stats.log" \
      python -m espnet_softvc.bin.softvc_train --collect_stats true --config "$(acoustic_config "$kind")" \
      $(data_opts "$kind" train "$train_set") $(data_opts "$kind" valid "$valid_set") \
      --output_dir "exp/stats_softvc_$kind" --ngpu 0 --num_workers 0
  done
fi

for_each_kind() {  # FUNCTION MESSAGE: FUNCTION KIND for every kind; on CPU (one thread each) all kinds at once, on a
  # GPU one after the other; MESSAGE is the error when one fails
  local kind pids=()
  for kind in $kinds; do
    if [ "$ngpu" -eq 0 ]; then
      "$1" "$kind" &
      pids+=($!)
    else
      "$1" "$kind" || die "$2"
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "$2"; done
}

if run_stage 5; then
  train_acoustic() {  # kind
    local expdir=exp/softvc_$1
    log "training $expdir ($(acoustic_config "$1"), log: $expdir/train.log)"
    # shellcheck disable=SC2046,SC2086
    ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
      python -m espnet_softvc.bin.softvc_train --config "$(acoustic_config "$1")" \
      $(data_opts "$1" train "$train_set") $(data_opts "$1" valid "$valid_set") \
      $(shape_opts "exp/stats_softvc_$1") \
      --output_dir "$expdir" --resume true --ngpu "$ngpu" $ddp_opts $train_args
  }
  for kind in $kinds; do  # --resume true continues exp/softvc_<kind>: only the training its config started
    config=$(acoustic_config "$kind")
    [ -f "$config" ] || die "$config: training config not found"
    trained=$(sed -n 's/^config: //p' "exp/softvc_$kind/config.yaml" 2>/dev/null || true)
    [ -z "$trained" ] || [ "$trained" = "$config" ] || die "exp/softvc_$kind was trained with $trained, not $config: remove it (or run in another copy of the recipe) to train anew"
  done
  for_each_kind train_acoustic "training failed (exp/softvc_*/train.log)"
fi

decode() {  # model_file dset kind outdir [extra args] -> outdir/{norm/feats.scp,wav/} with --nj jobs
  local model_file=$1 dset=$2 kind=$3 outdir=$4 n _nj
  shift 4
  n=$(wc -l <"dump/$kind/$dset/units.scp")
  _nj=$(min "$nj" "$n")
  log "decoding $outdir with $model_file (${vocoder_file:-Griffin-Lim}, $inference_config)"
  rm -rf "$outdir/logdir"
  split_scp "dump/$kind/$dset/units.scp" "$_nj" "$outdir/logdir/keys"
  # shellcheck disable=SC2086
  ${decode_cmd} --gpu "$ngpu" JOB=0:$((_nj - 1)) "$outdir/logdir/decode.JOB.log" \
    python -m espnet_softvc.bin.softvc_inference --config "$inference_config" \
    --model_file "$model_file" --key_file "$outdir/logdir/keys/split.JOB" \
    --data_path_and_name_and_type "dump/$kind/$dset/units.scp,units,kaldi_ark" \
    --output_dir "$outdir/logdir/output.JOB" ${vocoder_file:+--vocoder_file "$vocoder_file"} \
    --device "$device" $inference_args "$@"
  mkdir -p "$outdir/norm"
  # shellcheck disable=SC2046
  merge_scp "$outdir/norm/feats.scp" $(parts "$outdir/logdir/output.JOB/norm/feats.scp" "$_nj")
  # wavs: written by the jobs when the decoding options say vocode (each job's wav/wav.scp tells); none: none left
  rm -rf "$outdir/wav"
  if [ -f "$outdir/logdir/output.0/wav/wav.scp" ]; then
    mkdir -p "$outdir/wav"
    find "$outdir"/logdir/output.*/wav -name '*.wav' -exec mv -t "$outdir/wav" {} +
    (cd "$outdir/wav" && for f in *.wav; do echo "${f%.wav} $PWD/$f"; done) >"$outdir/wav/.wav.scp.tmp"
    mv "$outdir/wav/.wav.scp.tmp" "$outdir/wav/wav.scp"
  fi
}

if run_stage 6; then
  for kind in $kinds; do
    for dset in $test_sets; do
      decode "exp/softvc_$kind/$inference_model" "$dset" "$kind" "exp/softvc_$kind/decode_$dset"
    done
  done
fi

if run_stage 7; then
  # (a) Soft-VC's postnet option: a second training of exp/softvc_<kind> with the acoustic model frozen, on its own
  # free-running output (generated once, in the first epoch); then the test sets decoded with it (mels only):
  # "+ denoising postnet" rows. Packed in stage 10 as part of that model.
  postnet_config=$(config_of softvc_postnet)
  model_sizes() {  # exp dir -> --tts_conf options giving the frozen model's layer sizes (its config's, if any)
    python -c 'import sys, yaml; conf = (yaml.safe_load(open(sys.argv[1])) or {}).get("tts_conf") or {}
print(" ".join(f"--tts_conf {k}={v}" for k, v in conf.items() if k.startswith(("encoder_", "decoder_"))))' \
      "$1/config.yaml"
  }
  train_postnet() {  # kind
    local expdir=exp/softvc_$1_postnet dset
    log "training $expdir: denoising postnet on the frozen exp/softvc_$1 ($postnet_config, log: $expdir/train.log)"
    # shellcheck disable=SC2046,SC2086
    ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
      python -m espnet_softvc.bin.softvc_train --config "$postnet_config" \
      --tts_conf discrete="$([ "$1" = discrete ] && echo true || echo false)" $(model_sizes "exp/softvc_$1") \
      --init_param "exp/softvc_$1/$inference_model" --freeze_param tts.model \
      $(data_opts "$1" train "$train_set") $(data_opts "$1" valid "$valid_set") \
      $(shape_opts "exp/stats_softvc_$1") \
      --output_dir "$expdir" --resume true --ngpu "$ngpu" $train_args
    for dset in $test_sets; do decode "$expdir/$inference_model" "$dset" "$1" "$expdir/decode_$dset" --vocode false; done
  }
  for_each_kind train_postnet "postnet training failed (exp/softvc_*_postnet/train.log)"
  # (b) the standalone denoiser (--tts denoiser), trained on noisy/clean pairs made here. A mel denoiser (arch conv /
  # unet) is also applied to the stage-6 decodes ("+ denoiser" rows); the fusion denoiser (arch fusion, the default
  # configs: the noisy mel with RNNoise's and DeepFilterNet3's outputs) needs waveforms, so it is for recordings
  # only. Not part of any packed model.
  denoiser_config=$(config_of denoiser)
  expdir=exp/denoiser_softvc
  front_ends=$(python -c 'import sys, yaml; conf = (yaml.safe_load(open(sys.argv[1])) or {}).get("tts_conf") or {}
if conf.get("arch") == "fusion": print(*(conf.get("body_conf") or {}).get("front_ends", ["rnnoise", "deepfilternet3"]))' \
    "$denoiser_config")
  log "standalone denoiser: noisy/clean pairs${front_ends:+ with $front_ends}, training ($denoiser_config, log:" \
    "$expdir/train.log)"
  for dset in "$train_set" "$valid_set"; do
    # shellcheck disable=SC2086
    [ -f "dump/denoise/$dset/clean.scp" ] || ${train_cmd} "dump/denoise/$dset/log/make_pairs.log" \
      python -m espnet_softvc.bin.make_pairs "dump/$dset/wav.scp" "dump/denoise/$dset" --copies 2 --nj "$nj" \
      ${noise_dir:+--noise_dir "$noise_dir"} ${front_ends:+--front_ends $front_ends}
  done
  pair_opts() {  # mode set
    echo "--${1}_data_path_and_name_and_type dump/denoise/$2/noisy.scp,units,kaldi_ark" \
      "--${1}_data_path_and_name_and_type dump/denoise/$2/clean.scp,feats,kaldi_ark"
  }
  # shellcheck disable=SC2046
  ${train_cmd} exp/stats_denoiser/log/collect_stats.log \
    python -m espnet_softvc.bin.softvc_train --collect_stats true --config "$denoiser_config" \
    $(pair_opts train "$train_set") $(pair_opts valid "$valid_set") --output_dir exp/stats_denoiser --ngpu 0 \
    --num_workers 0
  # shellcheck disable=SC2046,SC2086
  ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
    python -m espnet_softvc.bin.softvc_train --config "$denoiser_config" \
    $(pair_opts train "$train_set") $(pair_opts valid "$valid_set") \
    --train_shape_file exp/stats_denoiser/train/feats_shape --valid_shape_file exp/stats_denoiser/valid/feats_shape \
    --output_dir "$expdir" --resume true --ngpu "$ngpu" $train_args
  if [ -z "$front_ends" ]; then
    for kind in $kinds; do
      for dset in $test_sets; do
        ${decode_cmd} "exp/softvc_$kind/decode_${dset}_denoiser/log/denoise.log" \
          python -m espnet_softvc.bin.denoise "exp/softvc_$kind/decode_$dset/norm/feats.scp" \
          "exp/softvc_$kind/decode_${dset}_denoiser/norm" --model_file "$expdir/$inference_model" \
          --train_config "$expdir/config.yaml"
      done
    done
  fi
  # real speech in recorded noise (the tiny corpus: data/realdev + data/realdev_noise): ours next to RNNoise and
  # DeepFilterNet3 (a mel denoiser also after each of them); on the transcribed real speech (data/realread) also what
  # the outside judges hear (WER, DNSMOS). The tables go into RESULTS.md (stage 8)
  if [ -s data/realdev/wav.scp ] && [ -s data/realdev_noise/wav.scp ]; then
    ${train_cmd} "$expdir/real_noise/log/score.log" \
      python -m espnet_softvc.bin.score_denoising data/realdev/wav.scp data/realdev_noise/wav.scp \
      "$expdir/real_noise" --model_file "$expdir/$inference_model" --train_config "$expdir/config.yaml"
    if [ -s data/realread/text ]; then
      ${train_cmd} "$expdir/real_noise_realread/log/score.log" \
        python -m espnet_softvc.bin.score_denoising data/realread/wav.scp data/realdev_noise/wav.scp \
        "$expdir/real_noise_realread" --model_file "$expdir/$inference_model" --train_config "$expdir/config.yaml" \
        --judge --text data/realread/text ${vocoder_file:+--vocoder "$vocoder_file"}
    fi
  fi
fi

score_results() {  # exp/RESULTS.md, results.csv, mels_<utt>.png, curves.png (the committed RESULTS.md is curated)
  local maxlenratio
  maxlenratio=$(python -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get("maxlenratio", 10.0))' \
    "$baseline_inference_config")
  ${train_cmd} exp/log/score.log \
    python -m espnet_softvc.bin.results exp dump --set "$eval_set" --train_set "$train_set" --out_dir exp --nj "$nj" \
    --corpus "$corpus_name" --maxlenratio "$maxlenratio" --text "dump/$eval_set/text" \
    --wav_scp "dump/$eval_set/wav.scp" ${vocoder_file:+--vocoder_file "$vocoder_file"}
  log "results: $PWD/exp/RESULTS.md (table), results.csv, mels_*.png, curves.png; judges' scores per utterance in" \
    "exp/*/decode_${eval_set}*/score/ and exp/reference/*/score/"
}
if run_stage 8; then
  score_results
fi

baseline_data_opts() {  # mode set with_fastspeech2_data -> ESPnet data options of the stock baselines
  local o="--$1_data_path_and_name_and_type dump/discrete/$2/text,text,text"
  o+=" --$1_data_path_and_name_and_type dump/$2/feats.scp,speech,kaldi_ark"
  if [ "$3" = true ]; then
    o+=" --$1_data_path_and_name_and_type dump/baselines/$2/durations,durations,text_int"
    o+=" --$1_data_path_and_name_and_type dump/baselines/$2/pitch.scp,pitch,kaldi_ark"
    o+=" --$1_data_path_and_name_and_type dump/baselines/$2/energy.scp,energy,kaldi_ark"
  fi
  echo "$o"
}
baseline() {  # train one stock ESPnet model on the discrete units, then decode (free-running, teacher-forced)
  local model=$1 expdir=exp/tts_$1 stats=exp/stats_baselines fs2=false extra_opts="" config
  config=$(config_of "$model")
  if [ "$model" = fastspeech2 ]; then
    fs2=true extra_opts="--pitch_normalize_conf stats_file=$stats/train/pitch_stats.npz"
    extra_opts+=" --energy_normalize_conf stats_file=$stats/train/energy_stats.npz"
  fi
  log "training $expdir ($config, log: $expdir/train.log)"
  # shellcheck disable=SC2046,SC2086
  ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
    python -m espnet2.bin.tts_train --config "$config" $baseline_common_opts \
    --normalize global_mvn --normalize_conf "stats_file=$stats/train/feats_stats.npz" $extra_opts \
    $(baseline_data_opts train "$train_set" $fs2) $(baseline_data_opts valid "$valid_set" $fs2) \
    --train_shape_file "$stats/train/text_shape" --train_shape_file "$stats/train/speech_shape" \
    --valid_shape_file "$stats/valid/text_shape" --valid_shape_file "$stats/valid/speech_shape" \
    --output_dir "$expdir" --resume true --ngpu "$ngpu" $ddp_opts $train_args
  # free-running test sets with $baseline_inference_config (maxlenratio 3: 1.5x the reference length); the same
  # teacher-forced, and the first $baseline_tf_utts train utterances (L1 train). FastSpeech2 teacher-forced:
  # baseline_decode (tts_inference cannot give it pitch and energy).
  head -n "$baseline_tf_utts" "dump/discrete/$train_set/text" | cut -d' ' -f1 >"$expdir/train_tf_keys"
  local mode dset outdir keys tf_opts
  for mode in $test_sets $(printf '%s_tf ' $test_sets) "${train_set}_tf"; do
    dset=${mode%_tf} outdir=$expdir/decode_$mode keys="" tf_opts=""
    log "decoding $outdir with $inference_model"
    [ "$mode" = "${train_set}_tf" ] && keys="--key_file $expdir/train_tf_keys"
    if [ "$mode" != "$dset" ] && [ "$fs2" = true ]; then
      # shellcheck disable=SC2086
      ${decode_cmd} --gpu "$ngpu" "$outdir/log/decode.log" \
        python -m espnet_softvc.bin.baseline_decode "$expdir/config.yaml" "$expdir/$inference_model" \
        "dump/discrete/$dset/text" "dump/$dset/feats.scp" "dump/baselines/$dset" "$outdir" $keys
    else
      [ "$mode" != "$dset" ] &&
        tf_opts="--use_teacher_forcing true --data_path_and_name_and_type dump/$dset/feats.scp,speech,kaldi_ark"
      # shellcheck disable=SC2086
      ${decode_cmd} --gpu "$ngpu" "$outdir/log/decode.log" \
        python -m espnet2.bin.tts_inference --config "$baseline_inference_config" --ngpu "$ngpu" \
        --train_config "$expdir/config.yaml" --model_file "$expdir/$inference_model" \
        --data_path_and_name_and_type "dump/discrete/$dset/text,text,text" $tf_opts $keys --output_dir "$outdir"
    fi
  done
}

if run_stage 9; then
  # Stock ESPnet TTS models on the same discrete units (text, --token_type word) and the same dumped Soft-VC mels
  # (--odim 128, GlobalMVN) of the same kept utterances: Tacotron2 without / with guided attention, Transformer-TTS,
  # FastSpeech2.
  [ -f "dump/discrete/$train_set/text" ] || die "stage 9 needs the discrete units of stage 3 (--unit_type discrete or both)"
  baseline_common_opts="--token_type word --token_list dump/discrete/$train_set/tokens.txt --cleaner none --g2p none"
  baseline_common_opts+=" --odim 128"
  for dset in $all_sets; do
    if [ ! -f "dump/baselines/$dset/durations" ]; then
      log "FastSpeech2 durations (2 frames per unit), token-averaged pitch and energy: dump/baselines/$dset"
      # shellcheck disable=SC2086
      ${train_cmd} "dump/baselines/$dset/log/baseline_data.log" \
        python -m espnet_softvc.bin.baseline_data "dump/$dset/feats.scp" "dump/discrete/$dset/text" \
        "dump/$dset/wav.scp" "dump/baselines/$dset" --token_list "dump/discrete/$train_set/tokens.txt" --nj "$nj" \
        $pipe_opt
    fi
  done
  if [ ! -f exp/stats_baselines/train/feats_stats.npz ]; then
    log "statistics of the baselines (one collect_stats for all: mels, given pitch and energy)"
    # shellcheck disable=SC2046,SC2086
    ${train_cmd} exp/stats_baselines/log/collect_stats.log \
      python -m espnet2.bin.tts_train --collect_stats true $baseline_common_opts --normalize none --ngpu 0 \
      --num_workers 0 $(baseline_data_opts train "$train_set" true) $(baseline_data_opts valid "$valid_set" true) \
      --output_dir exp/stats_baselines
  fi
  # On CPU each training uses one thread: run $nj at once. On a GPU, one after the other.
  at_once=1
  [ "$ngpu" -eq 0 ] && at_once=$nj
  pids=()
  for model in $baselines; do
    baseline "$model" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$at_once" ]; then
      for pid in "${pids[@]}"; do wait "$pid" || die "baseline training failed"; done
      pids=()
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "baseline training failed"; done
  score_results  # RESULTS.md again, now with the baselines
fi

if run_stage 10; then
  # Each packed model reproduces its source model: exp/softvc_<kind> alone, and exp/softvc_<kind>_postnet (the same
  # acoustic model with its stage-7 denoising postnet, part of that model) where stage 7 trained it. The standalone
  # denoiser exp/denoiser_softvc is never packed with an acoustic model. The model card says what is applied.
  packed_tags=()
  for kind in $kinds; do
    for tag in "softvc_$kind" "softvc_${kind}_postnet"; do
      expdir=exp/$tag
      if [ "$tag" != "softvc_$kind" ] && [ ! -f "$expdir/$inference_model" ]; then continue; fi
      packed=$expdir/${tag}_${inference_model%.*}.zip
      pack_opts=(--train_config "$expdir/config.yaml" --model_file "$expdir/$inference_model" --tag "$tag"
        --outpath "$packed")
      [ -f exp/RESULTS.md ] && pack_opts+=(--results exp/RESULTS.md)
      log "packing $expdir -> $packed"
      python -m espnet_softvc.bin.pack "${pack_opts[@]}"
      packed_tags+=("$tag")
    done
  done
  if [ "$skip_upload" = false ]; then  # like egs2/TEMPLATE/tts1: a clone of the HF repo, git-lfs, push
    [ -n "$hf_repo" ] || die "--hf_repo is needed for the upload (e.g. --hf_repo <user>/softvc_soft_ljspeech)"
    if [ -z "$hf_tag" ]; then
      [ "$unit_type" != both ] || die "one model per Hugging Face repo: give --hf_tag (one of: ${packed_tags[*]})"
      hf_tag=softvc_$unit_type
    fi
    [[ " ${packed_tags[*]} " == *" $hf_tag "* ]] || die "--hf_tag $hf_tag: not packed here (packed: ${packed_tags[*]})"
    git lfs --version >/dev/null 2>&1 || die "the upload needs git-lfs"
    expdir=exp/$hf_tag
    packed=$expdir/${hf_tag}_${inference_model%.*}.zip
    dir_repo=$expdir/hf_${hf_repo//\//_}
    [ -d "$dir_repo" ] || git clone "https://huggingface.co/$hf_repo" "$dir_repo"
    unzip -o "$packed" -d "$dir_repo"  # README.md in the zip is the model card
    (cd "$dir_repo" && git lfs track "*.pth" "*.npz" && git add . &&
      { git diff --cached --quiet || git commit -m "Update $hf_tag"; } && git push)
    log "uploaded $packed to https://huggingface.co/$hf_repo"
  else
    log "upload skipped (--skip_upload false --hf_repo <user>/<name> [--hf_tag TAG] uploads one of: ${packed_tags[*]})"
  fi
fi

if run_stage 11; then
  # Voice conversion, the demo flow on every wav of data/<set> (--convert_sets: held-out speakers, real recordings):
  # content encoder of stage 3 -> each acoustic model -> vocoder, then the outside judges: WER against the source
  # text (a set without one: against the ASR's transcript of the source), resemblyzer similarity to the target (mean
  # embedding of $convert_ref_utts train utterances) and to the source utterance, DNSMOS. The sources themselves are
  # scored the same way (exp/convert_sources/<set>/score: the paper's "ground truth" row). Tables in RESULTS.md.
  convert_encoder() {  # kind -> softvc-convert's content encoder options
    encoder_files "$1" | sed 's/--checkpoint/--content_encoder/'
  }
  if [ -z "$convert_sets" ]; then
    log "no --convert_sets: nothing to convert"
  else
    head -n "$convert_ref_utts" "dump/$train_set/wav.scp" >exp/convert_target_wav.scp
    for dset in $convert_sets; do  # the sources: the first N utterances of each speaker (utt2spk order), scored
      [ -f "data/$dset/wav.scp" ] || die "--convert_sets $dset: data/$dset/wav.scp not found"
      srcdir=exp/convert_sources/$dset
      mkdir -p "$srcdir"
      awk -v n="${convert_utts_per_spk:-0}" 'n == 0 || ++count[$2] <= n' "data/$dset/utt2spk" |
        filter_scp - "data/$dset/wav.scp" >"$srcdir/wav.scp"
      text_opts=()  # no transcript: no WER (the ASR's transcript of the source is the conversions' reference)
      [ -f "data/$dset/text" ] && text_opts=(--text "data/$dset/text")
      [ -f "$srcdir/score/summary.json" ] ||
        ${decode_cmd} "$srcdir/log/score.log" \
          python -m espnet_softvc.bin.score "$srcdir/wav.scp" "${text_opts[@]}" --ref_dir exp/convert_target_wav.scp \
          --out_dir "$srcdir/score" --nj "$nj"
    done
    for kind in $kinds; do
      for dset in $convert_sets; do
        expdir=exp/softvc_$kind outdir=exp/softvc_$kind/convert_$dset srcdir=exp/convert_sources/$dset
        [ -f "$outdir/score/summary.json" ] && continue
        log "converting $srcdir/wav.scp ($(wc -l <"$srcdir/wav.scp") utterances of data/$dset)" \
          "into the target voice with $expdir/$inference_model -> $outdir/wav"
        mkdir -p "$outdir"
        # shellcheck disable=SC2046
        ${decode_cmd} --gpu "$ngpu" "$outdir/log/convert.log" \
          python -m espnet_softvc.bin.convert "$srcdir/wav.scp" "$outdir/wav" $(convert_encoder "$kind") \
          --acoustic_model "$expdir/$inference_model" ${vocoder_file:+--vocoder "$vocoder_file"} --nj "$nj" \
          --device "$device"
        text_opts=(--asr_ref)  # no transcript: the ASR's transcript of the source is the reference
        [ -f "data/$dset/text" ] && text_opts=(--text "data/$dset/text")
        ${decode_cmd} "$outdir/log/score.log" \
          python -m espnet_softvc.bin.score "$outdir/wav" "${text_opts[@]}" --ref_dir exp/convert_target_wav.scp \
          --src_dir "$srcdir/wav.scp" --out_dir "$outdir/score" --nj "$nj"
      done
    done
    log "samples page: $PWD/samples/index.html (source / converted / target audio, mels and scores)"
    # shellcheck disable=SC2086
    ${train_cmd} exp/log/samples.log \
      python -m espnet_softvc.bin.samples exp data --target_scp exp/convert_target_wav.scp --out_dir samples \
      --per_speaker 2 --sets $convert_sets
    score_results  # RESULTS.md again, with the conversion rows
  fi
fi

if run_stage 12; then
  # Several target voices and your own voice (opt-in: --stop_stage 12; --spk_sets names the other voices).
  # (a) A multi-speaker model (ESPnet's convention: --tts_conf spks=S, utt2sid data "sids"): the train set is speaker
  #     0 (the target voice), the speakers of --spk_sets are 1..S-1, each with its last $spk_valid_utts utterances
  #     in the valid set. Asked for every voice (--sid), its dev speech is scored for similarity to every voice.
  # (b) The one-voice model --finetune_init (an ESPnet model file or an original checkpoint) fine-tuned with
  #     --init_param onto --finetune_spk, a voice of --spk_sets, with at most --finetune_seconds of its speech;
  #     dev speech before and after, scored the same way. Everything under exp/speakers/; tables in RESULTS.md.
  [ -n "$spk_sets" ] || die "stage 12 needs --spk_sets (data dirs of other voices, e.g. multi)"
  sp=exp/speakers
  mkdir -p "$sp/lists"
  for dset in $spk_sets; do
    [ -f "data/$dset/wav.scp" ] || die "--spk_sets $dset: data/$dset/wav.scp not found"
    dump_mels_set "$dset" "$min_wav_duration" "$max_wav_duration"
    for kind in $kinds; do dump_units_set "$kind" "$dset"; done
  done
  # shellcheck disable=SC2046,SC2086  # set names: no spaces
  LC_ALL=C sort -k1,1 $(printf 'dump/%s/utt2spk ' $spk_sets) >"$sp/lists/others.utt2spk"
  # shellcheck disable=SC2046,SC2086
  cat $(printf 'dump/%s/utt2num_frames ' $spk_sets) >"$sp/lists/others.utt2num_frames"
  { echo target; awk '!seen[$2]++ { print $2 }' "$sp/lists/others.utt2spk"; } | awk '{ print $1, NR - 1 }' \
    >"$sp/lists/spk2sid"
  n_spks=$(wc -l <"$sp/lists/spk2sid")
  [ -n "$finetune_spk" ] || finetune_spk=$(awk 'NR == 2 { print $1 }' "$sp/lists/spk2sid")
  grep -q "^$finetune_spk " "$sp/lists/spk2sid" || die "--finetune_spk $finetune_spk: not a speaker of --spk_sets"
  awk -v n="$spk_valid_utts" -v t="$sp/lists/others_train.keys" -v v="$sp/lists/others_valid.keys" \
    'NR == FNR { total[$2]++; next } { print $1 > (++seen[$2] > total[$2] - n ? v : t) }' \
    "$sp/lists/others.utt2spk" "$sp/lists/others.utt2spk"
  awk -v spk="$finetune_spk" -v max="$finetune_seconds" 'FILENAME == ARGV[1] { if ($2 == spk) mine[$1]; next }
    FILENAME == ARGV[2] { frames[$1] = $2; next }
    ($1 in mine) && sum + frames[$1] / 100 <= max + 0 { sum += frames[$1] / 100; print $1 }' \
    "$sp/lists/others.utt2spk" "$sp/lists/others.utt2num_frames" "$sp/lists/others_train.keys" \
    >"$sp/lists/ft_train.keys"
  awk -v spk="$finetune_spk" '$2 == spk' "$sp/lists/others.utt2spk" | filter_scp - "$sp/lists/others_valid.keys" \
    >"$sp/lists/ft_valid.keys"
  subset() {  # OUT KEYS SET...: dump/OUT and dump/<kind>/OUT/units.scp, the utterances of KEYS in dump/SET...
    local out=$1 keys=$2 f kind
    shift 2
    mkdir -p "dump/$out"
    for f in feats.scp wav.scp utt2spk text utt2num_frames; do
      # shellcheck disable=SC2046
      filter_scp "$keys" $(printf "dump/%s/$f " "$@") |
        LC_ALL=C sort -k1,1 >"dump/$out/$f"
    done
    for kind in $kinds; do
      mkdir -p "dump/$kind/$out"
      # shellcheck disable=SC2046
      filter_scp "$keys" $(printf "dump/$kind/%s/units.scp " "$@") |
        LC_ALL=C sort -k1,1 >"dump/$kind/$out/units.scp"
    done
    # speaker ids: every utterance of the train and valid sets is the target voice (0)
    awk 'FILENAME == ARGV[1] { sid[$1] = $2; next } FILENAME == ARGV[2] { target[$1]; next }
      { print $1, ($1 in target) ? 0 : sid[$2] }' "$sp/lists/spk2sid" \
      <(cat "dump/$train_set/utt2spk" "dump/$valid_set/utt2spk") "dump/$out/utt2spk" >"dump/$out/utt2sid"
  }
  cut -d' ' -f1 "dump/$train_set/utt2spk" | cat - "$sp/lists/others_train.keys" >"$sp/lists/spk_train.keys"
  cut -d' ' -f1 "dump/$valid_set/utt2spk" | cat - "$sp/lists/others_valid.keys" >"$sp/lists/spk_valid.keys"
  # shellcheck disable=SC2086
  subset spk_train "$sp/lists/spk_train.keys" "$train_set" $spk_sets
  # shellcheck disable=SC2086
  subset spk_valid "$sp/lists/spk_valid.keys" "$valid_set" $spk_sets
  # shellcheck disable=SC2086
  subset ft_train "$sp/lists/ft_train.keys" $spk_sets
  # shellcheck disable=SC2086
  subset ft_valid "$sp/lists/ft_valid.keys" $spk_sets
  ft_seconds=$(filter_scp "$sp/lists/ft_train.keys" "$sp/lists/others.utt2num_frames" |
    awk '{ s += $2 / 100 } END { printf "%.0f", s }')
  log "speakers: $(cut -d' ' -f1 "$sp/lists/spk2sid" | tr '\n' ' ')($n_spks); fine-tuning onto $finetune_spk with" \
    "$(wc -l <"$sp/lists/ft_train.keys") utterances, $ft_seconds s"
  # references: the target's first $convert_ref_utts train utterances, every utterance of the other voices
  head -n "$convert_ref_utts" "dump/$train_set/wav.scp" >"$sp/lists/ref_target.scp"
  while read -r spk _; do
    [ "$spk" = target ] && continue
    awk -v spk="$spk" '$2 == spk' "$sp/lists/others.utt2spk" |
      filter_scp - <(cat "dump/spk_train/wav.scp" "dump/spk_valid/wav.scp") >"$sp/lists/ref_$spk.scp"
  done <"$sp/lists/spk2sid"
  ref_opts=()
  while read -r spk _; do ref_opts+=(--ref "$spk" "$sp/lists/ref_$spk.scp"); done <"$sp/lists/spk2sid"
  fit() {  # KIND EXPDIR TRAIN VALID "DATA OPTIONS" [TRAINING OPTIONS...]: collect_stats into EXPDIR/stats, then
    # the training into EXPDIR, on the dump sets TRAIN and VALID (+ DATA OPTIONS, split at spaces)
    local kind=$1 expdir=$2 train=$3 valid=$4 data=$5
    shift 5
    # shellcheck disable=SC2046,SC2086
    ${train_cmd} "$expdir/stats/log/collect_stats.log" \
      python -m espnet_softvc.bin.softvc_train --collect_stats true --config "$(acoustic_config "$kind")" \
      $(data_opts "$kind" train "$train") $(data_opts "$kind" valid "$valid") $data \
      --output_dir "$expdir/stats" --ngpu 0 --num_workers 0
    # shellcheck disable=SC2046,SC2086
    ${cuda_cmd} --gpu "$ngpu" "$expdir/train.log" \
      python -m espnet_softvc.bin.softvc_train --config "$(acoustic_config "$kind")" \
      $(data_opts "$kind" train "$train") $(data_opts "$kind" valid "$valid") $data \
      $(shape_opts "$expdir/stats") --output_dir "$expdir" --resume true --ngpu "$ngpu" $ddp_opts $train_args "$@"
  }
  speaker_model() {  # kind: (a) and (b) of this stage for one unit type
    local kind=$1 expdir init opts spk sid
    expdir=$sp/softvc_${kind}_spk
    log "training $expdir: $n_spks voices ($(acoustic_config "$kind") + spks, log: $expdir/train.log)"
    fit "$kind" "$expdir" spk_train spk_valid "--train_data_path_and_name_and_type dump/spk_train/utt2sid,sids,text_int
      --valid_data_path_and_name_and_type dump/spk_valid/utt2sid,sids,text_int" --tts_conf spks="$n_spks"
    opts=()
    while read -r spk sid; do
      decode "$expdir/$inference_model" "$eval_set" "$kind" "$expdir/decode_${eval_set}_$spk" --sid "$sid"
      opts+=(--pred "$spk" "$spk" "$expdir/decode_${eval_set}_$spk/wav")
    done <"$sp/lists/spk2sid"
    ${decode_cmd} "$expdir/score/log/score.log" \
      python -m espnet_softvc.bin.score_speakers "$expdir/score" "${ref_opts[@]}" "${opts[@]}"
    init=${finetune_init:-exp/softvc_$kind/$inference_model}
    expdir=$sp/softvc_${kind}_ft_$finetune_spk
    log "fine-tuning $init onto $finetune_spk -> $expdir (log: $expdir/train.log)"
    # shellcheck disable=SC2086
    fit "$kind" "$expdir" ft_train ft_valid "" --init_param "$init" $finetune_args
    decode "$init" "$eval_set" "$kind" "$expdir/decode_${eval_set}_before"
    decode "$expdir/$inference_model" "$eval_set" "$kind" "$expdir/decode_${eval_set}_after"
    ${decode_cmd} "$expdir/score/log/score.log" \
      python -m espnet_softvc.bin.score_speakers "$expdir/score" "${ref_opts[@]}" \
      --pred before "$finetune_spk" "$expdir/decode_${eval_set}_before/wav" \
      --pred after "$finetune_spk" "$expdir/decode_${eval_set}_after/wav"
  }
  for_each_kind speaker_model "stage 12 failed (exp/speakers/*/train.log, */score/log/score.log)"
  score_results  # RESULTS.md again, with the speaker tables
fi

current_stage=$stop_stage
log "done. Results: $PWD/exp/RESULTS.md (stage 8); models, plots and decoded mels/wavs:" \
  "$PWD/exp/softvc_*/{images,decode_$eval_set/norm,decode_$eval_set/wav}"
