"""The GRPO objective (eq. 3) against a per-token numpy reference, for every aggregation mode."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsmath_jax.rl import loss as grpo_loss


def _reference(logp, old, ref, adv, mask, *, eps, eps_high, beta, aggregation, normalizer):
  """Loops over outputs and tokens as eq. 3 is written; returns the step loss (sum/weight)."""
  per_output, tokens_total, outputs = [], 0.0, 0
  total = 0.0
  for i in range(logp.shape[0]):
    terms = []
    for t in range(logp.shape[1]):
      if mask[i, t] == 0:
        continue
      ratio = np.exp(logp[i, t] - old[i, t])
      clipped = min(max(ratio, 1 - eps), 1 + eps_high)
      surrogate = min(ratio * adv[i, t], clipped * adv[i, t])
      r = np.exp(ref[i, t] - logp[i, t])
      terms.append(-surrogate + beta * (r - np.log(r) - 1))
    if not terms:
      continue
    outputs += 1
    tokens_total += len(terms)
    total += sum(terms)
    per_output.append(np.mean(terms) if aggregation == "sequence_mean" else sum(terms) / normalizer)
  if aggregation == "token_mean":
    return total / tokens_total
  return np.sum(per_output) / outputs


def _batch(seed=0, batch=5, seq=9):
  rng = np.random.default_rng(seed)
  logp = -rng.uniform(0.1, 3.0, (batch, seq))
  old = logp + rng.normal(0, 0.3, (batch, seq))            # ratios well outside [0.8, 1.2] too
  ref = logp + rng.normal(0, 0.5, (batch, seq))
  adv = rng.normal(0, 1, (batch, seq))
  mask = (rng.uniform(size=(batch, seq)) < 0.7).astype(np.float32)
  mask[2] = 0.0                                             # an output with no loss tokens (all tool output)
  return logp, dict(old_logprobs=old, ref_logprobs=ref, advantages=adv, loss_mask=mask)


@pytest.mark.parametrize("aggregation", grpo_loss.AGGREGATIONS)
@pytest.mark.parametrize("eps_high", [None, 0.28])
def test_loss_matches_numpy(aggregation, eps_high):
  logp, batch = _batch()
  loss_sum, weight, aux = grpo_loss.grpo_terms(
      jnp.asarray(logp, jnp.float32), {k: jnp.asarray(v, jnp.float32) for k, v in batch.items()},
      clip_eps=0.2, clip_eps_high=eps_high, kl_coef=0.04, aggregation=aggregation, normalizer=9.0)
  expected = _reference(logp, batch["old_logprobs"], batch["ref_logprobs"], batch["advantages"],
                        batch["loss_mask"], eps=0.2, eps_high=eps_high or 0.2, beta=0.04,
                        aggregation=aggregation, normalizer=9.0)
  np.testing.assert_allclose(float(loss_sum / weight), expected, rtol=2e-5)
  mask = batch["loss_mask"]
  if aggregation == "token_mean":
    assert float(weight) == mask.sum()
  else:
    assert float(weight) == 4                              # output 2 has no loss tokens
  # The KL metric is the same aggregation of r - log r - 1 (a pure beta=1 run of the reference).
  kl_only = _reference(logp, logp, batch["ref_logprobs"], np.zeros_like(logp), mask, eps=0.2,
                       eps_high=0.2, beta=1.0, aggregation=aggregation, normalizer=9.0)
  np.testing.assert_allclose(float(aux["kl"] / weight), kl_only, rtol=2e-5)


def test_kl_k3_matches_numpy():
  logp, ref_logp = np.random.default_rng(1).normal(size=(2, 4, 7))
  r = np.exp(ref_logp - logp)
  np.testing.assert_allclose(grpo_loss.kl_k3(logp, ref_logp), r - np.log(r) - 1, rtol=1e-5, atol=1e-6)
  assert (np.asarray(grpo_loss.kl_k3(logp, ref_logp)) >= 0).all()


def test_clip_fraction_counts_the_clipped_side_only():
  old = np.zeros((1, 4), np.float32)
  logp = np.log(np.array([[1.5, 0.5, 1.5, 0.5]], np.float32))    # ratios
  batch = dict(old_logprobs=old, ref_logprobs=logp, advantages=np.array([[1.0, -1.0, -1.0, 1.0]]),
               loss_mask=np.ones((1, 4), np.float32))
  _, weight, aux = grpo_loss.grpo_terms(jnp.asarray(logp), batch, aggregation="token_mean")
  # ratio 1.5 with A>0 and ratio .5 with A<0 are clipped; the other two keep their gradient.
  assert float(aux["clip_fraction"] / weight) == pytest.approx(0.5)


def test_token_logprobs_and_entropy_alignment():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(2, 5, 11)).astype(np.float32)
  tokens = rng.integers(0, 11, (2, 5))
  out = np.asarray(grpo_loss.token_logprobs(jnp.asarray(logits), jnp.asarray(tokens)))
  shifted = logits - logits.max(-1, keepdims=True)
  log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
  assert (out[:, 0] == 0).all()
  for b in range(2):
    for t in range(1, 5):
      assert out[b, t] == pytest.approx(log_softmax[b, t - 1, tokens[b, t]], abs=1e-5)
  entropy = np.asarray(grpo_loss.token_entropy(jnp.asarray(logits)))
  np.testing.assert_allclose(entropy[:, 1:], -(np.exp(log_softmax) * log_softmax).sum(-1)[:, :-1], rtol=1e-5)


def test_first_update_gradient_is_advantage_weighted_log_likelihood():
  """mu = 1: pi_old = pi_theta, so ratio = 1 and the clipped term's gradient is
  grad -(1/n) sum_i mean_t A_it log pi(o_it) (paper §4.1.1, the policy-gradient form)."""
  rng = np.random.default_rng(3)
  features = jnp.asarray(rng.normal(size=(4, 6, 8)), jnp.float32)       # a linear "model"
  weights = jnp.asarray(rng.normal(size=(8, 13)) * 0.3, jnp.float32)
  tokens = jnp.asarray(rng.integers(0, 13, (4, 6)))
  mask = jnp.asarray((rng.uniform(size=(4, 6)) < 0.8), jnp.float32).at[:, 0].set(0.0)
  adv = jnp.asarray(rng.normal(size=(4, 1)) * np.ones((1, 6)), jnp.float32)

  def logprobs_of(w):
    return grpo_loss.token_logprobs(features @ w, tokens)

  old = jax.lax.stop_gradient(logprobs_of(weights))

  def clipped_objective(w):
    batch = dict(old_logprobs=old, ref_logprobs=old, advantages=adv, loss_mask=mask)
    loss_sum, weight, _ = grpo_loss.grpo_terms(logprobs_of(w), batch, kl_coef=0.0)
    return loss_sum / weight

  def weighted_log_likelihood(w):
    per_output = jnp.sum(adv * logprobs_of(w) * mask, -1) / jnp.sum(mask, -1)
    return -jnp.mean(per_output)

  np.testing.assert_allclose(jax.grad(clipped_objective)(weights),
                             jax.grad(weighted_log_likelihood)(weights), rtol=1e-5, atol=1e-6)
  assert float(jnp.abs(jax.grad(clipped_objective)(weights)).max()) > 1e-3


def test_unknown_aggregation_fails_with_the_field():
  with pytest.raises(ValueError, match="rl.aggregation"):
    grpo_loss.make_loss_fn(aggregation="mean")
