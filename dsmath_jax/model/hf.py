"""Hugging Face decoder checkpoints (config.json + safetensors) without torch.

DeepSeekMath-Base/Instruct/RL 7B (paper §2-4) and DeepSeek LLM are released as LlamaForCausalLM
checkpoints; the Qwen2/Qwen2.5(-Math), Qwen3, Llama-3.x and Llama-compatible Mistral bases that
GRPO research starts from differ from it only by the decoder's switches (q/k/v biases, q/k
norms, llama3 RoPE frequencies). `model_type` picks the family; a flag the decoder cannot honour
(sliding-window attention in use, o_proj/MLP biases, another RoPE scaling) fails naming it.
Importing is a name table plus a transpose: HF stores a Linear weight
[out, in], our Dense kernel is [in, out]. Tensors are read one at a time through
`safetensors.numpy` (sharded checkpoints through their *.index.json), so loading streams;
`save_hf` writes the inverse (sharded with an index past `max_shard_bytes`).

A layer parameter is named by its per-layer path, e.g. "self_attn/q_proj/kernel"; top-level
parameters by their path, e.g. "embed_tokens/embedding". `layer` is None for top-level ones.
"""
import json
import os

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

# Our per-layer parameter path -> (HF name inside "model.layers.{i}.", transposed?).
LAYER_NAMES = {
    "self_attn/q_proj/kernel": ("self_attn.q_proj.weight", True),
    "self_attn/k_proj/kernel": ("self_attn.k_proj.weight", True),
    "self_attn/v_proj/kernel": ("self_attn.v_proj.weight", True),
    "self_attn/o_proj/kernel": ("self_attn.o_proj.weight", True),
    "mlp/gate_proj/kernel": ("mlp.gate_proj.weight", True),
    "mlp/up_proj/kernel": ("mlp.up_proj.weight", True),
    "mlp/down_proj/kernel": ("mlp.down_proj.weight", True),
    "input_layernorm/scale": ("input_layernorm.weight", False),
    "post_attention_layernorm/scale": ("post_attention_layernorm.weight", False),
    "self_attn/q_proj/bias": ("self_attn.q_proj.bias", False),     # qkv_bias (Qwen2)
    "self_attn/k_proj/bias": ("self_attn.k_proj.bias", False),
    "self_attn/v_proj/bias": ("self_attn.v_proj.bias", False),
    "self_attn/q_norm/scale": ("self_attn.q_norm.weight", False),  # qk_norm (Qwen3)
    "self_attn/k_norm/scale": ("self_attn.k_norm.weight", False),
}
# Our top-level parameter path -> (HF name, transposed?).
TOP_NAMES = {
    "embed_tokens/embedding": ("model.embed_tokens.weight", False),
    "norm/scale": ("model.norm.weight", False),
    "lm_head/kernel": ("lm_head.weight", True),
}
# Tensors some exporters write that carry nothing the model needs.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def hf_name(key: str, layer: int | None) -> tuple[str, bool]:
  """(HF tensor name, transposed?) of our parameter `key` (of layer `layer`)."""
  if layer is None:
    return TOP_NAMES[key]
  name, transposed = LAYER_NAMES[key]
  return f"model.layers.{layer}.{name}", transposed


# model_type -> (architecture written on export, the decoder switches the family implies).
FAMILIES = {
    "llama": ("LlamaForCausalLM", dict(qkv_bias=False, qk_norm=False)),
    "mistral": ("MistralForCausalLM", dict(qkv_bias=False, qk_norm=False)),
    "qwen2": ("Qwen2ForCausalLM", dict(qkv_bias=True, qk_norm=False)),
    "qwen3": ("Qwen3ForCausalLM", dict(qkv_bias=False, qk_norm=True)),
}


def _sliding_window_in_use(hf: dict, model_type: str) -> str | None:
  """Why the checkpoint attends through a sliding window (which the decoder lacks), or None."""
  layer_types = hf.get("layer_types") or []
  if any(t != "full_attention" for t in layer_types):
    return f"layer_types has {sorted(set(layer_types) - {'full_attention'})} layers"
  window = hf.get("sliding_window")
  if model_type == "mistral":
    # Mistral applies its window to every layer; one no shorter than the context is full attention.
    if window is not None and window < hf.get("max_position_embeddings", 4096):
      return f"sliding_window={window} < max_position_embeddings"
  elif model_type in ("qwen2", "qwen3") and hf.get("use_sliding_window") and window is not None:
    if hf.get("max_window_layers", 28) < hf["num_hidden_layers"]:
      return (f"use_sliding_window=true with sliding_window={window} from layer "
              f"max_window_layers={hf.get('max_window_layers', 28)} on")
  return None


