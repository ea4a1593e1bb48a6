"""Load any checkpoint the pipeline meets into our param tree; save the one every stage hands on.

Each stage of DeepSeekMath (pretrain §2, SFT §3, reward model and GRPO §4) starts from the
previous stage's weights, so every training task ends with `save_pretrained(WORKDIR/"model")`
and the next one's `config.checkpoint` points at that directory. `load_pretrained` also reads
released checkpoints: a Hugging Face Llama/Mistral/Qwen2/Qwen3 directory or a GGUF file.

Loading streams: parameters are built one at a time on the host (a scan-stacked parameter
gathers its L layers, so the host peak is the largest stacked parameter, e.g. 2.7 GB of the
7B's 13.8 GB in bfloat16) and go straight to their NamedSharding with `jax.device_put`; orbax
restores straight into the shardings. No full host copy of the model is ever made.

A save_pretrained directory may be a gs:// URL (dsmath_jax.paths): orbax writes and reads the
params there through tensorstore, model.json and the tokenizer go through epath (the tokenizer is
downloaded to a local folder to load, as its libraries read local files). Hugging Face directories
and GGUF files are read from local paths only (memory-mapped safetensors / GGUF tensors).
"""
import dataclasses
import functools
import json
import os
import shutil
import tempfile
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from jax.sharding import NamedSharding, PartitionSpec

from dsmath_jax import atomic, paths
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.model import hf, llama

MODEL_JSON = "model.json"       # the LlamaConfig fields of a save_pretrained directory
PARAMS_DIR = "params"           # its orbax checkpoint


class Pretrained(NamedTuple):
  config: llama.LlamaConfig
  params: Any                   # plain arrays, scan-stacked under "layers" when config.scan_layers
  tokenizer: tokenizers.Tokenizer | None


# Fields of config.model that say how to run a model, not what it is: they apply to any loaded
# checkpoint (orbax, HF, GGUF), whose own shape fields win.
RUNTIME_FIELDS = ("dtype", "param_dtype", "scan_layers", "remat", "attention", "logits_chunk")


def load_or_init(checkpoint: str, model: llama.LlamaConfig, *, tokenizer: str = "", mesh=None,
                 rules=None) -> Pretrained:
  """The model a task starts from: `checkpoint` (orbax dir, HF dir or GGUF) with `model`'s
  run-time fields applied, or `model` itself with params None (the caller initializes).

  The tokenizer is the checkpoint's own, else `tokenizer` (a path or "byte"); it must fit the
  model's vocabulary. One loader for every task, so `--config.model.remat=full` means the same
  thing whatever the source.
  """
  runtime = {name: getattr(model, name) for name in RUNTIME_FIELDS}
  if checkpoint:
    stored = read_config(checkpoint)
    if checkpoint_kind(checkpoint) == "ours" and stored.scan_layers != model.scan_layers:
      raise ValueError(f"{checkpoint}: saved with scan_layers={stored.scan_layers}; run it with "
                       f"--config.model.scan_layers={stored.scan_layers} (orbax restores the stored layout)")
    loaded = load_pretrained(checkpoint, dtype=model.dtype, param_dtype=model.param_dtype, mesh=mesh,
                             rules=rules, config=dataclasses.replace(stored, **runtime))
    config = dataclasses.replace(loaded.config, **runtime)
    params, vocabulary = loaded.params, loaded.tokenizer
  else:
    config, params, vocabulary = model, None, None
  if vocabulary is None:
    if not tokenizer:
      raise ValueError(f"no tokenizer: the checkpoint {checkpoint!r} carries none and config.tokenizer is empty"
                       if checkpoint else "no tokenizer: set the config's tokenizer (a path or 'byte')")
    vocabulary = tokenizers.load_tokenizer(tokenizer)
  if vocabulary.vocab_size > config.vocab_size:
    raise ValueError(f"tokenizer of {checkpoint or tokenizer!r} has {vocabulary.vocab_size} tokens, more than "
                     f"the model's vocab_size {config.vocab_size}")
  return Pretrained(config, params, vocabulary)


