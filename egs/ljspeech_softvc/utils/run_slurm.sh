#!/usr/bin/env bash
# Slurm job runner with the same interface as utils/run_local.sh (Kaldi slurm.pl semantics):
#   utils/run_slurm.sh [--gpu N] [--mem M] [--num_threads N] [JOB=FIRST:LAST] LOG COMMAND [ARG...]
# Submits one sbatch array job (--array=FIRST-LAST) and waits for it (sbatch --wait). Extra sbatch flags:
# $SLURM_EXTRA_OPTS (e.g. "--partition=gpu --time=24:00:00"). Each argument is quoted with printf %q into the
# --wrap command, so spaces, quotes and '$' arrive intact; JOB inside an argument becomes $SLURM_ARRAY_TASK_ID.
set -u
opts=()
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --gpu) if [ "$2" -gt 0 ]; then opts+=(--gres="gpu:$2"); fi ;;
    --mem) opts+=(--mem="$2") ;;
    --num_threads) opts+=(--cpus-per-task="$2") ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
  shift 2
done
var=""
first=1
last=1
if [[ $# -gt 0 && $1 =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[3]}
  shift
fi
if [ $# -lt 2 ]; then
  echo "usage: $0 [--gpu N] [--mem M] [--num_threads N] [JOB=FIRST:LAST] LOG COMMAND [ARG...]" >&2
  exit 1
fi
log=$1
shift

quote() {  # one argument -> shell words that evaluate to it, with $var replaced by the array task id
  local arg=$1 out="" piece
  if [ -z "$var" ] || [[ $arg != *"$var"* ]]; then
    printf '%q' "$arg"
    return
  fi
  while [[ $arg == *"$var"* ]]; do
    piece=${arg%%"$var"*}
    [ -n "$piece" ] && out+=$(printf '%q' "$piece")
    # shellcheck disable=SC2016  # expanded in the job
    out+='"${SLURM_ARRAY_TASK_ID}"'
    arg=${arg#*"$var"}
  done
  [ -n "$arg" ] && out+=$(printf '%q' "$arg")
  printf '%s' "$out"
}

cmd=""
for arg in "$@"; do cmd+="${cmd:+ }$(quote "$arg")"; done
[ -n "$var" ] && log=${log//$var/%a}
mkdir -p "$(dirname "$log")"
# In the job: the recipe's environment, the command as run (one line), its output and exit status in the log.
wrap="cd $(printf '%q' "$PWD") && . ./path.sh || exit 1"
wrap+="; printf '#'; printf ' %q' $cmd; printf '\\n# started at %s\\n' \"\$(date)\""
wrap+="; $cmd; status=\$?; echo \"# ended at \$(date) with status \$status\"; exit \$status"
# shellcheck disable=SC2086  # SLURM_EXTRA_OPTS holds several flags
sbatch --wait --parsable --array="$first-$last" --output="$log" ${SLURM_EXTRA_OPTS:-} "${opts[@]}" --wrap "$wrap"
