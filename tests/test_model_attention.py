"""Attention kernels (dsmath_jax/model/attention.py) against a float64 numpy attention and
against the einsum reference: packed rows (segments + padding), grouped-query heads, values
and gradients; and the Transformer with each `model.attention` on packed and GRPO rows, for the
LLaMA decoder and for the family switches (Qwen2 biases, Qwen3 qk-norm, Llama-3 RoPE, tied
embeddings); prefill + decode through the KV cache give the full pass's logits whatever the choice."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from dsmath_jax.model import attention as attention_lib
from dsmath_jax.model import llama

BATCH, SEQ, HEADS, KV_HEADS, HEAD_DIM = 2, 128, 6, 2, 16


def _segments():
  """Row 0: documents of 50 and 60 tokens, then padding; row 1: 3 documents filling the row."""
  return np.stack([np.repeat([1, 2, 0], [50, 60, SEQ - 110]),
                   np.repeat([1, 2, 3], [30, 70, SEQ - 100])]).astype(np.int32)


def _qkv(seed=0):
  rng = np.random.default_rng(seed)
  return tuple(rng.normal(size=(BATCH, SEQ, heads, HEAD_DIM)).astype(np.float32)
               for heads in (HEADS, KV_HEADS, KV_HEADS))


def _mask(segments):
  slots = np.broadcast_to(np.arange(SEQ), segments.shape)
  return np.asarray(llama.attention_mask(slots, segments, slots, segments))


def _numpy_attention(q, k, v, mask):
  """float64 softmax(q k^T / sqrt(d)) v per head; query head h reads kv head h // groups."""
  groups = HEADS // KV_HEADS
  out = np.zeros(q.shape)
  for b in range(BATCH):
    for h in range(HEADS):
      scores = q[b, :, h].astype(np.float64) @ k[b, :, h // groups].T.astype(np.float64)
      scores = np.where(mask[b], scores / np.sqrt(HEAD_DIM), -np.inf)
      scores -= scores.max(axis=-1, keepdims=True)
      probs = np.exp(scores)
      out[b, :, h] = (probs / probs.sum(axis=-1, keepdims=True)) @ v[b, :, h // groups]
  return out


def _value_and_grads(attend, q, k, v, real):
  """Output and d(sum(out * w)) / d(q, k, v) on the real (non-padding) query positions."""
  weights = np.random.default_rng(9).normal(size=q.shape).astype(np.float32) * real[..., None, None]
  def objective(q, k, v):
    out = attend(q, k, v)
    return jnp.sum(out * weights), out
  (_, out), grads = jax.value_and_grad(objective, argnums=(0, 1, 2), has_aux=True)(q, k, v)
  return np.asarray(out) * real[..., None, None], [np.asarray(g) for g in grads]


def test_reference_matches_numpy_with_packing_and_gqa():
  q, k, v = _qkv()
  segments = _segments()
  real = segments != 0                         # padding queries see nothing: numpy gives NaN
  out = attention_lib.xla_attention(q, k, v, jnp.asarray(_mask(segments)))
  with np.errstate(invalid="ignore"):
    expected = _numpy_attention(q, k, v, _mask(segments))
  np.testing.assert_allclose(np.asarray(out)[real], expected[real], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["blocked", "dot_product", "splash"])
def test_kernel_equals_reference_values_and_gradients(name):
  q, k, v = _qkv(seed=1)
  segments = _segments()
  real = (segments != 0).astype(np.float32)
  mask = jnp.asarray(_mask(segments))
  reference = _value_and_grads(lambda *a: attention_lib.xla_attention(*a, mask), q, k, v, real)
  if name == "blocked":     # query blocks of 48, 48 and 32: later blocks see more keys
    kernel = lambda *a: attention_lib.blocked_attention(*a, mask, block=48)
  elif name == "dot_product":
    kernel = lambda *a: attention_lib.dot_product_attention(*a, mask)
  else:   # the Pallas interpreter runs the TPU kernel on CPU: same program, no TPU needed
    kernel = lambda *a: attention_lib.splash_attention(
        *a, jnp.asarray(segments), interpret=jax.default_backend() != "tpu")
  got = _value_and_grads(kernel, q, k, v, real)
  np.testing.assert_allclose(got[0], reference[0], rtol=1e-5, atol=1e-6)
  for got_grad, reference_grad in zip(got[1], reference[1]):
    assert np.abs(reference_grad).max() > 1e-3
    np.testing.assert_allclose(got_grad, reference_grad, rtol=1e-5, atol=1e-5)


def test_unknown_attention_fails_clearly():
  with pytest.raises(ValueError, match="model.attention='flash'.*'xla', 'blocked', 'dot_product', 'splash'"):
    llama.LlamaConfig.from_config(common.model("tiny", attention="flash"))


def test_splash_off_tpu_fails_clearly():
  if jax.default_backend() == "tpu":
    pytest.skip("on a TPU splash runs")
  q, k, v = _qkv()
  with pytest.raises(ValueError, match="needs a TPU"):
    attention_lib.splash_attention(q, k, v, jnp.asarray(_segments()))


def test_splash_refuses_a_length_its_blocks_cannot_tile():
  q, k, v = (x[:, :100] for x in _qkv())
  with pytest.raises(ValueError, match="multiple of 128 \\(got 100\\)"):
    attention_lib.splash_attention(q, k, v, jnp.asarray(_segments()[:, :100]), interpret=True)


FAMILIES = {
    "llama": {},
    # Qwen2 q/k/v biases + Qwen3 qk-norm + Llama-3.1 RoPE + tied embeddings, all at once: the
    # kernels see only q, k, v, so one model with every switch covers each family's path.
    "qwen_llama3_tied": dict(qkv_bias=True, qk_norm=True, rope_scaling=(8.0, 1.0, 4.0, 64),
                             tie_embeddings=True),
}


def _family_params(config):
  """Initialized params moved off their init values (zero biases, unit norm scales)."""
  params = nn.unbox(llama.init_params(config, jax.random.key(0)))
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  return jax.tree.unflatten(treedef, [x + 0.05 * jax.random.normal(key, x.shape, x.dtype)
                                      for x, key in zip(leaves, keys)])


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("name", ["blocked", "dot_product", "splash"])
def test_transformer_logits_equal_reference(name, family, monkeypatch):
  """Packed rows, and GRPO's shared-prompt rows (prefix_segment_ids: splash defers to the
  reference there), give the reference's logits with each kernel."""
  if name == "splash" and jax.default_backend() != "tpu":
    monkeypatch.setattr(attention_lib, "splash_attention",
                        functools.partial(attention_lib.splash_attention, interpret=True))
  reference = llama.LlamaConfig.from_config(common.model("tiny", attention="xla", **FAMILIES[family]))
  config = llama.LlamaConfig.from_config(common.model("tiny", attention=name, **FAMILIES[family]))
  params = _family_params(reference)
  tokens = np.random.default_rng(2).integers(3, reference.vocab_size, size=(BATCH, SEQ))
  segments = _segments()
  prefix = np.where(segments == 2, 1, 0).astype(np.int32)       # document 2 also sees document 1
  real = (segments != 0)[..., None]
  for kwargs in (dict(segment_ids=segments), dict(segment_ids=segments, prefix_segment_ids=prefix)):
    expected = llama.Transformer(reference).apply({"params": params}, tokens, **kwargs)
    got = llama.Transformer(config).apply({"params": params}, tokens, **kwargs)
    np.testing.assert_allclose(np.asarray(got) * real, np.asarray(expected) * real, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", attention_lib.IMPLEMENTATIONS)
def test_prefill_and_decode_equal_the_full_pass(name, monkeypatch):
  """The sampler's path (prefill a prompt into the KV cache, then one token per call) gives the
  logits of one full pass with `name` as the training kernel: the cache path never uses it."""
  if name == "splash" and jax.default_backend() != "tpu":
    monkeypatch.setattr(attention_lib, "splash_attention",
                        functools.partial(attention_lib.splash_attention, interpret=True))
  config = llama.LlamaConfig.from_config(common.model("tiny", attention=name, **FAMILIES["qwen_llama3_tied"]))
  params = _family_params(config)
  model = llama.Transformer(config)
  tokens = np.random.default_rng(5).integers(3, config.vocab_size, size=(2, SEQ)).astype(np.int32)
  full = np.asarray(model.apply({"params": params}, tokens))                  # [2, SEQ, vocab]
  cache = llama.KVCache.init(config, batch=2, max_len=SEQ)
  logits, cache = model.apply({"params": params}, tokens[:, :SEQ - 4], cache=cache)   # prefill
  steps = [np.asarray(logits)]
  for t in range(SEQ - 4, SEQ):                                                # decode 4, one at a time
    logits, cache = model.apply({"params": params}, tokens[:, t:t + 1], cache=cache)
    steps.append(np.asarray(logits))
  np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-4, atol=1e-4)
