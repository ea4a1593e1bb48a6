"""The DeepSeek LLM / LLaMA decoder (paper §2.3) as Flax linen modules.

RMSNorm, rotary embeddings, grouped-query attention and a SwiGLU MLP, stacked with
`nn.scan`. Three small switches cover the families GRPO research starts from (one decoder, not
a copy per family): `qkv_bias` (Qwen2/Qwen2.5), `qk_norm` (Qwen3) and `rope_scaling`
(Llama-3.x's "llama3" frequencies); all off is the DeepSeek LLM / LLaMA decoder. Parameters are
named after their Hugging Face LlamaForCausalLM roles (`layers/self_attn/q_proj/kernel`, ...,
`self_attn/q_proj/bias`, `self_attn/q_norm/scale`) so weight conversion is a short table, and
every parameter and inter-block activation carries logical axis names; mesh axes
never appear here (see dsmath_jax/sharding.py and configs/common.py).

One module serves training and decoding: given a `KVCache`, the call writes the new
keys/values at slot `cache.end` and attends over the whole cache, so prefill (many
tokens) and decode (one token) give the same logits as the full forward pass. The cache
holds only as many slots as the caller gave it: the sampler grows it in segments
(`KVCache.extend`), so attention reads the filled part, not the longest possible one.
"""
import dataclasses
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from dsmath_jax import config_types
from dsmath_jax.model import attention as attention_lib
from dsmath_jax.model import dense as dense_lib

_NEG_INF = attention_lib.NEG_INF


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
  """Static model shape and numerics; built once from the config's `model` section."""
  vocab_size: int
  hidden_size: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  mlp_dim: int
  rope_theta: float = 10000.0
  rms_norm_eps: float = 1e-6
  max_position_embeddings: int = 4096
  tie_embeddings: bool = False
  dtype: str = "float32"          # compute dtype
  param_dtype: str = "float32"    # storage dtype of the parameters
  scan_layers: bool = True
  remat: str = "none"             # "none" | "full" | "dots" (save matmul outputs only)
  attention: str = "blocked"      # "blocked" | "xla" | "dot_product" | "splash" (model/attention.py);
                                  # the training/scoring path only: decoding reads the cache (cached_attention)
  logits_chunk: int = 0           # losses project to the vocabulary this many positions at a time
                                  # (model/vocab.py); 0 = all logits at once
  qkv_bias: bool = False          # q/k/v projections carry biases (Qwen2/Qwen2.5)
  qk_norm: bool = False           # RMSNorm over head_dim of q and k before RoPE (Qwen3)
  # Llama-3.x "llama3" RoPE: (factor, low_freq_factor, high_freq_factor,
  # original_max_position_embeddings); None = plain RoPE.
  rope_scaling: tuple | None = None

  def __post_init__(self):
    attention_lib.check_implementation(self.attention)
    if self.logits_chunk < 0:
      raise ValueError(f"model.logits_chunk={self.logits_chunk} must be >= 0 (0 = unchunked)")
    if self.rope_scaling is not None:       # JSON/ConfigDict lists -> a hashable tuple
      object.__setattr__(self, "rope_scaling", tuple(self.rope_scaling))
      if len(self.rope_scaling) != 4:
        raise ValueError(f"LlamaConfig.rope_scaling={self.rope_scaling!r}: expected (factor, "
                         f"low_freq_factor, high_freq_factor, original_max_position_embeddings)")

  @classmethod
  def from_config(cls, model_config, where: str = "config.model") -> "LlamaConfig":
    """From config.model (or a checkpoint's fields); an unknown or missing key fails naming it.
    `preset` (the name the fields came from) is the one key that is not a field."""
    return config_types.from_section(cls, model_config, where=where, ignore=("preset",))

  @property
  def num_params(self) -> int:
    e, l = self.hidden_size, self.num_layers
    attn = e * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
    attn += self.head_dim * (self.num_heads + 2 * self.num_kv_heads) if self.qkv_bias else 0
    attn += 2 * self.head_dim if self.qk_norm else 0
    per_layer = attn + 3 * e * self.mlp_dim + 2 * e
    head = 0 if self.tie_embeddings else self.vocab_size * e
    return self.vocab_size * e + l * per_layer + e + head

  def flops_per_token(self, seq_len: int) -> float:
    """Training FLOPs per token: 6 x (matmul params) + causal attention (PaLM appendix B)."""
    matmul_params = self.num_params - self.vocab_size * self.hidden_size * (
        0 if self.tie_embeddings else 1) - (2 * self.num_layers + 1) * self.hidden_size
    matmul_params += self.vocab_size * self.hidden_size  # the output projection is a matmul
    attention = 6 * self.num_layers * self.num_heads * self.head_dim * seq_len  # causal: half of 12
    return 6.0 * matmul_params + attention


