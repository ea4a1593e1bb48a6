"""Grouped-query attention kernels of the training and scoring pass, chosen by `model.attention`
(LlamaConfig.attention). Prefill and decode against a KV cache always run
llama.cached_attention (the cache's own layout: keys [.., head_dim, slots], values [.., slots, head_dim]), so the
choice never changes what the sampler draws.

  "xla"          the reference: one einsum for the scores [batch, kv_heads, groups, q, k] in
                 float32, a masked softmax, one einsum for the values. Runs everywhere and
                 handles any boolean mask; it materializes the [q, k] scores, which at 4K
                 tokens (packed SFT rows) is 64 MiB per head.
  "blocked"      the same math in causal query blocks: block i of 128 queries attends only
                 to the keys up to its own end, so the score blocks above the diagonal are
                 never computed (about half the FLOPs and memory of "xla" at 512 tokens),
                 with each block's query heads stacked per KV head, [kv, groups * block], a
                 layout XLA's CPU backend multiplies without transposing the scores. Exact for
                 causal masks, which is every mask the Transformer builds without a cache
                 (packed segments and GRPO's shared-prompt rows included). The default: faster
                 than "xla" on CPU (llama_125m attention fwd+bwd at 8x512: 4.93 s -> 1.83 s,
                 measured on branch speed-model on a loaded machine); not yet measured on
                 GPU/TPU, where "dot_product" / "splash" are the kernels meant.
  "dot_product"  jax.nn.dot_product_attention with the same boolean mask: cuDNN's fused
                 (flash) kernel on GPU for bfloat16/float16, XLA's implementation elsewhere.
  "splash"       the Pallas splash-attention kernel on TPU (block-sparse causal mask and
                 segment ids; never the [q, k] scores). It takes segment ids, not a mask, so
                 rows with a shared prompt (prefix_segment_ids, GRPO's log-prob and update
                 passes) use the reference instead (llama.Transformer decides).
All four take q [batch, q_len, heads, head_dim] and k, v [batch, k_len, kv_heads, head_dim]
with heads a multiple of kv_heads (GQA), and return [batch, q_len, heads, head_dim].
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("xla", "blocked", "dot_product", "splash")
NEG_INF = -1e30  # finite, so fully masked rows (padding queries) stay NaN-free


def check_implementation(name: str) -> str:
  if name not in IMPLEMENTATIONS:
    raise ValueError(f"model.attention={name!r} is not an attention implementation; "
                     f"choose one of {IMPLEMENTATIONS}")
  return name


def xla_attention(q, k, v, mask):
  """The einsum reference.  mask: [batch, q_len, k_len] bool (True = attend)."""
  batch, q_len, heads, head_dim = q.shape
  kv_heads = k.shape[2]
  q = q.reshape(batch, q_len, kv_heads, heads // kv_heads, head_dim)
  scores = jnp.einsum("btkgd,bskd->bkgts", q, k, preferred_element_type=jnp.float32)
  scores = scores * (head_dim ** -0.5)
  scores = jnp.where(mask[:, None, None, :, :], scores, NEG_INF)   # [batch, kv, group, q, k]
  probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
  out = jnp.einsum("bkgts,bskd->btkgd", probs, v)
  return out.reshape(batch, q_len, heads, head_dim)


def _grouped_attention(q, k, v, mask):
  """The reference's math with a group's query heads stacked along the query axis.

  q [b, t, heads, d]; k, v [b, s, kv, d]; mask [b, t, s] -> [b, t, heads, d].
  """
  batch, q_len, heads, head_dim = q.shape
  kv_heads = k.shape[2]
  groups = heads // kv_heads
  q = q.reshape(batch, q_len, kv_heads, groups, head_dim).transpose(0, 2, 3, 1, 4)
  q = q.reshape(batch, kv_heads, groups * q_len, head_dim)                   # [b, kv, g * t, d]
  k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)                     # [b, kv, s, d]
  scores = jnp.einsum("bkqd,bksd->bkqs", q, k, preferred_element_type=jnp.float32)
  scores = scores * (head_dim ** -0.5)
  mask = jnp.tile(mask, (1, groups, 1))[:, None]                             # [b, 1, g * t, s]
  probs = jax.nn.softmax(jnp.where(mask, scores, NEG_INF), axis=-1).astype(v.dtype)
  out = jnp.einsum("bkqs,bksd->bkqd", probs, v)                              # [b, kv, g * t, d]
  out = out.reshape(batch, kv_heads, groups, q_len, head_dim).transpose(0, 3, 1, 2, 4)
  return out.reshape(batch, q_len, heads, head_dim)


def blocked_attention(q, k, v, mask, *, block: int = 128, max_blocks: int = 16):
  """Causal self-attention by query blocks (see the module docstring); the same result as
  xla_attention whenever mask[:, i, j] is False for j > i.  q_len == k_len.

  Blocks are `block` queries, grown so that there are at most `max_blocks` of them (each
  block is a separate pair of einsums in the compiled program).
  """
  q_len = q.shape[1]
  block = max(block, -(-q_len // max_blocks))
  outputs = []
  for start in range(0, q_len, block):
    end = min(start + block, q_len)
    outputs.append(_grouped_attention(q[:, start:end], k[:, :end], v[:, :end],
                                      mask[:, start:end, :end]))
  return jnp.concatenate(outputs, axis=1)


def dot_product_attention(q, k, v, mask):
  """jax.nn.dot_product_attention; cuDNN on GPU where it applies (16-bit inputs)."""
  on_gpu = jax.default_backend() == "gpu"
  implementation = "cudnn" if on_gpu and q.dtype in (jnp.bfloat16, jnp.float16) else None
  return jax.nn.dot_product_attention(q, k, v, mask=mask[:, None, :, :],
                                      implementation=implementation)


def _splash_block_sizes(q_len: int, k_len: int):
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
  block_q, block_k = min(512, q_len), min(512, k_len)
  return splash.BlockSizes(
      block_q=block_q, block_kv=block_k, block_kv_compute=block_k,
      block_q_dkv=block_q, block_kv_dkv=block_k, block_kv_dkv_compute=block_k,
      block_q_dq=block_q, block_kv_dq=block_k)


def _splash_local(q, k, v, segment_ids, *, interpret: bool):
  """Splash on one device's shard.  q [b, kv, g, t, d]; k, v [b, kv, s, d]; segment_ids [b, t]."""
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as splash_mask
  groups, q_len, k_len = q.shape[2], q.shape[3], k.shape[2]
  mask = splash_mask.MultiHeadMask([splash_mask.CausalMask((q_len, k_len)) for _ in range(groups)])
  kernel = splash.make_splash_mqa_single_device(
      mask, block_sizes=_splash_block_sizes(q_len, k_len), interpret=interpret)

  def one_kv_head(q_group, k_head, v_head, segments):          # [g, t, d], [s, d], [s, d], [t]
    return kernel(q_group, k_head, v_head, segment_ids=splash.SegmentIds(segments, segments))

  per_row = jax.vmap(one_kv_head, in_axes=(0, 0, 0, None))       # over kv heads
  return jax.vmap(per_row)(q, k, v, segment_ids)                 # over batch rows