def checkpoint_kind(path: str) -> str:
  """"gguf" | "hf" | "ours", or a FileNotFoundError that says what was expected."""
  if paths.is_remote(path):
    if (paths.path(path) / MODEL_JSON).is_file():
      return "ours"
    raise FileNotFoundError(
        f"checkpoint {path!r}: expected a save_pretrained directory ({MODEL_JSON} + {PARAMS_DIR}/) at this "
        f"URL (its {MODEL_JSON}, written last, is missing: not one, or a save cut short); Hugging Face "
        f"directories and GGUF files are read from local paths only: copy them to a local disk")
  if os.path.isfile(path) and path.endswith(".gguf"):
    return "gguf"
  if os.path.isdir(path):
    if os.path.isfile(os.path.join(path, MODEL_JSON)):
      return "ours"
    if os.path.isfile(os.path.join(path, "config.json")):
      return "hf"
  raise FileNotFoundError(
      f"checkpoint {path!r}: expected a *.gguf file, a Hugging Face directory (config.json + "
      f"*.safetensors) or a save_pretrained directory ({MODEL_JSON} + {PARAMS_DIR}/)")


def read_config(path: str, **overrides) -> llama.LlamaConfig:
  """The checkpoint's LlamaConfig (reads metadata only), with field overrides."""
  kind = checkpoint_kind(path)
  if kind == "ours":
    fields = _model_json(path)["config"]
  elif kind == "hf":
    fields = hf.read_config(path)
  else:
    from dsmath_jax.model import gguf
    fields = gguf.GGUFCheckpoint(path).config_fields()
  fields.update({k: v for k, v in overrides.items() if v is not None})
  return llama.LlamaConfig.from_config(fields)


def _model_json(path: str) -> dict:
  with (paths.path(path) / MODEL_JSON).open() as f:
    return json.load(f)


def abstract_params(config: llama.LlamaConfig):
  """(shapes: tree of ShapeDtypeStruct, logical specs: tree of PartitionSpec); costs no memory."""
  boxed = jax.eval_shape(functools.partial(llama.init_params, config), jax.random.key(0))
  return nn.unbox(boxed), nn.get_partition_spec(boxed)


def param_shardings(config: llama.LlamaConfig, mesh, rules):
  """NamedSharding per parameter from its logical axes (replicated on one device without a mesh)."""
  shapes, specs = abstract_params(config)
  if mesh is None:
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(lambda _: device, shapes)
  if rules is None:
    raise ValueError("load_pretrained: a mesh needs `rules` (config.logical_axis_rules)")
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def stream_params(config: llama.LlamaConfig, source, shardings, where: str):
  """Builds every parameter from `source.tensor(key, layer)` and places it; checks names/shapes.

  `source` is an hf.SafetensorsCheckpoint or a gguf.GGUFCheckpoint: it returns
  (checkpoint name, array in our layout, transposed?) and knows its tensor `names`.
  """
  shapes, _ = abstract_params(config)
  flat_shapes = traverse_util.flatten_dict(shapes, sep="/")
  flat_shardings = traverse_util.flatten_dict(shardings, sep="/")
  dtype = np.dtype(jnp.dtype(config.param_dtype))
  used = set()

  def fetch(key, layer, expected_shape):
    name, array, transposed = source.tensor(key, layer)
    if array.shape != tuple(expected_shape):
      stored = array.shape[::-1] if transposed else array.shape
      wanted = tuple(expected_shape)[::-1] if transposed else tuple(expected_shape)
      raise ValueError(f"{where}: tensor {name} has shape {tuple(stored)}, but the model config "
                       f"needs {tuple(wanted)} (our parameter {key})")
    used.add(name)
    return array

  params = {}
  for path, shape in flat_shapes.items():
    head, _, rest = path.partition("/")
    host = np.empty(shape.shape, dtype)
    if config.scan_layers and head == "layers":
      for layer in range(config.num_layers):
        host[layer] = fetch(rest, layer, shape.shape[1:])
    elif head.startswith("layers_"):
      host[...] = fetch(rest, int(head[len("layers_"):]), shape.shape)
    else:
      host[...] = fetch(path, None, shape.shape)
    # Wait for the copy: an in-flight transfer keeps its host buffer alive, and with async
    # dispatch every parameter's buffer would be alive at once (2x the model on the host).
    params[path] = jax.block_until_ready(jax.device_put(host, flat_shardings[path]))
    del host
  unused = source.names - used
  if config.tie_embeddings:
    unused -= {hf.TOP_NAMES["lm_head/kernel"][0]}
  if unused:
    raise ValueError(f"{where}: tensors the model config has no place for: {sorted(unused)[:8]}"
                     f"{' ...' if len(unused) > 8 else ''} ({len(unused)} in all; does the "
                     f"config's num_layers / tie_embeddings match the checkpoint?)")
  return traverse_util.unflatten_dict(params, sep="/")


