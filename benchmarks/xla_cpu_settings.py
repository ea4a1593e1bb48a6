"""Decode-step time under XLA CPU settings, compiled side by side in one process (dsmath_jax/xla_cpu.py).

  python benchmarks/xla_cpu_settings.py [--model smollm2_135m --batch 64 --prompt_len 64 --new_tokens 128]

The sampler's jitted decode is compiled once per setting with `compiler_options` (which replace the
XLA_FLAGS value of the option for that compile), then the settings are timed in turns, best of
`--repeats`. Step = (time(N new) - time(1 new)) / (N - 1), as in sampling.py. Settings:
  jaxlib_default  YNNPACK for dots and reductions (what jaxlib 0.10 does without dsmath_jax)
  dots_only       YNNPACK for dots only (what importing dsmath_jax sets)
  eigen           no YNNPACK (the sampler's choice for <= xla_cpu.SMALL_BATCH_ROWS rows)
Random weights, greedy, float32; prints one line per setting and a JSON line.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import common  # noqa: E402
from dsmath_jax import xla_cpu  # noqa: E402
from dsmath_jax.model import llama  # noqa: E402
from dsmath_jax.sample import sampler  # noqa: E402

_OPTION = xla_cpu.YNN_OPTION
SETTINGS = {
    "jaxlib_default": {_OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"},
    "dots_only": {_OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"},
    "eigen": {_OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"},
}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--model", default="smollm2_135m")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--prompt_len", type=int, default=64)
  parser.add_argument("--new_tokens", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  config = llama.LlamaConfig.from_config(common.model(args.model))
  params = jax.device_get(nn.unbox(llama.init_params(config, jax.random.key(0))))
  stops = sampler.stop_tables(None, config.vocab_size, ())
  batch = args.batch
  prompts = np.random.default_rng(0).integers(3, config.vocab_size, size=(batch, args.prompt_len)).astype(np.int32)

  def inputs(new_tokens):
    return (params, prompts, np.full((batch,), args.prompt_len, np.int32), np.arange(batch, dtype=np.int32),
            np.full((batch,), new_tokens, np.int32), sampler.as_key(0), np.float32(1), np.float32(1),
            np.int32(0), stops[0], stops[1], np.array([-1], np.int32))

  compiled, tokens = {}, {}
  for name, options in SETTINGS.items():
    for n in (1, args.new_tokens):
      fn = sampler._compiled(config, n, True, False, 1)
      compiled[name, n] = fn.lower(*inputs(n)).compile(compiler_options=options)
      tokens[name, n] = np.asarray(jax.block_until_ready(compiled[name, n](*inputs(n)))[0])
  times = {key: [] for key in compiled}
  for _ in range(args.repeats):
    for key, fn in compiled.items():
      start = time.perf_counter()
      jax.block_until_ready(fn(*inputs(key[1])))
      times[key].append(time.perf_counter() - start)
  results = dict(benchmark="xla_cpu_settings", model=args.model, batch=batch, prompt_len=args.prompt_len,
                 new_tokens=args.new_tokens, load_average=os.getloadavg()[0])
  for name in SETTINGS:
    step = (min(times[name, args.new_tokens]) - min(times[name, 1])) / (args.new_tokens - 1)
    same = bool((tokens[name, args.new_tokens] == tokens["dots_only", args.new_tokens]).all())
    print(f"{name:15s} {args.model} batch {batch}: decode step {step * 1e3:6.1f} ms ({batch / step:6.1f} tok/s); "
          f"greedy tokens equal dots_only's: {same}", flush=True)
    results[name] = dict(step_ms=step * 1e3, tokens_per_s=batch / step, same_tokens_as_dots_only=same)
  print(json.dumps(results))


if __name__ == "__main__":
  main()
