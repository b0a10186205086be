#!/usr/bin/env bash
# Local job runner with Kaldi run.pl semantics:
#   utils/run_local.sh [--gpu N] [--mem M] [--num_threads N] [JOB=FIRST:LAST] LOG COMMAND [ARG...]
# JOB in LOG and in each ARG is replaced by the job number; jobs run in parallel; each log holds the command (quoted
# so it can be pasted into a shell), its output and its exit status. Arguments reach COMMAND exactly as given
# (spaces, quotes and '$' included: nothing is re-parsed by a shell). Exits non-zero if any job failed, repeating
# the job's last 'error:' line.
set -u
while [[ $# -gt 0 && $1 == --* ]]; do shift 2; done  # resource options mean nothing locally
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

job_log() { if [ -n "$var" ]; then echo "${log//$var/$1}"; else echo "$log"; fi; }

pids=()
for ((job = first; job <= last; job++)); do
  joblog=$(job_log "$job")
  argv=("$@")
  [ -n "$var" ] && argv=("${argv[@]//$var/$job}")
  mkdir -p "$(dirname "$joblog")"
  (
    printf '#'
    printf ' %q' "${argv[@]}"
    printf '\n# started at %s\n' "$(date)"
    "${argv[@]}"
    status=$?
    echo "# ended at $(date) with status $status"
    exit $status
  ) >"$joblog" 2>&1 &
  pids+=($!)
done
failed=0
job=$first
for pid in "${pids[@]}"; do
  if ! wait "$pid"; then
    joblog=$(job_log "$job")
    failed=$((failed + 1))
    msg=$(grep '^error: ' "$joblog" | tail -n 1)
    echo "$0: job $job failed, see $joblog${msg:+: $msg}" >&2
  fi
  job=$((job + 1))
done
[ $failed -eq 0 ]
