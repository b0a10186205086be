#!/usr/bin/env bash
# Slurm job runner with the same interface as utils/run_local.sh (Kaldi slurm.pl semantics):
#   utils/run_slurm.sh [--gpu N] [--mem M] [--num_threads N] [JOB=1:N] LOG COMMAND...
# Submits one sbatch array job and waits for it (sbatch --wait). Extra sbatch flags: $SLURM_EXTRA_OPTS
# (e.g. "--partition=gpu --time=24:00:00"). JOB becomes $SLURM_ARRAY_TASK_ID inside each task.
set -u
opts=()
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --gpu) [ "$2" -gt 0 ] && opts+=(--gres="gpu:$2") ;;
    --mem) opts+=(--mem="$2") ;;
    --num_threads) opts+=(--cpus-per-task="$2") ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
  shift 2
done
var=""; first=1; last=1
if [[ $1 =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; shift
fi
log=$1; shift
cmd="$*"
if [ -n "$var" ]; then log=${log//$var/%a}; cmd=${cmd//$var/\$SLURM_ARRAY_TASK_ID}; fi
mkdir -p "$(dirname "$log")"
# shellcheck disable=SC2086
sbatch --wait --parsable --array="$first-$last" --output="$log" ${SLURM_EXTRA_OPTS:-} "${opts[@]}" \
  --wrap "echo \"# $cmd\"; cd $PWD && . ./path.sh && $cmd"
