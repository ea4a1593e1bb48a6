"""GGUF (llama.cpp) export of our models: F32, F16, BF16 or Q8_0, tokenizer and chat template included.

The inverse of model/gguf.py, laid out as llama.cpp's convert_hf_to_gguf.py writes a llama,
qwen2 or qwen3 checkpoint, so llama.cpp (and ollama, LM Studio, transformers'
`from_pretrained(..., gguf_file=...)`) run what the pipeline trained:
- `{arch}.*` metadata: block_count, context_length, embedding_length, feed_forward_length,
  attention.head_count(_kv), attention.key_length / value_length, rope.dimension_count,
  rope.freq_base, attention.layer_norm_rms_epsilon, vocab_size; general.file_type.
- tensors [out, in] under model/gguf.py's names. 1-D tensors (norms, biases) stay F32 as
  llama.cpp keeps them; a matrix whose rows do not split into Q8_0 blocks of 32 falls back to
  F16 (llama.cpp's fallback). For `llama` the q/k rows are permuted into llama.cpp's interleaved
  RoPE order (LlamaModel.permute; transformers and model/gguf.py undo it); qwen2/qwen3 are
  written unpermuted. Tied embeddings write no output.weight; Llama-3 RoPE writes its divisors
  as rope_freqs.weight.
- `tokenizer.ggml.*` from gguf_vocab.vocabulary_fields.
Streaming: the tensor infos go first, then each tensor is fetched to the host, converted and
written one at a time, so the host holds one layer's matrix, never the model.
"""
import functools

import numpy as np
from absl import logging
from flax import traverse_util

from dsmath_jax import atomic
from dsmath_jax.model import gguf as gguf_names
from dsmath_jax.model import gguf_vocab, hf

FILE_TYPES = ("F32", "F16", "BF16", "Q8_0")


def permute_rope_rows(weight: np.ndarray, num_heads: int) -> np.ndarray:
  """llama.cpp's q/k permutation (convert_hf_to_gguf.py LlamaModel.permute): per head, rows
  (2, pairs) -> (pairs, 2), i.e. rotate-half order to interleaved order.  [out, in]."""
  pairs = weight.shape[0] // num_heads // 2
  grouped = weight.reshape(num_heads, 2, pairs, *weight.shape[1:])
  return grouped.swapaxes(1, 2).reshape(weight.shape)


def _tensors(config, params):
  """[(our key, layer or None, shape in our layout, fetch() -> array)] of every parameter, in
  llama.cpp's order: token_embd, then block by block, then output_norm / output."""
  entries = []
  for path, array in traverse_util.flatten_dict(params, sep="/").items():
    head, _, rest = path.partition("/")
    if config.scan_layers and head == "layers":      # one stacked [layers, ...] array
      entries += [(rest, layer, tuple(array.shape[1:]), functools.partial(lambda a, i: a[i], array, layer))
                  for layer in range(config.num_layers)]
    elif head.startswith("layers_"):
      entries.append((rest, int(head[len("layers_"):]), tuple(array.shape), lambda a=array: a))
    else:
      entries.append((path, None, tuple(array.shape), lambda a=array: a))

  def order(entry):
    key, layer = entry[:2]
    name = gguf_names.gguf_name(key, layer)[0]
    return (-1 if name == "token_embd.weight" else config.num_layers if layer is None else layer), name
  return sorted(entries, key=order)


def _file_tensor(config, arch: str, key: str, layer: int | None, array) -> tuple[str, np.ndarray]:
  """(GGUF name, float32 [out, in] host array) of one parameter, q/k permuted for llama."""
  name, transposed = gguf_names.gguf_name(key, layer)
  host = np.asarray(array).astype(np.float32)
  host = host.T if transposed else host
  if arch == "llama" and name.endswith("attn_q.weight"):
    host = permute_rope_rows(host, config.num_heads)
  elif arch == "llama" and name.endswith("attn_k.weight"):
    host = permute_rope_rows(host, config.num_kv_heads)
  return name, np.ascontiguousarray(host)


def _tensor_type(shape: tuple, file_type: str):
  """The ggml type a tensor of `shape` is stored in for `file_type`."""
  import gguf
  if len(shape) == 1 or file_type == "F32":
    return gguf.GGMLQuantizationType.F32
  qtype = gguf.GGMLQuantizationType[file_type]
  block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
  return qtype if shape[-1] % block_size == 0 else gguf.GGMLQuantizationType.F16