@flax.struct.dataclass
class KVCache:
  """Static-shape decoding cache; slot s of every row holds the token written at step s.

  With nn.scan over layers (config.scan_layers) k and v are stacked; with unrolled layers
  they are tuples of per-layer arrays, so a decode step updates each in place instead of
  re-stacking the whole cache. Keys are stored transposed, [head_dim, slots] per head, and
  values as [slots, head_dim]: both attention dots are then plain row-major products
  (queries [q, head_dim] x keys [head_dim, slots], probs [q, slots] x values [slots, head_dim])
  that read the cache where it lies (see `cached_attention`)."""
  k: jax.Array             # [layers, batch, kv_heads, head_dim, max_len], or layers x [batch, kv_heads, head_dim, max_len]
  v: jax.Array             # [layers, batch, kv_heads, max_len, head_dim], or layers x [batch, kv_heads, max_len, head_dim]
  segment_ids: jax.Array   # [batch, max_len] int32; 0 = empty slot or padding
  end: jax.Array           # [] int32: slots [0, end) are written

  @classmethod
  def init(cls, config: LlamaConfig, batch: int, max_len: int, dtype=None) -> "KVCache":
    dtype = jnp.dtype(dtype or config.dtype)
    k_shape = (batch, config.num_kv_heads, config.head_dim, max_len)
    v_shape = (batch, config.num_kv_heads, max_len, config.head_dim)
    if config.scan_layers:
      k, v = jnp.zeros((config.num_layers, *k_shape), dtype), jnp.zeros((config.num_layers, *v_shape), dtype)
    else:
      k = tuple(jnp.zeros(k_shape, dtype) for _ in range(config.num_layers))
      v = tuple(jnp.zeros(v_shape, dtype) for _ in range(config.num_layers))
    return cls(k=k, v=v, segment_ids=jnp.zeros((batch, max_len), jnp.int32), end=jnp.zeros((), jnp.int32))

  @property
  def max_len(self) -> int:
    return self.segment_ids.shape[1]

  def extend(self, slots: int) -> "KVCache":
    """The same cache with `slots` more empty slots at the end.

    The sampler decodes in segments and grows the cache between them, so each step's
    attention reads about as many slots as are filled instead of the longest the call
    could need (one copy of the cache per segment, none per step)."""
    def pad(x, axis):                                      # the slots axis: k's last, v's second-to-last
      widths = [(0, 0)] * x.ndim
      widths[axis] = (0, slots)
      return jnp.pad(x, widths)
    return self.replace(k=jax.tree.map(lambda x: pad(x, -1), self.k), v=jax.tree.map(lambda x: pad(x, -2), self.v),
                        segment_ids=jnp.pad(self.segment_ids, ((0, 0), (0, slots))))


CACHE_LOGICAL_AXES = KVCache(
    k=("layers", "batch", "act_kv_heads", "head_dim", "cache_seq"),
    v=("layers", "batch", "act_kv_heads", "cache_seq", "head_dim"),
    segment_ids=("batch", "cache_seq"), end=())


def _init(*logical_axes):
  return nn.with_logical_partitioning(nn.initializers.normal(stddev=0.02), logical_axes)


def _bias_init(*logical_axes):
  return nn.with_logical_partitioning(nn.initializers.zeros, logical_axes)


def _constrain(x, *logical_axes):
  return nn.with_logical_constraint(x, logical_axes)


class RMSNorm(nn.Module):
  """x / rms(x) * scale, computed in float32 (as HF LlamaRMSNorm)."""
  eps: float
  dtype: Any
  param_dtype: Any

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
                       (x.shape[-1],), self.param_dtype)
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return (normed.astype(self.dtype) * scale.astype(self.dtype))


