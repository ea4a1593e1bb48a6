#!/usr/bin/env bash
# The speed figures of issue 14, at the shapes it names, one script after the other on a quiet
# machine (nothing else running). Each script prints its own ratios (ours and the peer in the same
# process run) and a JSON line; this collects the JSON lines in $OUT (default benchmarks/results.jsonl).
#   bash benchmarks/issue_shapes.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results.jsonl}
run() {
  echo "== $*" >&2
  python "$@" | tee /dev/stderr | grep '^{' | python -c "
import json, os, sys, time
for line in sys.stdin:
  record = json.loads(line)
  record.update(command=sys.argv[1], date=time.strftime('%Y-%m-%d %H:%M'), load_before=sys.argv[2])
  print(json.dumps(record))" "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT"
}
run benchmarks/train_step.py --batch=8 --seq=512 --attention=blocked
run benchmarks/train_step.py --batch=8 --seq=512 --attention=xla --skip_torch
run benchmarks/train_step.py --batch=8 --seq=512 --attention=blocked --logits_chunk=512 --skip_torch
run benchmarks/sampling.py --batches 1,64 --prompt_len 64 --new_tokens 128
run benchmarks/decode_attention.py --model smollm2_135m --batch 64 --slots 192
run benchmarks/decode_attention.py --model llama_125m --batch 8 --slots 96
run benchmarks/grpo_step.py --repeats 2
run benchmarks/corpus.py
