#!/usr/bin/env bash
# Accelerator figures in one short run (a few minutes on one H100): train-step MFU at ~1B in
# bf16, decode tok/s at 7B shapes (random weights), one GRPO step; writes one JSON.
#
#   bash benchmarks/gpu.sh                         # -> benchmarks/gpu_results.json
#   bash benchmarks/gpu.sh /tmp/h100.json          # another output path
#   bash benchmarks/gpu.sh --cpu_tiny /tmp/t.json  # toy shapes, checks the script on a CPU
# Needs jax with the accelerator plugin (pip install -U "jax[cuda12]"); what is measured and
# how: benchmarks/gpu_bench.py. Record the figures in benchmarks/README.md with the card named.
set -euo pipefail
cd "$(dirname "$0")/.."
# XLA's GPU allocator takes 75% of the card by default; the 7B decode wants more of it.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}"
if [[ " $* " == *" --cpu_tiny "* ]]; then export JAX_PLATFORMS=cpu; fi
python -c "import jax; print('devices:', jax.devices())"
exec python benchmarks/gpu_bench.py "$@"