def rope_frequencies(head_dim: int, theta: float, scaling: tuple | None = None):
  """Inverse frequencies [head_dim/2] float32; with `scaling`, Llama 3.1's "llama3" rule
  (transformers' _compute_llama3_parameters): wavelengths above original_len / low_freq_factor
  are stretched by `factor`, those below original_len / high_freq_factor kept, and the band
  between interpolated smoothly."""
  inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  if scaling is None:
    return inv_freq
  factor, low_freq_factor, high_freq_factor, original_len = scaling
  wavelen = 2 * jnp.pi / inv_freq
  scaled = jnp.where(wavelen > original_len / low_freq_factor, inv_freq / factor, inv_freq)
  smooth = (original_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
  smoothed = (1 - smooth) * scaled / factor + smooth * scaled
  medium = (wavelen >= original_len / high_freq_factor) & (wavelen <= original_len / low_freq_factor)
  return jnp.where(medium, smoothed, scaled)


def apply_rope(x, positions, theta: float, scaling: tuple | None = None):
  """Rotary embedding, HF's rotate-half layout.  x: [batch, seq, heads, head_dim]."""
  head_dim = x.shape[-1]
  inv_freq = rope_frequencies(head_dim, theta, scaling)                 # [head_dim/2]
  angles = positions.astype(jnp.float32)[..., None] * inv_freq          # [batch, seq, head_dim/2]
  angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]    # [batch, seq, 1, head_dim]
  x32 = x.astype(jnp.float32)
  first, second = jnp.split(x32, 2, axis=-1)
  rotated = jnp.concatenate([-second, first], axis=-1)
  return (x32 * jnp.cos(angles) + rotated * jnp.sin(angles)).astype(x.dtype)


def attention_mask(query_slots, query_segments, key_slots, key_segments, query_prefix_segments=None):
  """[batch, q, k] bool: causal in slot order, same segment (or the query's shared-prefix
  segment, when given), key not padding."""
  causal = key_slots[:, None, :] <= query_slots[:, :, None]
  visible = key_segments[:, None, :] == query_segments[:, :, None]
  if query_prefix_segments is not None:
    visible |= key_segments[:, None, :] == query_prefix_segments[:, :, None]
  return causal & visible & (key_segments[:, None, :] != 0)


def cached_attention(q, k, v, layer_cache, write_index, mask):
  """Writes this call's keys/values into a layer's cache at slot `write_index`, then attends
  over every slot of the cache (the prefill and decode path).

  q [batch, seq, heads, head_dim]; k, v [batch, seq, kv_heads, head_dim]; layer_cache (k, v):
  k [batch, kv_heads, head_dim, slots], v [batch, kv_heads, slots, head_dim]; mask [batch, seq,
  slots]. Returns the attention output [batch, seq, heads * head_dim] and the updated (k, v).

  The cached keys are stored transposed so that both dots are row-major products over the cache
  as it lies: scores = queries [q, head_dim] x keys [head_dim, slots], out = probs [q, slots] x
  values [slots, head_dim], with the softmax along the scores' minor (slots) axis. Keys stored
  [slots, head_dim] make the first dot either transpose the whole cache at every step and layer
  (XLA did, when the scores came out [.., queries, slots]) or produce [.., slots, queries] scores
  that must be swapped for the softmax; `benchmarks/decode_attention.py` times the layouts.
  """
  cache_k, cache_v = layer_cache
  batch, seq, heads, head_dim = q.shape
  kv_heads, slots = cache_k.shape[1], cache_k.shape[3]
  groups = heads // kv_heads
  dtype = q.dtype
  new_k = jnp.transpose(k, (0, 2, 3, 1)).astype(cache_k.dtype)        # [batch, kv_heads, head_dim, seq]
  new_v = jnp.swapaxes(v, 1, 2).astype(cache_v.dtype)                 # [batch, kv_heads, seq, head_dim]
  cache_k = jax.lax.dynamic_update_slice(cache_k, new_k, (0, 0, 0, write_index))
  cache_v = jax.lax.dynamic_update_slice(cache_v, new_v, (0, 0, write_index, 0))
  q = q.reshape(batch, seq, kv_heads, groups, head_dim).transpose(0, 2, 1, 3, 4)
  q = q.reshape(batch, kv_heads, seq * groups, head_dim)              # queries = (seq, group)
  batch_dims = ((0, 1), (0, 1))
  scores = jax.lax.dot_general(q, cache_k.astype(dtype), (((3,), (2,)), batch_dims),
                               preferred_element_type=jnp.float32)   # [batch, kv, queries, slots]
  scores = scores * (head_dim ** -0.5)
  visible = jnp.broadcast_to(mask[:, None, :, None, :], (batch, 1, seq, groups, slots))
  visible = visible.reshape(batch, 1, seq * groups, slots)
  probs = jax.nn.softmax(jnp.where(visible, scores, _NEG_INF), axis=-1).astype(dtype)
  out = jax.lax.dot_general(probs, cache_v.astype(dtype), (((3,), (2,)), batch_dims))  # [batch, kv, queries, head_dim]
  out = out.reshape(batch, kv_heads, seq, groups, head_dim).transpose(0, 2, 1, 3, 4)
  return out.reshape(batch, seq, heads * head_dim), (cache_k, cache_v)