def _restore_ours(path: str, config: llama.LlamaConfig, mesh, rules):
  """Orbax restore into the shardings; leaves not in the Transformer (heads) are replicated."""
  import orbax.checkpoint as ocp
  params_path = paths.check_orbax_dir(paths.join(path, PARAMS_DIR), "params")
  with ocp.StandardCheckpointer() as checkpointer:
    stored = checkpointer.metadata(params_path).item_metadata.tree
    flat_stored = traverse_util.flatten_dict(stored, sep="/")
    model_shardings = traverse_util.flatten_dict(param_shardings(config, mesh, rules), sep="/")
    replicated = (jax.sharding.SingleDeviceSharding(jax.devices()[0]) if mesh is None
                  else NamedSharding(mesh, PartitionSpec()))
    dtype = jnp.dtype(config.param_dtype)
    target = {}
    for name, meta in flat_stored.items():
      expected = model_shardings.get(name)
      leaf_dtype = dtype if jnp.issubdtype(meta.dtype, jnp.floating) else meta.dtype
      target[name] = jax.ShapeDtypeStruct(tuple(meta.shape), leaf_dtype,
                                          sharding=expected or replicated)
    missing = set(model_shardings) - set(flat_stored)
    if missing:
      raise ValueError(f"{params_path}: parameters missing for the config in {MODEL_JSON}: "
                       f"{sorted(missing)[:8]}")
    return checkpointer.restore(params_path, traverse_util.unflatten_dict(target, sep="/"))


def load_pretrained(path: str, *, dtype=None, param_dtype=None, mesh=None, rules=None,
                    config: llama.LlamaConfig | None = None) -> Pretrained:
  """A GGUF file, a HF Llama/Mistral/Qwen2/Qwen3 directory or a save_pretrained directory -> Pretrained.

  dtype / param_dtype override the compute and storage dtypes (default: the checkpoint's; float32
  for GGUF, which is dequantized). With mesh + rules every tensor goes straight to its
  NamedSharding. `config` loads into that shape instead of the checkpoint's own (e.g. a
  preset): any tensor that does not fit fails naming the tensor and both shapes.
  """
  kind = checkpoint_kind(path)
  if config is None:
    config = read_config(path, param_dtype=param_dtype)
    if dtype is None and kind != "ours":
      dtype = config.param_dtype       # compute in the storage dtype of a released checkpoint
  elif param_dtype is not None:
    config = dataclasses.replace(config, param_dtype=param_dtype)
  if dtype is not None:
    config = dataclasses.replace(config, dtype=jnp.dtype(dtype).name)
  config = dataclasses.replace(config, param_dtype=jnp.dtype(config.param_dtype).name)
  if kind == "ours":
    params = _restore_ours(path, config, mesh, rules)
    saved_tokenizer = _model_json(path).get("tokenizer")
    if not saved_tokenizer or saved_tokenizer == "byte":
      tokenizer = tokenizers.load_tokenizer(saved_tokenizer) if saved_tokenizer else None
    elif paths.is_remote(path):
      # Kept (not a temporary folder): a SentencePiece tokenizer re-reads its file to save itself.
      local = tempfile.mkdtemp(prefix="dsmath_jax_tokenizer_")
      tokenizer = tokenizers.load_tokenizer(paths.download_tree(paths.join(path, saved_tokenizer), local))
    else:
      tokenizer = tokenizers.load_tokenizer(os.path.join(path, saved_tokenizer))
    return Pretrained(config, params, tokenizer)
  shardings = param_shardings(config, mesh, rules)
  if kind == "hf":
    params = stream_params(config, hf.SafetensorsCheckpoint(path), shardings, path)
    has_tokenizer = any(os.path.isfile(os.path.join(path, n))
                        for n in ("tokenizer.json", "tokenizer.model"))
    tokenizer = tokenizers.load_tokenizer(path) if has_tokenizer else None
  else:
    from dsmath_jax.model import gguf
    checkpoint = gguf.GGUFCheckpoint(path)
    params = stream_params(config, checkpoint, shardings, path)
    tokenizer = tokenizers.GGUFTokenizer(path) if checkpoint.has_vocabulary else None
  return Pretrained(config, params, tokenizer)


