"""Chunked output-softmax statistics (dsmath_jax/model/vocab.py) equal float64 numpy and the
unchunked computation, values and gradients; and the SFT, GRPO (every log-prob variant) and
DPO losses give the same values and gradients with model.logits_chunk as without, on packed
rows, with an lm_head and with tied embeddings."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from dsmath_jax.model import llama
from dsmath_jax.model import vocab
from dsmath_jax.rl import dpo
from dsmath_jax.rl import loss as rl_loss
from dsmath_jax.rl import packing
from dsmath_jax.sample.sampler import Completion
from dsmath_jax.train import loss as train_loss
from dsmath_jax.train import step as step_lib

BATCH, SEQ, EMBED, VOCAB = 2, 21, 8, 50


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  hidden = rng.normal(size=(BATCH, SEQ, EMBED)).astype(np.float32)
  kernel = rng.normal(size=(EMBED, VOCAB)).astype(np.float32)
  targets = rng.integers(0, VOCAB, size=(BATCH, SEQ)).astype(np.int32)
  weights = rng.uniform(size=(BATCH, SEQ)).astype(np.float32)
  return hidden, kernel, targets, weights


@pytest.mark.parametrize("chunk", [0, 4, 7, 64])   # 4 does not divide 21: a padded last chunk
def test_stats_match_numpy(chunk):
  hidden, kernel, targets, _ = _inputs()
  stats = vocab.token_stats(jnp.asarray(hidden), jnp.asarray(kernel), jnp.asarray(targets),
                            chunk=chunk, entropy=True, correct=True)
  logits = hidden.astype(np.float64) @ kernel.astype(np.float64)
  log_norm = np.log(np.exp(logits).sum(-1))
  probs = np.exp(logits - log_norm[..., None])
  np.testing.assert_allclose(stats["log_norm"], log_norm, rtol=1e-5)
  np.testing.assert_allclose(stats["target_logit"], np.take_along_axis(logits, targets[..., None], -1)[..., 0],
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(stats["entropy"], -(probs * np.log(probs)).sum(-1), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(stats["correct"], logits.argmax(-1) == targets)


@pytest.mark.parametrize("chunk", [4, 7])
def test_chunked_gradients_equal_unchunked(chunk):
  hidden, kernel, targets, weights = _inputs(seed=1)

  def objective(hidden, kernel, chunk):
    stats = vocab.token_stats(hidden, kernel, jnp.asarray(targets), chunk=chunk, entropy=True)
    logprobs = stats["target_logit"] - stats["log_norm"]
    return jnp.sum(weights * (jnp.exp(logprobs) + logprobs ** 2 + stats["entropy"]))

  expected = jax.value_and_grad(objective, argnums=(0, 1))(hidden, kernel, 0)
  got = jax.jit(jax.value_and_grad(objective, argnums=(0, 1)), static_argnums=2)(hidden, kernel, chunk)
  np.testing.assert_allclose(got[0], expected[0], rtol=1e-5)
  for got_grad, expected_grad in zip(got[1], expected[1]):
    np.testing.assert_allclose(got_grad, expected_grad, rtol=1e-5, atol=1e-5)


def _tiny(**overrides):
  config = llama.LlamaConfig.from_config(common.model("tiny", **overrides))
  return config, nn.unbox(llama.init_params(config, jax.random.key(0)))


@pytest.mark.parametrize("tie_embeddings", [False, True])
def test_sft_loss_chunked_equals_unchunked(tie_embeddings):
  config, params = _tiny(tie_embeddings=tie_embeddings)
  rng = np.random.default_rng(3)
  tokens = rng.integers(3, config.vocab_size, size=(2, 24)).astype(np.int32)
  segment_ids = np.stack([np.repeat([1, 2, 0], [9, 11, 4]), np.repeat([1, 2], [13, 11])]).astype(np.int32)
  batch = dict(tokens=tokens, segment_ids=segment_ids, positions=np.asarray(llama.segment_positions(segment_ids)),
               loss_mask=(rng.uniform(size=(2, 24)) < 0.8).astype(np.float32))
  apply_fn = step_lib.make_apply_fn(config)

  def run(chunk):
    def objective(p):
      loss_sum, weight, aux = train_loss.cross_entropy_loss(p, batch, apply_fn, z_loss=1e-2, logits_chunk=chunk)
      return loss_sum, (weight, aux)
    return jax.value_and_grad(objective, has_aux=True)(params)

  (loss_a, (weight_a, aux_a)), grads_a = run(0)
  (loss_b, (weight_b, aux_b)), grads_b = run(5)
  assert float(weight_a) == float(weight_b) > 10
  np.testing.assert_allclose(loss_b, loss_a, rtol=1e-5)
  for name in aux_a:
    np.testing.assert_allclose(aux_b[name], aux_a[name], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), grads_b, grads_a)


def _shared_prompt_rows(config, lengths_per_prompt, outputs_per_row):
  """Packed GRPO rows (packing.py) of random prompts/responses with non-trivial old log-probs,
  advantages of both signs, a reference policy and truncated-IS weights."""
  rng = np.random.default_rng(4)
  outputs, advantages = [], []
  for prompt_len, lengths in lengths_per_prompt:
    prompt = [1] + rng.integers(3, config.vocab_size, prompt_len - 1).tolist()
    for length in lengths:
      outputs.append(Completion(0, prompt, rng.integers(3, config.vocab_size, length).tolist(),
                                (-rng.uniform(0.5, 3, length)).tolist(), [0] * length, "eos", ""))
      advantages.append(np.full(length, rng.normal(), np.float32))
  rows = packing.pack_outputs(outputs, advantages, np.ones(len(outputs), bool), outputs_per_row=outputs_per_row,
                              max_new_tokens=8, pad_id=0)
  rows["ref_logprobs"] = rows["old_logprobs"] - 0.05 * rows["loss_mask"]
  rows["is_weights"] = np.minimum(rng.uniform(0.2, 3.0, rows["loss_mask"].shape), 2.0).astype(np.float32)
  return jax.tree.map(jnp.asarray, rows)


def _value_and_grads(loss_fn, params, batch, apply_fn):
  def objective(p):
    loss_sum, weight, aux = loss_fn(p, batch, apply_fn)
    return loss_sum, (weight, aux)
  return jax.value_and_grad(objective, has_aux=True)(params)


def _assert_same(got, expected):
  (loss_b, (weight_b, aux_b)), grads_b = got
  (loss_a, (weight_a, aux_a)), grads_a = expected
  np.testing.assert_allclose(loss_b, loss_a, rtol=1e-5)
  assert float(weight_a) == float(weight_b)
  for name in aux_a:
    np.testing.assert_allclose(aux_b[name], aux_a[name], rtol=1e-5, atol=1e-7)
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_a)) > 1e-4
  # atol scales with each parameter's largest gradient: an entry that sums cancelling float32
  # terms (a tied embedding's lookup and output parts) keeps only the leaf's absolute precision.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6 * max(1.0, np.abs(b).max())),
               grads_b, grads_a)


# The rl/loss.py variants that read the policy's log-probs (rl/config.py): each one's loss,
# metrics and gradients are the same with model.logits_chunk as without.
GRPO_VARIANTS = {
    "paper": dict(kl_coef=0.04),
    "temperature_logprobs": dict(kl_coef=0.04, temperature=0.7),
    "gspo_sequence_ratio": dict(kl_coef=0.0, ratio_level="sequence", aggregation="token_mean"),
    "dual_clip_dr_grpo": dict(kl_coef=0.04, dual_clip=3.0, clip_eps_high=0.28, aggregation="constant",
                              normalizer=8.0),
}


@pytest.mark.parametrize("tie_embeddings", [False, True])
@pytest.mark.parametrize("variant", sorted(GRPO_VARIANTS))
def test_grpo_loss_chunked_equals_unchunked(variant, tie_embeddings):
  """Also with the truncated-IS weights in the batch (rl.tis_cap) and tied embeddings (Qwen-style)."""
  config, params = _tiny(tie_embeddings=tie_embeddings)
  batch = _shared_prompt_rows(config, ((5, (6, 0, 3)), (9, (2, 7, 4))), outputs_per_row=3)
  apply_fn = step_lib.make_apply_fn(config)
  kwargs = GRPO_VARIANTS[variant]
  temperature = kwargs.get("temperature", 1.0)
  np.testing.assert_allclose(
      rl_loss.response_logprobs(apply_fn, params, batch, temperature, logits_chunk=3),
      rl_loss.response_logprobs(apply_fn, params, batch, temperature), rtol=1e-5, atol=1e-6)
  expected = _value_and_grads(rl_loss.make_loss_fn(**kwargs), params, batch, apply_fn)
  got = _value_and_grads(rl_loss.make_loss_fn(**kwargs, logits_chunk=3), params, batch, apply_fn)
  _assert_same(got, expected)


def test_dpo_loss_chunked_equals_unchunked():
  config, params = _tiny()
  batch = _shared_prompt_rows(config, ((5, (6, 3)), (9, (2, 7))), outputs_per_row=2)
  apply_fn = step_lib.make_apply_fn(config)
  expected = _value_and_grads(dpo.make_loss_fn(beta=0.5, temperature=0.9), params, batch, apply_fn)
  got = _value_and_grads(dpo.make_loss_fn(beta=0.5, temperature=0.9, logits_chunk=5), params, batch, apply_fn)
  _assert_same(got, expected)