class Attention(nn.Module):
  """Grouped-query self-attention. Without a cache the kernel is `config.attention`
  (attention.py); with one (prefill, decode) it is always `cached_attention`."""
  config: LlamaConfig

  @nn.compact
  def __call__(self, x, positions, mask, layer_cache, write_index):
    # x: [batch, seq, embed]; mask: [batch, seq, keys] bool, or the segment ids [batch, seq]
    # when the kernel is splash (see Transformer); layer_cache: (k [batch, kv_heads, head_dim,
    # max_len], v [batch, kv_heads, max_len, head_dim]) or None.
    c = self.config
    dtype, param_dtype = jnp.dtype(c.dtype), jnp.dtype(c.param_dtype)
    dense = functools.partial(nn.Dense, use_bias=False, dtype=dtype, param_dtype=param_dtype,
                              dot_general=dense_lib.dot_general)
    # Qwen2's q/k/v biases (o_proj has none in every family we read).
    qkv = functools.partial(dense, use_bias=c.qkv_bias)
    batch, seq, _ = x.shape
    q = qkv(c.num_heads * c.head_dim, kernel_init=_init("embed", "q_heads"),
            bias_init=_bias_init("q_heads"), name="q_proj")(x)
    k = qkv(c.num_kv_heads * c.head_dim, kernel_init=_init("embed", "kv_heads"),
            bias_init=_bias_init("kv_heads"), name="k_proj")(x)
    v = qkv(c.num_kv_heads * c.head_dim, kernel_init=_init("embed", "kv_heads"),
            bias_init=_bias_init("kv_heads"), name="v_proj")(x)
    q = _constrain(q.reshape(batch, seq, c.num_heads, c.head_dim), "batch", "seq", "act_heads", "head_dim")
    k = _constrain(k.reshape(batch, seq, c.num_kv_heads, c.head_dim), "batch", "seq", "act_kv_heads", "head_dim")
    v = _constrain(v.reshape(batch, seq, c.num_kv_heads, c.head_dim), "batch", "seq", "act_kv_heads", "head_dim")
    if c.qk_norm:                                # Qwen3: per-head RMSNorm, before RoPE
      norm = functools.partial(RMSNorm, c.rms_norm_eps, dtype, param_dtype)
      q, k = norm(name="q_norm")(q), norm(name="k_norm")(k)
    q = apply_rope(q, positions, c.rope_theta, c.rope_scaling)
    k = apply_rope(k, positions, c.rope_theta, c.rope_scaling)

    new_cache = None
    if layer_cache is not None:                   # prefill / decode: the cache's own layout
      out, new_cache = cached_attention(q, k, v, layer_cache, write_index, mask)
      out = _constrain(out, "batch", "seq", "act_heads")
      return dense(c.hidden_size, kernel_init=_init("q_heads", "embed"), name="o_proj")(out), new_cache

    if mask.ndim == 2:                                              # segment ids: splash
      out = attention_lib.splash_attention(q, k, v, mask)
    elif c.attention == "dot_product":
      out = attention_lib.dot_product_attention(q, k, v, mask)
    elif c.attention == "blocked":
      out = attention_lib.blocked_attention(q, k, v, mask)
    else:
      out = attention_lib.xla_attention(q, k, v, mask)               # [batch, seq, heads, head_dim]
    out = _constrain(out.reshape(batch, seq, c.num_heads * c.head_dim), "batch", "seq", "act_heads")
    out = dense(c.hidden_size, kernel_init=_init("q_heads", "embed"), name="o_proj")(out)
    return out, new_cache


