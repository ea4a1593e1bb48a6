"""The GRPO objective (paper §4.1.1, eq. 3) as a pure loss under the train-step contract.

Per response token t of output i (r = ratio, A = advantage, eps = clip range):
  r_t  = pi_theta(o_t) / pi_old(o_t)
  pg_t = -min(r_t A_t, clip(r_t, 1 - eps, 1 + eps_high) A_t)
  kl_t = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1          (unbiased, always >= 0; eq. 4)
  l_t  = pg_t + beta kl_t
How the l_t are averaged is `aggregation` (an ablation knob, see configs/grpo.py):
  "sequence_mean"  the paper: mean over each output's tokens, then mean over outputs.
                   loss_sum = sum_i mean_t l_it, weight = number of outputs.
  "token_mean"     DAPO: one mean over all response tokens of the batch (long outputs weigh more).
                   loss_sum = sum_it l_it, weight = number of response tokens.
  "constant"       Dr. GRPO: each output's token SUM divided by a constant (the max response
                   length), then mean over outputs; no length bias.
                   loss_sum = sum_i sum_t l_it / normalizer, weight = number of outputs.
In every mode the step loss is sum(loss_sum) / sum(weight) over micro-batches, so how the
global batch is split never changes it (dsmath_jax/train/step.py).

Batches are shared-prompt rows (dsmath_jax/rl/packing.py): the per-token fields are
[rows, k, n] (k outputs per row, n = max_new_tokens slots each), flattened to one output
per line, [rows * k, n], before the terms above. `loss_mask` is 1 on response tokens that
carry loss and 0 on padding and tool-output tokens (tool outputs are not the policy's actions).
"""
import jax
import jax.numpy as jnp

AGGREGATIONS = ("sequence_mean", "token_mean", "constant")


def target_logprobs(logits, targets):
  """log_softmax(logits)[target] per position.  logits [..., vocab], targets [...] -> [...] float32."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


def target_entropy(logits):
  """Entropy of each position's distribution.  logits [..., vocab] -> [...] float32."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def token_logprobs(logits, tokens):
  """log pi(tokens[:, t] | tokens[:, :t]) aligned with tokens (0 at t = 0), for plain rows.

  logits: [batch, seq, vocab]; tokens: [batch, seq] -> [batch, seq] float32.
  """
  return jnp.pad(target_logprobs(logits[:, :-1], tokens[:, 1:]), ((0, 0), (1, 0)))


def token_entropy(logits):
  """Entropy of the next-token distribution, aligned like `token_logprobs`.  [batch, seq]."""
  return jnp.pad(target_entropy(logits[:, :-1]), ((0, 0), (1, 0)))


def response_logits(apply_fn, params, batch):
  """Logits at every response token of shared-prompt rows (packing.py).  -> [rows * k, n, vocab]."""
  rows, k, n = batch["target_slots"].shape
  logits = apply_fn(params, batch["tokens"], positions=batch["positions"],
                    segment_ids=batch["segment_ids"], prefix_segment_ids=batch["prefix_segment_ids"],
                    output_positions=batch["target_slots"].reshape(rows, k * n))   # [rows, k * n, vocab]
  return logits.reshape(rows * k, n, logits.shape[-1])


def response_logprobs(apply_fn, params, batch):
  """log pi(response token) of shared-prompt rows.  -> [rows, k, n] float32."""
  rows, k, n = batch["target_slots"].shape
  logits = response_logits(apply_fn, params, batch)
  return target_logprobs(logits, batch["target_tokens"].reshape(rows * k, n)).reshape(rows, k, n)


def kl_k3(logprobs, ref_logprobs):
  """KL(pi_theta || pi_ref) estimator of eq. 4: r - log r - 1 with r = pi_ref / pi_theta."""
  log_ratio = ref_logprobs - logprobs
  return jnp.exp(log_ratio) - log_ratio - 1.0