def save_pretrained(directory: str, config: llama.LlamaConfig, params,
                    tokenizer: tokenizers.Tokenizer | None = None) -> str:
  """Orbax params + model.json (LlamaConfig fields, tokenizer location) + the tokenizer's files.

  Multi-host safe: every process calls it; orbax writes the shards, process 0 the JSON.
  Returns the directory, which `load_pretrained` takes.

  Everything is written into DIRECTORY.partial, which replaces `directory` only once complete
  (atomic.replace_dir, process 0, after every host's shards are down): a save that fails or is
  killed leaves the previous model whole, never new params beside an old model.json.

  In an object store (a gs:// URL), where a folder cannot be renamed, the old model's model.json is
  deleted first, then the folder, and the new one is written in place with model.json last (one
  object write): a save cut short leaves a folder without model.json, which load_pretrained refuses
  by name, never new params beside an old model.json; the previous model is not kept.
  """
  import orbax.checkpoint as ocp
  remote = paths.is_remote(directory)
  directory = os.fspath(paths.check_orbax_dir(directory, "save_pretrained directory"))
  staging = directory if remote else directory + ".partial"   # a name every host agrees on
  multihost = jax.process_count() > 1
  if jax.process_index() == 0:
    if remote:
      (paths.path(directory) / MODEL_JSON).unlink(missing_ok=True)
    paths.path(staging).rmtree(missing_ok=True)   # left by a save that was killed
    paths.path(staging).mkdir(parents=True)
  if multihost:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("save_pretrained: staging folder ready")
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(paths.path(staging) / PARAMS_DIR, params, force=True)
    if multihost:
      multihost_utils.sync_global_devices("save_pretrained: params written")
    if jax.process_index() == 0:
      tokenizer_ref = None
      if tokenizer is not None:
        with tempfile.TemporaryDirectory(prefix="dsmath_jax_tokenizer_") as local:
          saved = tokenizer.save(os.path.join(local, "tokenizer"))
          tokenizer_ref = os.path.relpath(saved, local)
          paths.upload_tree(local, staging)
      meta = {"format": "dsmath_jax", "config": dataclasses.asdict(config), "tokenizer": tokenizer_ref,
              "special_ids": None if tokenizer is None else dict(
                  bos=tokenizer.bos_id, eos=tokenizer.eos_id, pad=tokenizer.pad_id)}
      with atomic.write_file(paths.join(staging, MODEL_JSON)) as f:
        json.dump(meta, f, indent=1)
      if not remote:
        atomic.replace_dir(staging, directory)
  except BaseException:
    if jax.process_index() == 0 and not remote:
      shutil.rmtree(staging, ignore_errors=True)
    raise
  if multihost:
    multihost_utils.sync_global_devices("save_pretrained: in place")
  return directory
