"""GGUF (llama.cpp) checkpoints of the LLaMA architecture, dequantized to float32 with `gguf`.

Small released chat models (SmolLM2-135M-Instruct ships as a Q4_1 GGUF) let the whole
pipeline, sampling and evaluation included, run against a real model on a CPU. Tensors are
memory-mapped and dequantized one at a time. llama.cpp's converter permutes the rows of
attn_q / attn_k for its interleaved RoPE; we undo it as transformers' GGUF loader does, which
brings them back to HF's rotate-half layout that model/llama.py uses.
"""
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
}
TOP_NAMES = {
    "embed_tokens/embedding": ("token_embd.weight", False),
    "norm/scale": ("output_norm.weight", False),
    "lm_head/kernel": ("output.weight", True),
}
_IGNORED = ("rope_freqs.weight",)


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

  def config_fields(self) -> dict:
    """LlamaConfig fields from the {arch}.* metadata."""
    meta, path = self.metadata, self.path
    arch = meta.get("general.architecture")
    if arch != "llama":
      raise ValueError(f"{path}: general.architecture={arch!r}; only 'llama' is supported")

    def field(name, default=None):
      value = meta.get(f"llama.{name}", default)
      if value is None:
        raise ValueError(f"{path}: metadata field llama.{name} is missing")
      return value

    scaling = meta.get("llama.rope.scaling.type", "none")
    if scaling not in ("none", None):
      raise ValueError(f"{path}: llama.rope.scaling.type={scaling!r} is not supported (plain RoPE)")
    embed = self._tensors.get("token_embd.weight")
    if embed is None:
      raise ValueError(f"{path}: no tensor token_embd.weight")
    heads = int(field("attention.head_count"))
    hidden = int(field("embedding_length"))
    return dict(
        vocab_size=int(meta.get("llama.vocab_size") or embed[0][0]),
        hidden_size=hidden, num_layers=int(field("block_count")), num_heads=heads,
        num_kv_heads=int(meta.get("llama.attention.head_count_kv") or heads),
        head_dim=int(meta.get("llama.attention.key_length")
                     or meta.get("llama.rope.dimension_count") or hidden // heads),
        mlp_dim=int(field("feed_forward_length")),
        rope_theta=_float32_value(meta.get("llama.rope.freq_base", 10000.0)),
        rms_norm_eps=_float32_value(field("attention.layer_norm_rms_epsilon")),
        max_position_embeddings=int(field("context_length", 4096)),
        tie_embeddings="output.weight" not in self._tensors)

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
    if name.endswith(("attn_q.weight", "attn_k.weight")):
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
