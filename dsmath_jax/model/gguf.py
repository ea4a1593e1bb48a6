"""GGUF (llama.cpp) checkpoints of the llama, qwen2 and qwen3 architectures, dequantized to
float32 with `gguf`.

Small released chat models (SmolLM2-135M-Instruct ships as a Q4_1 GGUF) let the whole
pipeline, sampling and evaluation included, run against a real model on a CPU. Tensors are
memory-mapped and dequantized one at a time. For `llama` (Mistral included) llama.cpp's
converter permutes the rows of attn_q / attn_k for its interleaved RoPE; we undo it as
transformers' GGUF loader does, which brings them back to HF's rotate-half layout that
model/llama.py uses (qwen2/qwen3 are written unpermuted). Llama-3.x's "llama3" RoPE is stored
as a `rope_freqs.weight` tensor of per-frequency divisors; it is read back as the
released (factor, 1, 4, 8192) scaling after checking that it reproduces every divisor.
"""
import math

import numpy as np

from dsmath_jax.gguf_file import read_gguf

# Quantizations we dequantize (and test against transformers' own dequantizer).
SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                   "Q6_K")

# Our per-layer parameter path -> (GGUF name inside "blk.{i}.", transposed?).
LAYER_NAMES = {
    "self_attn/q_proj/kernel": ("attn_q.weight", True),
    "self_attn/k_proj/kernel": ("attn_k.weight", True),
    "self_attn/v_proj/kernel": ("attn_v.weight", True),
    "self_attn/o_proj/kernel": ("attn_output.weight", True),
    "mlp/gate_proj/kernel": ("ffn_gate.weight", True),
    "mlp/up_proj/kernel": ("ffn_up.weight", True),
    "mlp/down_proj/kernel": ("ffn_down.weight", True),
    "input_layernorm/scale": ("attn_norm.weight", False),
    "post_attention_layernorm/scale": ("ffn_norm.weight", False),
    "self_attn/q_proj/bias": ("attn_q.bias", False),               # qwen2
    "self_attn/k_proj/bias": ("attn_k.bias", False),
    "self_attn/v_proj/bias": ("attn_v.bias", False),
    "self_attn/q_norm/scale": ("attn_q_norm.weight", False),       # qwen3
    "self_attn/k_norm/scale": ("attn_k_norm.weight", False),
}
# general.architecture -> the decoder switches it implies (llama.cpp writes Mistral as llama).
ARCHITECTURES = {"llama": dict(qkv_bias=False, qk_norm=False),
                 "qwen2": dict(qkv_bias=True, qk_norm=False),
                 "qwen3": dict(qkv_bias=False, qk_norm=True)}
TOP_NAMES = {
    "embed_tokens/embedding": ("token_embd.weight", False),
    "norm/scale": ("output_norm.weight", False),
    "lm_head/kernel": ("output.weight", True),
}
ROPE_FREQS = "rope_freqs.weight"      # llama3 RoPE divisors, read into config.rope_scaling
_IGNORED = (ROPE_FREQS,)


