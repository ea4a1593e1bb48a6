#!/usr/bin/env bash
# Runs one config on every worker of a TPU VM / pod slice (multi-host via jax.distributed).
#
#   experiments/tpu/launch.sh NAME ZONE configs/sft_deepseekmath_instruct.py gs://BUCKET/runs/sft [--config.x=y ...]
#
# Every worker runs the same command; `jax.distributed.initialize()` (called by the training
# tasks when TPU_WORKER_HOSTNAMES lists several hosts, or with --config.distributed=True) joins
# them into one mesh, and each host feeds its slice of the global batch. The workdir must be a
# path all workers share (gs:// for checkpoints); orbax writes one checkpoint from all hosts.
# Re-running the same command after a preemption resumes from the latest checkpoint.
set -euo pipefail
NAME=${1:?name}; ZONE=${2:?zone}; CONFIG=${3:?config}; WORKDIR=${4:?workdir}; shift 4
gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command="
  cd ~/dsmath_jax && nohup python -m dsmath_jax.main --config=$CONFIG --workdir=$WORKDIR \
    --config.distributed=True $* > ~/run.log 2>&1 &
  sleep 5; tail -n 5 ~/run.log"
echo "follow with: gcloud compute tpus tpu-vm ssh $NAME --zone=$ZONE --worker=0 --command='tail -f ~/run.log'"