def splash_attention(q, k, v, segment_ids, *, interpret: bool = False):
  """Causal self-attention within segments (0 = padding) with the Pallas splash kernel.

  Under a mesh (jax.set_mesh) the kernel runs per shard through shard_map, batch split as
  the logical rule for "batch" says and heads as "act_kv_heads" says; sequence stays whole.
  `interpret=True` runs the kernel in the Pallas interpreter (any backend; tests on CPU).
  """
  batch, q_len, heads, head_dim = q.shape
  kv_heads = k.shape[2]
  if not interpret and jax.default_backend() != "tpu":
    raise ValueError(f"model.attention='splash' needs a TPU (backend is {jax.default_backend()!r}); "
                     f"use 'dot_product' or 'xla'")
  if q_len % 128:       # the kernel's key blocks are whole multiples of the TPU's 128 lanes
    raise ValueError(f"model.attention='splash' needs a sequence length that is a multiple of 128 "
                     f"(got {q_len}); pad the rows (data.seq_len) or use 'blocked'")
  q = (q * (head_dim ** -0.5)).astype(q.dtype)
  q = q.reshape(batch, q_len, kv_heads, heads // kv_heads, head_dim).transpose(0, 2, 3, 1, 4)
  k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)        # [b, kv, s, d]
  local = functools.partial(_splash_local, interpret=interpret)
  mesh = jax.sharding.get_abstract_mesh()
  if not mesh.empty:
    batch_axes, head_axes = nn.logical_to_mesh_axes(("batch", "act_kv_heads"))
    spec = jax.P(batch_axes, head_axes)
    local = jax.shard_map(local, in_specs=(spec, spec, spec, jax.P(batch_axes)), out_specs=spec,
                          check_vma=False)
  out = local(q, k, v, segment_ids.astype(jnp.int32))             # [b, kv, g, t, d]
  return out.transpose(0, 3, 1, 2, 4).reshape(batch, q_len, heads, head_dim)

