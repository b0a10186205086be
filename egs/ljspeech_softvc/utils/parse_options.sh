#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by run.sh after its defaults: `--name value` (or --name=value) sets the
# shell variable `name` (dashes become underscores) if it was defined; `--help` prints the script's header.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      script=$0; [ -f "$script" ] || script=$(basename "$0")  # the script may have cd'ed to its own dir
      sed -n '2,/^$/s/^# \{0,1\}//p' "$script"; exit 0 ;;
    --*=*) name=${1%%=*}; value=${1#*=}; shift ;;
    --*) name=$1; [ $# -ge 2 ] || { echo "$0: option $name needs a value" >&2; exit 1; }; value=$2; shift 2 ;;
    *) break ;;
  esac
  name=${name#--}; name=${name//-/_}
  if ! declare -p "$name" >/dev/null 2>&1; then
    echo "$0: unknown option --$name (see --help)" >&2; exit 1
  fi
  printf -v "$name" '%s' "$value"
done
