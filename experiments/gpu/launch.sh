#!/usr/bin/env bash
# Runs one config on a single multi-GPU node: one process sees all local GPUs as one mesh.
#
#   experiments/gpu/launch.sh configs/sft_deepseekmath_instruct.py runs/sft [--config.x=y ...]
#
# For several nodes, start the same command on each node with
#   JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i ... --config.distributed=True
# (or under SLURM, where jax.distributed.initialize() reads the job's environment).
set -euo pipefail
CONFIG=${1:?config}; WORKDIR=${2:?workdir}; shift 2
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_latency_hiding_scheduler=true"
python -c "import jax; print('devices:', jax.devices())"
exec python -m dsmath_jax.main --config="$CONFIG" --workdir="$WORKDIR" "$@"
