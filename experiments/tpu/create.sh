#!/usr/bin/env bash
# Creates a TPU VM or pod slice and installs dsmath_jax on every worker.
#
#   experiments/tpu/create.sh [--dry_run] [--queued] NAME ZONE ACCELERATOR [RUNTIME]
#   experiments/tpu/create.sh dsmath-v4-32 us-central2-b v4-32
#   experiments/tpu/create.sh --queued dsmath-v5e us-west4-a v5litepod-16 v2-alpha-tpuv5-lite
#
# Needs gcloud configured with a project that has TPU quota. --queued asks through queued
# resources (waits until capacity is granted; the node id is NAME). The repo is copied from this
# checkout (so local changes travel), then the README's install line runs on all workers with the
# pinned versions of constraints.txt. --dry_run prints every command instead of running it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/../common/run_or_print.sh"
QUEUED=0
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in --dry_run) DRY_RUN=1 ;; --queued) QUEUED=1 ;; *) echo "unknown option $1" >&2; exit 2 ;; esac
  shift
done
NAME=${1:?name}; ZONE=${2:?zone}; ACCEL=${3:?accelerator type, e.g. v4-8 or v5litepod-16}
RUNTIME=${4:-tpu-ubuntu2204-base}
if [ "$QUEUED" = 1 ]; then
  run gcloud compute tpus queued-resources create "$NAME" --node-id="$NAME" --zone="$ZONE" \
    --accelerator-type="$ACCEL" --runtime-version="$RUNTIME"
  # Queued resources return at once; wait until the node is ACTIVE.
  if [ "${DRY_RUN:-0}" != 1 ]; then
    until [ "$(gcloud compute tpus queued-resources describe "$NAME" --zone="$ZONE" --format='value(state.state)')" = ACTIVE ]; do
      sleep 30
    done
  fi
else
  run gcloud compute tpus tpu-vm create "$NAME" --zone="$ZONE" --accelerator-type="$ACCEL" --version="$RUNTIME"
fi
run tar czf /tmp/dsmath_jax.tgz --exclude=.git --exclude=runs -C "$(cd "$HERE/../.." && pwd)" .
run gcloud compute tpus tpu-vm scp /tmp/dsmath_jax.tgz "$NAME":~/ --zone="$ZONE" --worker=all
INSTALL='set -e; mkdir -p ~/dsmath_jax && tar xzf ~/dsmath_jax.tgz -C ~/dsmath_jax && cd ~/dsmath_jax'
INSTALL+='; pip install -q -c constraints.txt -e ".[corpus]" "jax[tpu]"'
INSTALL+='; python -c "import jax; print(jax.process_index(), jax.device_count(), jax.local_device_count())"'
run gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command="$INSTALL"
