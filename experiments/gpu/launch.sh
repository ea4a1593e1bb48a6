#!/usr/bin/env bash
# Runs one config on a GPU node; one process sees all its local GPUs.
#
#   experiments/gpu/launch.sh [--dry_run] CONFIG WORKDIR [--config.x=y ...]
#
# Several nodes without SLURM: run the same command on each node, naming the coordinator
# (process 0's host and a free port), the number of processes and this node's index:
#   experiments/gpu/launch.sh --coordinator=node0:1234 --num_processes=2 --process_id=0 CONFIG WORKDIR
#   experiments/gpu/launch.sh --coordinator=node0:1234 --num_processes=2 --process_id=1 CONFIG WORKDIR
# These become JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID, which
# dsmath_jax.runtime.setup passes to jax.distributed.initialize. Under SLURM use slurm.sh.
# The workdir must be shared by all nodes (a network filesystem, gs:// or s3://).
# --dry_run prints the environment and the command instead of running them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/../common/run_or_print.sh"
ENVS=(XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}"
      XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_latency_hiding_scheduler=true")
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --dry_run) DRY_RUN=1 ;;
    --coordinator=*) ENVS+=(JAX_COORDINATOR_ADDRESS="${1#*=}") ;;
    --num_processes=*) ENVS+=(JAX_NUM_PROCESSES="${1#*=}") ;;
    --process_id=*) ENVS+=(JAX_PROCESS_ID="${1#*=}") ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
CONFIG=${1:?config}; WORKDIR=${2:?workdir}; shift 2
run env "${ENVS[@]}" python -m dsmath_jax.main --config="$CONFIG" --workdir="$WORKDIR" "$@"
