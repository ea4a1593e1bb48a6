#!/usr/bin/env bash
# Runs one config on every worker of a TPU VM / pod slice (multi-host via jax.distributed).
#
#   experiments/tpu/launch.sh [--dry_run] NAME ZONE CONFIG WORKDIR [--config.x=y ...]
#   experiments/tpu/launch.sh dsmath-v4-32 us-central2-b configs/sft_deepseekmath_instruct.py gs://BUCKET/runs/sft
#
# Every worker runs the same command. On a pod slice the TPU runtime tells each worker its peers,
# and dsmath_jax.runtime.setup calls jax.distributed.initialize() (TPU_WORKER_HOSTNAMES lists
# several hosts), joins them into one mesh, and each host feeds its slice of the global batch.
# The workdir must be a path all workers share (gs://); orbax writes one checkpoint from all hosts.
# Re-running the same command after a preemption resumes from the latest checkpoint.
# --dry_run prints the gcloud command instead of running it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/../common/run_or_print.sh"
if [ "${1:-}" = --dry_run ]; then DRY_RUN=1; shift; fi
NAME=${1:?name}; ZONE=${2:?zone}; CONFIG=${3:?config}; WORKDIR=${4:?workdir}; shift 4
MAIN=$(main_command "$CONFIG" "$WORKDIR" "$@")
run gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all \
  --command="cd ~/dsmath_jax && nohup $MAIN > ~/run.log 2>&1 & sleep 5; tail -n 5 ~/run.log"
echo "follow with: gcloud compute tpus tpu-vm ssh $NAME --zone=$ZONE --worker=0 --command='tail -f ~/run.log'" >&2