class Mlp(nn.Module):
  """SwiGLU feed-forward: down(silu(gate(x)) * up(x))."""
  config: LlamaConfig

  @nn.compact
  def __call__(self, x):
    c = self.config
    dense = functools.partial(nn.Dense, use_bias=False, dtype=jnp.dtype(c.dtype),
                              param_dtype=jnp.dtype(c.param_dtype), dot_general=dense_lib.dot_general)
    gate = dense(c.mlp_dim, kernel_init=_init("embed", "mlp"), name="gate_proj")(x)
    up = dense(c.mlp_dim, kernel_init=_init("embed", "mlp"), name="up_proj")(x)
    hidden = _constrain(nn.silu(gate) * up, "batch", "seq", "act_mlp")
    return dense(c.hidden_size, kernel_init=_init("mlp", "embed"), name="down_proj")(hidden)


class DecoderLayer(nn.Module):
  config: LlamaConfig

  @nn.compact
  def __call__(self, x, layer_cache, positions, mask, write_index):
    c = self.config
    norm = functools.partial(RMSNorm, c.rms_norm_eps, jnp.dtype(c.dtype), jnp.dtype(c.param_dtype))
    attn_out, new_cache = Attention(c, name="self_attn")(
        norm(name="input_layernorm")(x), positions, mask, layer_cache, write_index)
    x = x + attn_out
    x = x + Mlp(c, name="mlp")(norm(name="post_attention_layernorm")(x))
    return _constrain(x, "batch", "seq", "act_embed"), new_cache


def _remat_policy(name: str):
  return {"full": None, "dots": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims}[name]


