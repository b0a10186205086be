# shellcheck shell=bash
# Job runners (Kaldi style). cmd_backend=local runs jobs on this machine; cmd_backend=slurm submits them with
# sbatch (see utils/run_slurm.sh; put partition/time flags in SLURM_EXTRA_OPTS). Set it in the environment or here.
# Both take Kaldi's run.pl / slurm.pl interface ([--gpu N] [JOB=FIRST:LAST] LOG COMMAND ARG...); those two live in
# a Kaldi or ESPnet checkout (egs2/TEMPLATE/*/utils), not in the espnet wheel this recipe runs on.
cmd_backend=${cmd_backend:-local}
case $cmd_backend in
  local) runner=utils/run_local.sh ;;
  slurm) runner=utils/run_slurm.sh ;;
  *) echo "cmd.sh: unknown cmd_backend=$cmd_backend (local|slurm)" >&2; exit 1 ;;
esac
export train_cmd="$runner" cuda_cmd="$runner" decode_cmd="$runner"