def llama3_rope_divisors(head_dim: int, theta: float, scaling: tuple) -> np.ndarray:
  """llama.cpp's rope_freqs for Llama-3.x (convert_hf_to_gguf.py LlamaModel): base inv_freq /
  scaled inv_freq per frequency, the same rule as model/llama.rope_frequencies."""
  factor, low_freq_factor, high_freq_factor, original_len = scaling
  divisors = []
  for freq in 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)):
    wavelen = 2 * math.pi / freq
    if wavelen < original_len / high_freq_factor:
      divisors.append(1.0)
    elif wavelen > original_len / low_freq_factor:
      divisors.append(factor)
    else:
      smooth = (original_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
      divisors.append(1 / ((1 - smooth) / factor + smooth))
  return np.asarray(divisors, np.float32)


def gguf_name(key: str, layer: int | None) -> tuple[str, bool]:
  if layer is None:
    return TOP_NAMES[key]
  name, transposed = LAYER_NAMES[key]
  return f"blk.{layer}.{name}", transposed


def unpermute_rope_rows(weight: np.ndarray, num_heads: int) -> np.ndarray:
  """Inverse of llama.cpp's q/k permutation: per head, rows (pairs, 2) -> (2, pairs).  [out, in]."""
  pairs = weight.shape[0] // num_heads // 2
  grouped = weight.reshape(num_heads, pairs, 2, *weight.shape[1:])
  return grouped.swapaxes(1, 2).reshape(weight.shape)


def _float32_value(value) -> float:
  """1e-05 instead of 9.999999747378752e-06: metadata floats are stored as float32."""
  return float(str(np.float32(value)))


class GGUFCheckpoint:
  """Metadata and tensors of one GGUF file (memory-mapped: opening it reads no weights)."""

  def __init__(self, path: str):
    self.path = path
    self.metadata, self._tensors, self._blob = read_gguf(path)
    self._heads = None    # (num_heads, num_kv_heads), read on the first q/k tensor

  @property
  def names(self) -> set[str]:
    return {n for n in self._tensors if n not in _IGNORED}

  @property
  def has_vocabulary(self) -> bool:
    return "tokenizer.ggml.tokens" in self.metadata

  @property
  def architecture(self) -> str:
    arch = self.metadata.get("general.architecture")
    if arch not in ARCHITECTURES:
      raise ValueError(f"{self.path}: general.architecture={arch!r}; supported: {sorted(ARCHITECTURES)}")
    return arch

  def config_fields(self) -> dict:
    """LlamaConfig fields from the {arch}.* metadata."""
    meta, path, arch = self.metadata, self.path, self.architecture

    def field(name, default=None):
      value = meta.get(f"{arch}.{name}", default)
      if value is None:
        raise ValueError(f"{path}: metadata field {arch}.{name} is missing")
      return value

    scaling = meta.get(f"{arch}.rope.scaling.type", "none")
    if scaling not in ("none", None):
      raise ValueError(f"{path}: {arch}.rope.scaling.type={scaling!r} is not supported (plain RoPE "
                       f"or llama3's rope_freqs)")
    if meta.get(f"{arch}.attention.sliding_window"):
      raise ValueError(f"{path}: {arch}.attention.sliding_window={meta[f'{arch}.attention.sliding_window']}: "
                       f"sliding-window attention is not supported")
    embed = self._tensors.get("token_embd.weight")
    if embed is None:
      raise ValueError(f"{path}: no tensor token_embd.weight")
    heads = int(field("attention.head_count"))
    hidden = int(field("embedding_length"))
    fields = dict(
        vocab_size=int(meta.get(f"{arch}.vocab_size") or embed[0][0]),
        hidden_size=hidden, num_layers=int(field("block_count")), num_heads=heads,
        num_kv_heads=int(meta.get(f"{arch}.attention.head_count_kv") or heads),
        head_dim=int(meta.get(f"{arch}.attention.key_length")
                     or meta.get(f"{arch}.rope.dimension_count") or hidden // heads),
        mlp_dim=int(field("feed_forward_length")),
        rope_theta=_float32_value(meta.get(f"{arch}.rope.freq_base", 10000.0)),
        rms_norm_eps=_float32_value(field("attention.layer_norm_rms_epsilon")),
        max_position_embeddings=int(field("context_length", 4096)),
        tie_embeddings="output.weight" not in self._tensors, **ARCHITECTURES[arch])
    if ROPE_FREQS in self._tensors:
      fields["rope_scaling"] = self._llama3_scaling(fields["head_dim"], fields["rope_theta"])
    return fields

  def _llama3_scaling(self, head_dim: int, theta: float) -> tuple:
    """The llama3 scaling whose divisors rope_freqs.weight holds, or an error saying it is not one."""
    divisors = self.get(ROPE_FREQS).reshape(-1)
    scaling = (float(divisors.max()), 1.0, 4.0, 8192)   # Llama-3.1/3.2/3.3's released values
    expected = llama3_rope_divisors(head_dim, theta, scaling)
    if divisors.shape != expected.shape or not np.allclose(divisors, expected, rtol=1e-5, atol=0):
      raise ValueError(f"{self.path}: {ROPE_FREQS} holds RoPE divisors that are not Llama-3's "
                       f"(factor {scaling[0]}, low/high freq factors 1/4, original context 8192); "
                       f"other frequency scalings are not supported")
    return scaling

  def get(self, name: str) -> np.ndarray:
    """A tensor dequantized to float32, numpy layout [out, in] (llama.cpp's ne reversed)."""
    import gguf
    if name not in self._tensors:
      raise KeyError(f"{self.path}: the GGUF file has no tensor {name!r}")
    shape, kind, offset = self._tensors[name]
    try:
      qtype = gguf.GGMLQuantizationType(kind)
      type_name = qtype.name
    except ValueError:
      qtype, type_name = None, f"ggml type {kind}"
    if type_name not in SUPPORTED_TYPES:
      raise ValueError(f"{self.path}: tensor {name} uses quantization {type_name}, which is not "
                       f"supported; supported: {', '.join(SUPPORTED_TYPES)}")
    block_size, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    row_bytes = shape[-1] // block_size * block_bytes
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    data = self._blob[offset:offset + rows * row_bytes].reshape(rows, row_bytes)
    weight = gguf.quants.dequantize(data, qtype).astype(np.float32).reshape(shape)
    if name.endswith(("attn_q.weight", "attn_k.weight")) and self.architecture == "llama":
      if self._heads is None:
        fields = self.config_fields()
        self._heads = fields["num_heads"], fields["num_kv_heads"]
      weight = unpermute_rope_rows(weight, self._heads[name.endswith("attn_k.weight")])
    return weight

  def tensor(self, key: str, layer: int | None) -> tuple[str, np.ndarray, bool]:
    """(GGUF name, array in our layout, transposed?) of our parameter `key` of `layer`."""
    name, transposed = gguf_name(key, layer)
    array = self.get(name)
    return name, (array.T if transposed else array), transposed