def segment_positions(segment_ids):
  """Positions that restart at 0 at every new segment of a packed row.  [batch, seq] int32."""
  seq = segment_ids.shape[1]
  index = jnp.broadcast_to(jnp.arange(seq, dtype=jnp.int32), segment_ids.shape)
  starts = jnp.concatenate([jnp.ones_like(segment_ids[:, :1], bool),
                            segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1)
  return index - jax.lax.cummax(jnp.where(starts, index, 0), axis=1)


class Transformer(nn.Module):
  """Decoder-only LM.

  __call__(tokens [batch, seq], positions=None, segment_ids=None, cache=None)
    -> logits [batch, seq, vocab]                     when cache is None
    -> (logits, updated cache)                        when a KVCache is given
  segment_ids: packed documents are numbered 1, 2, ...; 0 marks padding. Positions default
  to restarting per segment (no cache) or to `cache.end + arange(seq)` (cache).
  prefix_segment_ids [batch, seq] (no cache): a token also sees the earlier tokens of that
  segment, so G responses packed after one copy of their prompt each attend to it (GRPO's
  shared-prompt rows, dsmath_jax/rl/packing.py); 0 = none.
  output_positions [batch, n]: the slots whose logits are wanted (default every slot); a
  loss that needs n << seq of them skips the rest of the vocabulary projection.
  `return_hidden=True` returns the final normed hidden states [batch, seq, embed]
  instead of logits (the reward models put their scalar head on them; the chunked losses
  project them with `output_logits`, dsmath_jax/model/vocab.py).
  The attention kernel is `config.attention` (attention.py); "splash" needs no dense mask
  and receives the segment ids, except with prefix_segment_ids (then the reference runs).
  """
  config: LlamaConfig

  @nn.compact
  def __call__(self, tokens, positions=None, segment_ids=None, cache: KVCache | None = None,
               return_hidden: bool = False, prefix_segment_ids=None, output_positions=None):
    c = self.config
    dtype, param_dtype = jnp.dtype(c.dtype), jnp.dtype(c.param_dtype)
    batch, seq = tokens.shape
    if segment_ids is None:
      segment_ids = jnp.ones((batch, seq), jnp.int32)
    query_slots = jnp.broadcast_to(jnp.arange(seq, dtype=jnp.int32), (batch, seq))
    if cache is None:
      if positions is None:
        positions = segment_positions(segment_ids)
      if c.attention == "splash" and prefix_segment_ids is None:
        mask = segment_ids.astype(jnp.int32)          # splash builds causal & segment blocks itself
      else:
        mask = attention_mask(query_slots, segment_ids, query_slots, segment_ids, prefix_segment_ids)
      write_index, kv = jnp.zeros((), jnp.int32), None
    else:
      write_index = cache.end
      if positions is None:
        positions = query_slots + cache.end
      cache_segments = jax.lax.dynamic_update_slice(
          cache.segment_ids, segment_ids.astype(jnp.int32), (0, cache.end))
      key_slots = jnp.broadcast_to(jnp.arange(cache.max_len, dtype=jnp.int32), (batch, cache.max_len))
      mask = attention_mask(query_slots + cache.end, segment_ids, key_slots, cache_segments)
      kv = (cache.k, cache.v)

    embed = nn.Embed(c.vocab_size, c.hidden_size, dtype=dtype, param_dtype=param_dtype,
                     embedding_init=_init("vocab", "embed"), name="embed_tokens")
    x = _constrain(embed(tokens), "batch", "seq", "act_embed")        # [batch, seq, embed]

    layer_cls = DecoderLayer
    if c.remat != "none":
      layer_cls = nn.remat(DecoderLayer, policy=_remat_policy(c.remat), prevent_cse=not c.scan_layers)
    if c.scan_layers:
      layers = nn.scan(layer_cls, variable_axes={"params": 0}, split_rngs={"params": True},
                       in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast), length=c.num_layers,
                       metadata_params={nn.PARTITION_NAME: "layers"})
      x, new_kv = layers(c, name="layers")(x, kv, positions, mask, write_index)
    else:
      new_k, new_v = [], []
      for i in range(c.num_layers):
        layer_kv = None if kv is None else (kv[0][i], kv[1][i])
        x, out_kv = layer_cls(c, name=f"layers_{i}")(x, layer_kv, positions, mask, write_index)
        if out_kv is not None:
          new_k.append(out_kv[0])
          new_v.append(out_kv[1])
      if kv is None:
        new_kv = None
      elif isinstance(kv[0], (tuple, list)):               # per-layer cache: updated in place
        new_kv = (tuple(new_k), tuple(new_v))
      else:
        new_kv = (jnp.stack(new_k), jnp.stack(new_v))

    x = RMSNorm(c.rms_norm_eps, dtype, param_dtype, name="norm")(x)
    if output_positions is not None:
      x = jnp.take_along_axis(x, output_positions[..., None].astype(jnp.int32), axis=1)  # [batch, n, embed]
    if return_hidden:
      output = x
    elif c.tie_embeddings:
      output = embed.attend(x)
    else:
      output = nn.Dense(c.vocab_size, use_bias=False, dtype=dtype, param_dtype=param_dtype,
                        kernel_init=_init("embed", "vocab"), dot_general=dense_lib.dot_general,
                        name="lm_head")(x)
    if not return_hidden:
      output = _constrain(output, "batch", "seq", "act_vocab")       # [batch, seq, vocab]
    if cache is None:
      return output
    new_cache = KVCache(k=new_kv[0], v=new_kv[1], segment_ids=cache_segments, end=cache.end + seq)
    return output, new_cache


def init_params(config: LlamaConfig, rng, seq_len: int = 8):
  """Boxed (nn.Partitioned) parameters; unbox with nn.unbox or use under eval_shape.

  The attention kernel holds no parameters; init traces the reference, since a kernel may
  refuse the short dummy row (splash tiles 128 tokens at a time)."""
  tokens = jnp.zeros((1, seq_len), jnp.int32)
  return Transformer(dataclasses.replace(config, attention="xla")).init(rng, tokens)["params"]
