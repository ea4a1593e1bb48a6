#!/usr/bin/env bash
# Submits one config to SLURM as a multi-node GPU job: one task per node, each seeing all its GPUs.
#
#   experiments/gpu/slurm.sh [--dry_run] [--nodes=N] [--gpus_per_node=G] [--time=HH:MM:SS]
#       [--partition=P] [--account=A] CONFIG WORKDIR [--config.x=y ...]
#   experiments/gpu/slurm.sh --nodes=4 --gpus_per_node=8 configs/pretrain.py /shared/runs/pretrain
#
# srun starts the same command on every node; SLURM's environment (SLURM_NTASKS > 1) makes
# dsmath_jax.runtime.setup call jax.distributed.initialize(), which reads the node list, the
# process count and this task's id from SLURM. The workdir must be shared by all nodes.
# --dry_run prints the sbatch command instead of submitting it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/../common/run_or_print.sh"
NODES=1; GPUS=8; TIME=24:00:00; EXTRA=()
while [[ $# -gt 0 && $1 == --* && $1 != --config* ]]; do
  case $1 in
    --dry_run) DRY_RUN=1 ;;
    --nodes=*) NODES=${1#*=} ;;
    --gpus_per_node=*) GPUS=${1#*=} ;;
    --time=*) TIME=${1#*=} ;;
    --partition=*) EXTRA+=(--partition="${1#*=}") ;;
    --account=*) EXTRA+=(--account="${1#*=}") ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
CONFIG=${1:?config}; WORKDIR=${2:?workdir}; shift 2
MAIN=$(main_command "$CONFIG" "$WORKDIR" "$@")
run sbatch --job-name=dsmath_jax --nodes="$NODES" --ntasks-per-node=1 --gpus-per-node="$GPUS" \
  --time="$TIME" --output="slurm-%j.out" "${EXTRA[@]}" \
  --wrap="export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92; srun --kill-on-bad-exit=1 $MAIN"
