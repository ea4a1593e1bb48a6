"""The attention of one decode step over every layer, under two KV-cache key layouts, in one process.

  python benchmarks/decode_attention.py [--model smollm2_135m --batch 64 --slots 192]

`transposed_keys` is what `llama.cached_attention` does: keys cached [batch, kv_heads, head_dim,
slots], scores = queries x keys as a plain row-major product, softmax along the minor axis.
`slots_major_keys` is the layout it replaced: keys cached [batch, kv_heads, slots, head_dim], the
cache as the first dot's left operand (scores [.., slots, queries]), then swapped for the softmax.
Both compute the same attention (checked here to 1e-5); only the attention is timed (random
queries and cache, the masked softmax and both dots for each of the model's layers, one jitted
call per step), best of --repeats loops of 10 calls. Prints one line per layout and a JSON line.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from configs import common  # noqa: E402
from dsmath_jax import xla_cpu  # noqa: E402
from dsmath_jax.model import llama  # noqa: E402


def slots_major_keys(q, k, v, visible):
  """q [batch, kv, queries, head_dim]; k, v [batch, kv, slots, head_dim]; visible [batch, 1, 1, slots]."""
  batch_dims = ((0, 1), (0, 1))
  scores = jax.lax.dot_general(k, q, (((3,), (3,)), batch_dims))           # [batch, kv, slots, queries]
  scores = jnp.swapaxes(scores, 2, 3) * (q.shape[-1] ** -0.5)
  probs = jax.nn.softmax(jnp.where(visible, scores, -1e30), axis=-1)
  return jax.lax.dot_general(probs, v, (((3,), (2,)), batch_dims))


def transposed_keys(q, k_t, v, visible):
  """k_t [batch, kv, head_dim, slots]; the rest as slots_major_keys."""
  batch_dims = ((0, 1), (0, 1))
  scores = jax.lax.dot_general(q, k_t, (((3,), (2,)), batch_dims)) * (q.shape[-1] ** -0.5)
  probs = jax.nn.softmax(jnp.where(visible, scores, -1e30), axis=-1)
  return jax.lax.dot_general(probs, v, (((3,), (2,)), batch_dims))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--model", default="smollm2_135m")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--slots", type=int, default=192, help="cache slots read per step (prompt + new tokens)")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  config = llama.LlamaConfig.from_config(common.model(args.model))
  groups = config.num_heads // config.num_kv_heads
  shape = (args.batch, config.num_kv_heads)
  rng = np.random.default_rng(0)
  normal = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float32)
  layers = config.num_layers
  q = [normal(*shape, groups, config.head_dim) for _ in range(layers)]
  k = [normal(*shape, args.slots, config.head_dim) for _ in range(layers)]
  v = [normal(*shape, args.slots, config.head_dim) for _ in range(layers)]
  k_t = [jnp.swapaxes(x, 2, 3) for x in k]
  visible = jnp.asarray(rng.random((args.batch, 1, 1, args.slots)) < 0.9)
  small = args.batch <= xla_cpu.SMALL_BATCH_ROWS           # the sampler's choice of dot library
  options = xla_cpu.SMALL_BATCH_DECODE if small and jax.default_backend() == "cpu" else None
  layouts = {"slots_major_keys": (slots_major_keys, k), "transposed_keys": (transposed_keys, k_t)}
  compiled, outputs = {}, {}
  for name, (attend, keys) in layouts.items():
    step = lambda q, keys, v, attend=attend: [attend(*args_, visible) for args_ in zip(q, keys, v)]
    compiled[name] = jax.jit(step).lower(q, keys, v).compile(compiler_options=options)
    outputs[name] = jax.block_until_ready(compiled[name](q, keys, v))
  error = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(*outputs.values()))
  if error > 1e-5:
    raise SystemExit(f"the layouts disagree: max |difference| {error}")
  best = {name: float("inf") for name in layouts}
  for _ in range(args.repeats):                            # the layouts in turns
    for name, (_, keys) in layouts.items():
      start = time.perf_counter()
      for _ in range(10):
        out = compiled[name](q, keys, v)
      jax.block_until_ready(out)
      best[name] = min(best[name], (time.perf_counter() - start) / 10)
  for name, seconds in best.items():
    print(f"{name:18s} {seconds * 1e3:8.2f} ms per step ({layers} layers)")
  results = dict(benchmark="decode_attention", model=args.model, batch=args.batch, slots=args.slots,
                 dots="eigen" if options else "default", ms={n: s * 1e3 for n, s in best.items()},
                 ratio_transposed_over_slots_major=best["transposed_keys"] / best["slots_major_keys"],
                 max_abs_difference=error, date=time.strftime("%Y-%m-%d %H:%M"), load_before=os.getloadavg())
  print(json.dumps(results))


if __name__ == "__main__":
  main()
