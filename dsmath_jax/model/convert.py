"""Task `convert`: any checkpoint load_pretrained reads -> an orbax model dir or a HF directory.

Released DeepSeekMath 7B weights (paper §2-4) come as HF safetensors; every stage here reads and
writes `save_pretrained` directories (orbax). This task goes either way, streaming tensors:

  python -m dsmath_jax.main --config=configs/convert.py --workdir=runs/convert \\
    --config.source=deepseek-math-7b-base/ --config.output=ckpt/dsmath_base --config.format=orbax
  python -m dsmath_jax.main --config=configs/convert.py --workdir=runs/convert \\
    --config.source=runs/sft/model --config.output=export/sft_hf --config.format=hf

`source` may also be "random": a randomly initialized `config.model` with the byte tokenizer
(the `:tiny` config uses it; a random 7B checkpoint tests a cluster's loading path).
"""
import dataclasses
import json
import os
import time

import flax.linen as nn
import jax
from absl import logging

from dsmath_jax import sharding
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.model import hf, llama, loading


def random_pretrained(preset_fields: dict, mesh, rules, seed: int = 0) -> loading.Pretrained:
  """A randomly initialized model, initialized straight into its shardings (no host copy)."""
  config = llama.LlamaConfig.from_config(preset_fields)
  shardings = loading.param_shardings(config, mesh, rules)
  init = jax.jit(lambda rng: nn.unbox(llama.init_params(config, rng)), out_shardings=shardings)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    params = init(jax.random.key(seed))
  return loading.Pretrained(config, params, tokenizers.ByteTokenizer())


def run(config, workdir: str) -> dict:
  """Loads `config.source`, writes `config.output` (default WORKDIR/model) in `config.format`."""
  if not config.source:
    raise ValueError("convert: set --config.source=PATH (a *.gguf, a HF dir, a save_pretrained "
                     "dir, or 'random')")
  if config.format not in ("orbax", "hf"):
    raise ValueError(f"convert: config.format={config.format!r}; expected 'orbax' or 'hf'")
  output = config.output or os.path.join(workdir, "model")
  mesh = sharding.make_mesh(config.mesh)
  rules = config.logical_axis_rules
  start = time.perf_counter()
  if config.source == "random":
    model_fields = dict(config.model)
    if config.param_dtype:
      model_fields["param_dtype"] = config.param_dtype
    pretrained = random_pretrained(model_fields, mesh, rules, config.seed)
  else:
    pretrained = loading.load_pretrained(config.source, param_dtype=config.param_dtype or None,
                                         mesh=mesh, rules=rules)
  load_seconds = time.perf_counter() - start
  model_config, params, tokenizer = pretrained
  if config.tokenizer:
    tokenizer = tokenizers.load_tokenizer(config.tokenizer)
  logging.info("convert: loaded %s (%.2fB parameters, %s) in %.1f s", config.source,
               model_config.num_params / 1e9, model_config.param_dtype, load_seconds)

  start = time.perf_counter()
  if config.format == "orbax":
    loading.save_pretrained(output, model_config, params, tokenizer)
  else:
    special = {} if tokenizer is None else dict(
        bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
    hf.save_hf(output, model_config, params, max_shard_bytes=int(config.max_shard_gb * 2**30),
               special_ids=special)
    if tokenizer is not None:
      tokenizer.save(output)
  summary = dict(source=config.source, output=os.path.abspath(output), format=config.format,
                 num_params=model_config.num_params, param_dtype=model_config.param_dtype,
                 tokenizer=type(tokenizer).__name__ if tokenizer else None,
                 load_seconds=round(load_seconds, 2),
                 save_seconds=round(time.perf_counter() - start, 2),
                 config=dataclasses.asdict(model_config))
  logging.info("convert: wrote %s (%s) in %.1f s", output, config.format, summary["save_seconds"])
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "convert.json"), "w") as f:
      json.dump(summary, f, indent=1)
  return summary