def architecture_of(config) -> str:
  """general.architecture: the family hf.family_of picks, which model/gguf.py reads back."""
  arch = hf.family_of(config)
  if config.rope_scaling is not None and arch != "llama":
    raise ValueError(f"rope_scaling (llama3) cannot be exported as {arch}: llama.cpp reads "
                     f"rope_freqs.weight for the llama architecture only")
  return arch


def add_architecture_metadata(writer, config, arch: str) -> None:
  """The {arch}.* keys llama.cpp's loader requires (llm_load_hparams) for llama/qwen2/qwen3."""
  writer.add_vocab_size(config.vocab_size)
  writer.add_context_length(config.max_position_embeddings)
  writer.add_embedding_length(config.hidden_size)
  writer.add_block_count(config.num_layers)
  writer.add_feed_forward_length(config.mlp_dim)
  writer.add_head_count(config.num_heads)
  writer.add_head_count_kv(config.num_kv_heads)
  writer.add_key_length(config.head_dim)
  writer.add_value_length(config.head_dim)
  writer.add_rope_dimension_count(config.head_dim)
  writer.add_rope_freq_base(config.rope_theta)
  writer.add_layer_norm_rms_eps(config.rms_norm_eps)


def save_gguf(path: str, config, params, tokenizer=None, *, file_type: str = "F16",
              name: str = "dsmath_jax") -> str:
  """Writes `path` (*.gguf) that llama.cpp and transformers load as the config's family.

  file_type: "F32" | "F16" | "BF16" | "Q8_0" (matrices; norms and biases stay F32).
  tokenizer: written as tokenizer.ggml.* (gguf_vocab.vocabulary_fields), or None for none.
  The file appears under `path` only once complete (atomic.file_path). Returns `path`.
  """
  import gguf
  if file_type not in FILE_TYPES:
    raise ValueError(f"GGUF export: file_type={file_type!r}; supported: {', '.join(FILE_TYPES)}")
  if not path.endswith(".gguf"):
    raise ValueError(f"GGUF export: {path!r} must end with .gguf (load_pretrained tells formats by it)")
  arch = architecture_of(config)
  entries = _tensors(config, params)
  extra = []          # (GGUF name, host array) written after the parameters
  if config.rope_scaling is not None:
    extra.append((gguf_names.ROPE_FREQS, gguf_names.llama3_rope_divisors(
        config.head_dim, config.rope_theta, config.rope_scaling)))
  with atomic.file_path(path) as temporary:
    writer = gguf.GGUFWriter(temporary, arch)
    writer.add_name(name)
    writer.add_file_type(int(gguf.LlamaFileType[{"F32": "ALL_F32"}.get(file_type, f"MOSTLY_{file_type}")]))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_architecture_metadata(writer, config, arch)
    if tokenizer is not None:
      for key, (value, value_type, item_type) in gguf_vocab.vocabulary_fields(
          tokenizer, config.vocab_size).items():
        writer.add_key_value(key, value, value_type, sub_type=item_type)
    types = []
    for key, layer, shape, _ in entries:
      tensor_name, transposed = gguf_names.gguf_name(key, layer)
      file_shape = tuple(int(d) for d in (shape[::-1] if transposed else shape))
      qtype = _tensor_type(file_shape, file_type)
      nbytes = int(np.prod(gguf.quant_shape_to_byte_shape(file_shape, qtype)))
      writer.add_tensor_info(tensor_name, file_shape, np.float32, nbytes, raw_dtype=qtype)
      types.append(qtype)
    for tensor_name, array in extra:
      writer.add_tensor_info(tensor_name, array.shape, np.float32, array.nbytes,
                             raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for (key, layer, _, fetch), qtype in zip(entries, types):
      _, host = _file_tensor(config, arch, key, layer, fetch())
      writer.write_tensor_data(gguf.quants.quantize(host, qtype))
    for _, array in extra:
      writer.write_tensor_data(array)
    writer.close()
  logging.info("GGUF export: %s (%s, %s, %d tensors)", path, arch, file_type, len(entries) + len(extra))
  return path
