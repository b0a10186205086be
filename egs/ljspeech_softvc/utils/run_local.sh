#!/usr/bin/env bash
# Local job runner with Kaldi run.pl semantics:
#   utils/run_local.sh [--gpu N] [--mem M] [--num_threads N] [JOB=1:N] LOG COMMAND...
# JOB in LOG and COMMAND is replaced by each job number; jobs run in parallel; each log holds the command, its
# output and its exit status. Exit non-zero if any job failed, repeating the job's last 'error:' line.
set -u
while [[ $# -gt 0 && $1 == --* ]]; do shift 2; done  # resource options mean nothing locally
var=""; first=1; last=1
if [[ $1 =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; shift
fi
log=$1; shift
pids=()
for ((job = first; job <= last; job++)); do
  joblog=$log; cmd="$*"
  if [ -n "$var" ]; then joblog=${log//$var/$job}; cmd=${cmd//$var/$job}; fi
  mkdir -p "$(dirname "$joblog")"
  (
    echo "# $cmd"; echo "# started at $(date)"
    bash -c "$cmd"; status=$?
    echo "# ended at $(date) with status $status"; exit $status
  ) >"$joblog" 2>&1 &
  pids+=($!)
done
failed=0; job=$first
for pid in "${pids[@]}"; do
  if ! wait "$pid"; then
    joblog=$log; [ -n "$var" ] && joblog=${log//$var/$job}
    failed=$((failed + 1))
    msg=$(grep '^error: ' "$joblog" | tail -n 1)
    echo "$0: job $job failed, see $joblog${msg:+: $msg}" >&2
  fi
  job=$((job + 1))
done
[ $failed -eq 0 ]
