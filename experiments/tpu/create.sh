#!/usr/bin/env bash
# Creates a TPU VM or pod slice and installs dsmath_jax on every worker.
#
#   experiments/tpu/create.sh NAME ZONE ACCELERATOR [RUNTIME]
#   experiments/tpu/create.sh dsmath-v4-32 us-central2-b v4-32
#
# Needs gcloud configured with a project that has TPU quota. The repo is copied from
# this checkout (so local changes travel), then `pip install -e .[corpus]` runs on all workers.
set -euo pipefail
NAME=${1:?name}; ZONE=${2:?zone}; ACCEL=${3:?accelerator type, e.g. v4-8 or v5litepod-16}
RUNTIME=${4:-tpu-ubuntu2204-base}
gcloud compute tpus tpu-vm create "$NAME" --zone="$ZONE" --accelerator-type="$ACCEL" --version="$RUNTIME"
tar czf /tmp/dsmath_jax.tgz --exclude=.git --exclude=runs -C "$(git rev-parse --show-toplevel)" .
gcloud compute tpus tpu-vm scp /tmp/dsmath_jax.tgz "$NAME":~/ --zone="$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command='
  set -e; mkdir -p ~/dsmath_jax && tar xzf ~/dsmath_jax.tgz -C ~/dsmath_jax
  cd ~/dsmath_jax && pip install -q -U "jax[tpu]" -f https://storage.googleapis.com/jax-releases/libtpu_releases.html
  pip install -q -e ".[corpus]"
  python -c "import jax; print(jax.process_index(), jax.device_count(), jax.local_device_count())"'