def config_from_hf(hf: dict, where: str = "config.json") -> dict:
  """LlamaConfig fields from a transformers config dict (llama, mistral, qwen2, qwen3);
  rejects, naming the field, what the decoder lacks."""
  model_type = hf.get("model_type")
  if model_type not in FAMILIES:
    raise ValueError(f"{where}: model_type={model_type!r} (architectures={hf.get('architectures')}); "
                     f"supported: {sorted(FAMILIES)}")
  for flag in ("attention_bias", "mlp_bias"):
    # Qwen2's q/k/v biases come with the family; attention_bias also puts one on o_proj.
    if hf.get(flag):
      raise ValueError(f"{where}: {flag}=true is not supported (the decoder has no o_proj/MLP biases)")
  if hf.get("hidden_act", "silu") != "silu":
    raise ValueError(f"{where}: hidden_act={hf['hidden_act']!r}; only 'silu' is supported")
  window = _sliding_window_in_use(hf, model_type)
  if window:
    raise ValueError(f"{where}: sliding-window attention is not supported ({window}); the "
                     f"decoder attends over the whole context")
  rope = dict(hf.get("rope_parameters") or {})
  rope.update(hf.get("rope_scaling") or {})
  rope_type = rope.get("rope_type") or rope.get("type") or "default"
  if rope_type == "default":
    rope_scaling = None
  elif rope_type == "llama3":
    try:
      rope_scaling = (float(rope["factor"]), float(rope["low_freq_factor"]),
                      float(rope["high_freq_factor"]), int(rope["original_max_position_embeddings"]))
    except KeyError as e:
      raise ValueError(f"{where}: rope_type 'llama3' without {e.args[0]!r}") from e
  else:
    raise ValueError(f"{where}: rope scaling {rope_type!r} is not supported (plain RoPE or 'llama3')")
  if float(rope.get("partial_rotary_factor", 1.0)) != 1.0:
    raise ValueError(f"{where}: partial_rotary_factor={rope['partial_rotary_factor']} is not supported")
  heads = hf["num_attention_heads"]
  dtype = hf.get("dtype") or hf.get("torch_dtype") or "float32"
  return dict(
      vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
      num_layers=hf["num_hidden_layers"], num_heads=heads,
      num_kv_heads=hf.get("num_key_value_heads") or heads,
      head_dim=hf.get("head_dim") or hf["hidden_size"] // heads, mlp_dim=hf["intermediate_size"],
      rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))),
      rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
      max_position_embeddings=hf.get("max_position_embeddings", 4096),
      tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
      param_dtype=dtype if dtype in ("float32", "bfloat16", "float16") else "float32",
      rope_scaling=rope_scaling, **FAMILIES[model_type][1])


def family_of(config) -> str:
  """The model_type a config exports as: the family whose switches it has."""
  if config.qkv_bias and config.qk_norm:
    raise ValueError("no Hugging Face family has both q/k/v biases and q/k norms")
  return "qwen3" if config.qk_norm else "qwen2" if config.qkv_bias else "llama"


