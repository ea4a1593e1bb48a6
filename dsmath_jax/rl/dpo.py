"""DPO as a method of the RL trainer (paper §5.2.1, Rafailov et al., 2023): chosen/rejected pairs
built from graded samples of one question, and the DPO loss over them.

Pairs: a group's outputs sorted by reward; the best is paired with the worst, the second best
with the second worst, and so on (G/2 pairs, every output used once); a pair whose rewards are
equal (or an invalid sample) carries no loss. A training row holds one pair after one prompt
copy (rl.outputs_per_row = 2): slot 0 chosen, slot 1 rejected (packing.py).

Loss of a pair, with s = sum over the response's loss tokens of log pi(o_t) (the sequence
log-likelihood) and z = beta ((s_w - s_ref_w) - (s_l - s_ref_l)):
  l = -log sigmoid(z),  so the gradient coefficient of every token is
  GC(chosen) = beta sigmoid(-z) and GC(rejected) = -beta sigmoid(-z)   (paper eq. in §5.2.1).
loss_sum = sum of l over live pairs, weight = number of live pairs (the train-step contract).
"""
import jax
import jax.numpy as jnp
import numpy as np

from dsmath_jax.rl import loss as loss_lib


def pair_order(rewards, valid, group_size: int):
  """(order [num_outputs]: outputs rearranged as chosen, rejected, chosen, rejected, ...;
  live [num_outputs // 2] bool: the pair's rewards differ and both are valid)."""
  rewards = np.asarray(rewards, np.float64).reshape(-1, group_size)
  valid = np.asarray(valid, bool).reshape(-1, group_size)
  order, live = [], []
  for g in range(rewards.shape[0]):
    ranked = np.argsort(-np.where(valid[g], rewards[g], -np.inf), kind="stable")   # best first, invalid last
    for i in range(group_size // 2):
      chosen, rejected = ranked[i], ranked[group_size - 1 - i]
      order += [g * group_size + chosen, g * group_size + rejected]
      live.append(bool(valid[g, chosen] and valid[g, rejected] and rewards[g, chosen] > rewards[g, rejected]))
  return np.array(order, np.int64), np.array(live, bool)


def dpo_terms(logprobs, ref_logprobs, loss_mask, *, beta: float):
  """(loss_sum, weight, aux_sums) of DPO from per-token log-probs [pairs, 2, seq] (slot 0 chosen)."""
  mask = loss_mask.astype(jnp.float32)
  live = jnp.all(jnp.sum(mask, axis=-1) > 0, axis=-1).astype(jnp.float32)      # [pairs]
  margin = jnp.sum((logprobs - ref_logprobs) * mask, axis=-1)                    # [pairs, 2]
  z = beta * (margin[:, 0] - margin[:, 1])                                       # [pairs]
  loss = -jax.nn.log_sigmoid(z)
  z_value = jax.lax.stop_gradient(z)
  aux = {"pair_accuracy": jnp.sum((z_value > 0) * live), "pair_margin": jnp.sum(z_value * live)}
  return jnp.sum(loss * live), jnp.sum(live), aux


def make_loss_fn(*, beta: float, temperature: float = 1.0, logits_chunk: int = 0):
  """loss_fn(params, batch, apply_fn) for train_step on pair rows (outputs_per_row = 2);
  logits_chunk: model.logits_chunk (rl/loss.py)."""

  def loss_fn(params, batch, apply_fn):
    logprobs = loss_lib.response_logprobs(apply_fn, params, batch, temperature,
                                          logits_chunk=logits_chunk)     # [rows, k, n]
    return dpo_terms(logprobs, batch["ref_logprobs"], batch["loss_mask"], beta=beta)

  return loss_fn