def aggregate(values, mask, aggregation: str, normalizer: float):
  """(sum, weight) of per-token `values` [batch, seq] under an aggregation mode (see module doc)."""
  token_sum = jnp.sum(values * mask, axis=-1)                        # [batch]
  token_count = jnp.sum(mask, axis=-1)                               # [batch]
  has_tokens = (token_count > 0).astype(jnp.float32)
  if aggregation == "sequence_mean":
    return jnp.sum(token_sum / jnp.maximum(token_count, 1.0)), jnp.sum(has_tokens)
  if aggregation == "token_mean":
    return jnp.sum(token_sum), jnp.sum(token_count)
  if aggregation == "constant":
    return jnp.sum(token_sum) / normalizer, jnp.sum(has_tokens)
  raise ValueError(f"rl.aggregation={aggregation!r}; choose one of {AGGREGATIONS}")


def grpo_terms(logprobs, batch, *, clip_eps: float = 0.2, clip_eps_high: float | None = None,
               kl_coef: float = 0.04, aggregation: str = "sequence_mean",
               normalizer: float = 1.0, entropy=None):
  """(loss_sum, weight, aux_sums) of eq. 3 from the policy's token log-probs [batch, seq].

  batch: old_logprobs, ref_logprobs, advantages, loss_mask, each [batch, seq] aligned with tokens.
  aux_sums use the same aggregation as the loss, so sum / weight is their batch average.
  """
  mask = batch["loss_mask"].astype(jnp.float32)
  advantages = batch["advantages"].astype(jnp.float32)
  high = clip_eps if clip_eps_high is None else clip_eps_high
  log_ratio = logprobs - batch["old_logprobs"]
  ratio = jnp.exp(log_ratio)
  unclipped = ratio * advantages
  clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + high) * advantages
  policy_loss = -jnp.minimum(unclipped, clipped)
  kl = kl_k3(logprobs, batch["ref_logprobs"])
  per_token = policy_loss + kl_coef * kl if kl_coef else policy_loss
  loss_sum, weight = aggregate(per_token, mask, aggregation, normalizer)

  is_clipped = ((ratio > 1.0 + high) & (advantages > 0)) | ((ratio < 1.0 - clip_eps) & (advantages < 0))
  metrics = {
      "kl": kl,
      "policy_loss": policy_loss,
      "clip_fraction": is_clipped.astype(jnp.float32),
      "abs_log_ratio": jnp.abs(log_ratio),
  }
  if entropy is not None:
    metrics["entropy"] = entropy
  aux_sums = {name: aggregate(jax.lax.stop_gradient(v), mask, aggregation, normalizer)[0]
              for name, v in metrics.items()}
  return loss_sum, weight, aux_sums


def make_loss_fn(*, clip_eps: float = 0.2, clip_eps_high: float | None = None,
                 kl_coef: float = 0.04, aggregation: str = "sequence_mean",
                 normalizer: float = 1.0, with_entropy: bool = True):
  """loss_fn(params, batch, apply_fn) -> (loss_sum, weight, aux_sums) for train_step, on
  shared-prompt rows (packing.py).

  apply_fn: dsmath_jax.train.step.make_apply_fn (the Transformer's __call__).
  """
  if aggregation not in AGGREGATIONS:
    raise ValueError(f"rl.aggregation={aggregation!r}; choose one of {AGGREGATIONS}")

  def loss_fn(params, batch, apply_fn):
    rows, k, n = batch["target_slots"].shape
    logits = response_logits(apply_fn, params, batch)                  # [rows * k, n, vocab]
    logprobs = target_logprobs(logits, batch["target_tokens"].reshape(rows * k, n))
    entropy = jax.lax.stop_gradient(target_entropy(logits)) if with_entropy else None
    flat = {name: batch[name].reshape(rows * k, n)
            for name in ("old_logprobs", "ref_logprobs", "advantages", "loss_mask")}
    return grpo_terms(logprobs, flat, clip_eps=clip_eps, clip_eps_high=clip_eps_high,
                      kl_coef=kl_coef, aggregation=aggregation, normalizer=normalizer,
                      entropy=entropy)

  return loss_fn
