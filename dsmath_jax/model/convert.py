"""Task `convert`: any checkpoint load_pretrained reads -> an orbax model dir, a HF directory or a GGUF file.

Released DeepSeekMath 7B weights (paper §2-4) come as HF safetensors; every stage here reads and
writes `save_pretrained` directories (orbax). This task goes either way, streaming tensors:

  python -m dsmath_jax.main --config=configs/convert.py --workdir=runs/convert \\
    --config.source=deepseek-math-7b-base/ --config.output=ckpt/dsmath_base --config.format=orbax
  python -m dsmath_jax.main --config=configs/convert.py --workdir=runs/convert \\
    --config.source=runs/sft/model --config.output=export/sft_hf --config.format=hf
  python -m dsmath_jax.main --config=configs/convert.py --workdir=runs/convert \\
    --config.source=runs/sft/model --config.output=export/sft.gguf --config.format=gguf \\
    --config.gguf_type=Q8_0          (llama.cpp / ollama; tokenizer and chat template inside)

`source` may also be "random": a randomly initialized `config.model` with the byte tokenizer
(the `:tiny` config uses it; a random 7B checkpoint tests a cluster's loading path).
"""
import dataclasses
import json
import os
import time
from typing import NamedTuple

import flax.linen as nn
import jax
from absl import logging

from dsmath_jax import atomic, config_types, runtime
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.model import gguf_export, hf, llama, loading

FORMATS = ("orbax", "hf", "gguf")
SECTIONS = ("task", "model", "mesh", "distributed", "logical_axis_rules")


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
  """The top-level keys of configs/convert.py."""
  source: str                    # *.gguf | HF dir | save_pretrained dir | "random" (init of config.model)
  output: str                    # "" = WORKDIR/model (WORKDIR/model.gguf for format gguf)
  format: str                    # "orbax" (save_pretrained dir) | "hf" (config.json + safetensors) | "gguf"
  param_dtype: str               # "" keeps the checkpoint's; e.g. "bfloat16"
  tokenizer: str                 # attach this tokenizer instead of the checkpoint's ("" = keep)
  max_shard_gb: float            # HF export: safetensors shard size
  gguf_type: str                 # GGUF export: "F32" | "F16" | "BF16" | "Q8_0" (norms and biases stay F32)
  seed: int                      # source="random": init seed

  def __post_init__(self):
    if not self.source:
      raise ValueError("convert: set --config.source=PATH (a *.gguf, a HF dir, a save_pretrained "
                       "dir, or 'random')")
    if self.format not in FORMATS:
      raise ValueError(f"convert: config.format={self.format!r}; expected 'orbax', 'hf' or 'gguf'")
    if self.format == "gguf" and self.gguf_type not in gguf_export.FILE_TYPES:
      raise ValueError(f"convert: config.gguf_type={self.gguf_type!r}; expected one of "
                       f"{', '.join(gguf_export.FILE_TYPES)}")

  @classmethod
  def from_config(cls, config) -> "ConvertConfig":
    return config_types.from_section(cls, config, where="config", ignore=SECTIONS)


def random_pretrained(config: llama.LlamaConfig, mesh, rules, seed: int = 0) -> loading.Pretrained:
  """A randomly initialized model, initialized straight into its shardings (no host copy)."""
  shardings = loading.param_shardings(config, mesh, rules)
  init = runtime.jit_under_mesh(lambda rng: nn.unbox(llama.init_params(config, rng)), mesh, rules,
                                out_shardings=shardings)
  return loading.Pretrained(config, init(jax.random.key(seed)), tokenizers.ByteTokenizer())


class TaskConfig(NamedTuple):
  """configs/convert.py as typed values."""
  convert: ConvertConfig
  model: llama.LlamaConfig
  mesh: runtime.MeshConfig


def typed_config(config) -> TaskConfig:
  """The door: every key of the config read once, unknown or missing keys refused by name."""
  return TaskConfig(ConvertConfig.from_config(config), llama.LlamaConfig.from_config(config.model),
                    runtime.MeshConfig.from_config(config.mesh))


def run(config, workdir: str) -> dict:
  """Task `convert`: typed values (typed_config) and the mesh, then `convert`."""
  config_types.write_config(config, workdir)
  c = typed_config(config)
  mesh, rules = runtime.setup(config)
  return convert(c.convert, c.model, workdir, mesh=mesh, rules=rules)


def convert(c: ConvertConfig, model: llama.LlamaConfig, workdir: str, *, mesh, rules) -> dict:
  """Loads `c.source` (or a random `model`), writes `c.output` (default WORKDIR/model) in `c.format`."""
  output = c.output or os.path.join(workdir, "model.gguf" if c.format == "gguf" else "model")
  start = time.perf_counter()
  if c.source == "random":
    if c.param_dtype:
      model = dataclasses.replace(model, param_dtype=c.param_dtype)
    pretrained = random_pretrained(model, mesh, rules, c.seed)
  else:
    pretrained = loading.load_pretrained(c.source, param_dtype=c.param_dtype or None, mesh=mesh,
                                         rules=rules)
  load_seconds = time.perf_counter() - start
  model_config, params, tokenizer = pretrained
  if c.tokenizer:
    tokenizer = tokenizers.load_tokenizer(c.tokenizer)
  logging.info("convert: loaded %s (%.2fB parameters, %s) in %.1f s", c.source,
               model_config.num_params / 1e9, model_config.param_dtype, load_seconds)

  start = time.perf_counter()
  if c.format == "orbax":
    loading.save_pretrained(output, model_config, params, tokenizer)
  elif c.format == "gguf":
    gguf_export.save_gguf(output, model_config, params, tokenizer, file_type=c.gguf_type,
                          name=os.path.splitext(os.path.basename(output))[0])
  else:
    special = {} if tokenizer is None else dict(
        bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
    with atomic.directory(output) as staging:   # the old export stays whole until the new one is
      hf.save_hf(staging, model_config, params, max_shard_bytes=int(c.max_shard_gb * 2**30),
                 special_ids=special)
      if tokenizer is not None:
        tokenizer.save(staging)
  summary = dict(source=c.source, output=os.path.abspath(output), format=c.format,
                 gguf_type=c.gguf_type if c.format == "gguf" else None,
                 num_params=model_config.num_params, param_dtype=model_config.param_dtype,
                 tokenizer=type(tokenizer).__name__ if tokenizer else None,
                 load_seconds=round(load_seconds, 2),
                 save_seconds=round(time.perf_counter() - start, 2),
                 config=dataclasses.asdict(model_config))
  logging.info("convert: wrote %s (%s) in %.1f s", output, c.format, summary["save_seconds"])
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with atomic.write_file(os.path.join(workdir, "convert.json")) as f:
      json.dump(summary, f, indent=1)
  return summary