def config_to_hf(config, *, bos_id: int | None = None, eos_id: int | None = None,
                 pad_id: int | None = None) -> dict:
  """A config.json that transformers loads as Llama/Qwen2/Qwen3ForCausalLM (v4 and v5 rope spellings)."""
  model_type = family_of(config)
  rope = {"rope_type": "default", "rope_theta": config.rope_theta}
  if config.rope_scaling is not None:
    if model_type != "llama":
      raise ValueError(f"rope_scaling (llama3) cannot be exported as {model_type}")
    factor, low, high, original = config.rope_scaling
    rope = dict(rope_type="llama3", rope_theta=config.rope_theta, factor=factor, low_freq_factor=low,
                high_freq_factor=high, original_max_position_embeddings=original)
  out = {
      "architectures": [FAMILIES[model_type][0]], "model_type": model_type,
      "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
      "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
      "num_key_value_heads": config.num_kv_heads, "head_dim": config.head_dim,
      "intermediate_size": config.mlp_dim, "hidden_act": "silu",
      "rms_norm_eps": config.rms_norm_eps, "max_position_embeddings": config.max_position_embeddings,
      "rope_theta": config.rope_theta, "rope_parameters": rope,
      "tie_word_embeddings": config.tie_embeddings,
      "bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id,
      "torch_dtype": config.param_dtype, "dtype": config.param_dtype,
  }
  if config.rope_scaling is not None:
    out["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
  if model_type == "llama":
    out.update(attention_bias=False, mlp_bias=False)
  else:
    out.update(use_sliding_window=False, sliding_window=None, max_window_layers=config.num_layers)
  if model_type == "qwen3":
    out["attention_bias"] = False
  return out


class SafetensorsCheckpoint:
  """The tensors of a HF model directory (one file, or shards listed by an index file)."""

  def __init__(self, directory: str):
    self.directory = directory
    index_path = os.path.join(directory, "model.safetensors.index.json")
    if os.path.isfile(index_path):
      with open(index_path) as f:
        weight_map = json.load(f)["weight_map"]
      self.files = {name: os.path.join(directory, shard) for name, shard in weight_map.items()}
    else:
      single = [n for n in sorted(os.listdir(directory)) if n.endswith(".safetensors")]
      if not single:
        raise FileNotFoundError(f"{directory}: no *.safetensors files (torch *.bin checkpoints "
                                f"are not read: convert them with safetensors first)")
      self.files = {}
      for file_name in single:
        path = os.path.join(directory, file_name)
        with safe_open(path, framework="np") as f:
          self.files.update({name: path for name in f.keys()})

  @property
  def names(self) -> set[str]:
    return {n for n in self.files if not n.endswith(_IGNORED_SUFFIXES)}

  def get(self, name: str) -> np.ndarray:
    path = self.files.get(name)
    if path is None:
      raise KeyError(f"{self.directory}: the checkpoint has no tensor {name!r}")
    # Opened per tensor: a handle kept open keeps every page read so far mapped (resident).
    with safe_open(path, framework="np") as f:
      return f.get_tensor(name)

  def tensor(self, key: str, layer: int | None) -> tuple[str, np.ndarray, bool]:
    """(HF name, array in our layout, transposed?) of our parameter `key` of `layer`."""
    name, transposed = hf_name(key, layer)
    array = self.get(name)
    return name, (array.T if transposed else array), transposed


def read_config(directory: str) -> dict:
  path = os.path.join(directory, "config.json")
  with open(path) as f:
    try:
      return config_from_hf(json.load(f), path)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from e


def layer_params(params: dict, num_layers: int, scan_layers: bool):
  """Yields (key, layer, array) of every parameter of our tree (stacked or layers_i)."""
  def flat(tree, prefix=""):
    for k, v in tree.items():
      if isinstance(v, dict):
        yield from flat(v, f"{prefix}{k}/")
      else:
        yield f"{prefix}{k}", v

  for key, array in flat(params):
    head, _, rest = key.partition("/")
    if scan_layers and head == "layers":
      for layer in range(num_layers):
        yield rest, layer, array[layer]
    elif head.startswith("layers_"):
      yield rest, int(head[len("layers_"):]), array
    else:
      yield key, None, array


def save_hf(directory: str, config, params, *, max_shard_bytes: int = 5 << 30,
            special_ids: dict | None = None) -> None:
  """Writes config.json + model.safetensors (or shards + index) that transformers loads as the
  config's family (config_to_hf).

  Tensors are fetched to the host one at a time (`np.asarray` of one layer's slice), so a
  sharded model never needs to be gathered whole.
  """
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(config_to_hf(config, **(special_ids or {})), f, indent=2)
  shards, current, current_bytes = [], {}, 0
  for key, layer, array in layer_params(params, config.num_layers, config.scan_layers):
    name, transposed = hf_name(key, layer)
    host = np.asarray(array)
    host = np.ascontiguousarray(host.T if transposed else host)
    if current and current_bytes + host.nbytes > max_shard_bytes:
      shards.append(current)
      current, current_bytes = {}, 0
    current[name] = host
    current_bytes += host.nbytes
  shards.append(current)
  if len(shards) == 1:
    save_file(shards[0], os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    return
  weight_map, total = {}, 0
  for i, shard in enumerate(shards):
    file_name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
    save_file(shard, os.path.join(directory, file_name), metadata={"format": "pt"})
    weight_map.update({name: file_name for name in shard})
    total += sum(a.nbytes for a in shard.values())
  with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
