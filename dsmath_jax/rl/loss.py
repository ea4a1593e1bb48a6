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
Variants (issue 18; rl/config.py), each off by default:
  ratio_level "sequence"  GSPO: every token of output i uses s_i = exp(mean_t log r_it), one
                   length-normalized sequence ratio (`sequence_log_ratio`).
  dual_clip c      dual-clip PPO: where A < 0, pg_t = min(pg_t, -c A_t), so a huge ratio on a bad
                   token cannot blow the loss up (`clipped_policy_loss`).
  is_weights       truncated importance sampling: pg_t *= w_t = min(pi_old/pi_sampler, C), computed
                   on the host (advantages.truncated_importance_weights); a batch without it has w = 1.
  temperature T    log-probs of logits / T, the distribution the sampler drew from.
In every mode the step loss is sum(loss_sum) / sum(weight) over micro-batches, so how the
global batch is split never changes it (dsmath_jax/train/step.py).

Batches are shared-prompt rows (dsmath_jax/rl/packing.py): the per-token fields are
[rows, k, n] (k outputs per row, n = max_new_tokens slots each), flattened to one output
per line, [rows * k, n], before the terms above. `loss_mask` is 1 on response tokens that
carry loss and 0 on padding and tool-output tokens (tool outputs are not the policy's actions).

`logits_chunk` > 0 (model.logits_chunk) computes the response log-probs and entropies from
the final hidden states that many positions at a time (dsmath_jax/model/vocab.py), so the
[rows, k * n, vocab] logits never exist at once; values and gradients are unchanged, for
every variant above (they all read the log-probs `response_token_stats` returns).
"""
import jax
import jax.numpy as jnp

from dsmath_jax.model import vocab

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


def response_logits(apply_fn, params, batch, **kwargs):
  """Logits at every response token of shared-prompt rows (packing.py).  -> [rows * k, n, vocab].

  With return_hidden=True in kwargs: the final hidden states there, [rows * k, n, embed].
  """
  rows, k, n = batch["target_slots"].shape
  logits = apply_fn(params, batch["tokens"], positions=batch["positions"],
                    segment_ids=batch["segment_ids"], prefix_segment_ids=batch["prefix_segment_ids"],
                    output_positions=batch["target_slots"].reshape(rows, k * n), **kwargs)
  return logits.reshape(rows * k, n, logits.shape[-1])                 # [rows * k, n, vocab]


def response_token_stats(apply_fn, params, batch, *, temperature: float = 1.0, logits_chunk: int = 0,
                         entropy: bool = False):
  """(log-probs, entropies or None) of the response tokens of shared-prompt rows under
  logits / temperature, each [rows * k, n] float32; logits_chunk > 0 never forms all response
  logits at once (module doc)."""
  rows, k, n = batch["target_slots"].shape
  targets = batch["target_tokens"].reshape(rows * k, n)
  if logits_chunk:
    hidden = response_logits(apply_fn, params, batch, return_hidden=True)   # [rows * k, n, embed]
    stats = vocab.token_stats(hidden, vocab.output_kernel(params), targets, chunk=logits_chunk,
                              dtype=hidden.dtype, temperature=temperature, entropy=entropy)
    return stats["target_logit"] - stats["log_norm"], stats.get("entropy")
  logits = scale_logits(response_logits(apply_fn, params, batch), temperature)  # [rows * k, n, vocab]
  return target_logprobs(logits, targets), target_entropy(logits) if entropy else None


def response_logprobs(apply_fn, params, batch, temperature: float = 1.0, *, logits_chunk: int = 0):
  """log pi(response token) of shared-prompt rows (of logits / temperature).  -> [rows, k, n] float32."""
  rows, k, n = batch["target_slots"].shape
  logprobs, _ = response_token_stats(apply_fn, params, batch, temperature=temperature,
                                     logits_chunk=logits_chunk)
  return logprobs.reshape(rows, k, n)


def scale_logits(logits, temperature: float):
  """logits / temperature (a Python float; 1 leaves them untouched)."""
  return logits if temperature == 1.0 else logits.astype(jnp.float32) / temperature


def sequence_log_ratio(log_ratio, mask):
  """GSPO (Zheng et al., 2025): each output's mean token log-ratio over its loss tokens,
  broadcast back to its tokens.  [batch, seq] -> [batch, seq]."""
  count = jnp.maximum(jnp.sum(mask, axis=-1, keepdims=True), 1.0)
  return jnp.broadcast_to(jnp.sum(log_ratio * mask, axis=-1, keepdims=True) / count, log_ratio.shape)


def clipped_policy_loss(ratio, advantages, *, clip_eps: float, clip_eps_high: float, dual_clip: float = 0.0):
  """-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) per token (eq. 3; eps_high > eps_low is DAPO's
  clip-higher); with dual_clip = c > 1, capped at -c A where A < 0 (Ye et al., 2020)."""
  clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps_high) * advantages
  policy_loss = -jnp.minimum(ratio * advantages, clipped)
  if dual_clip:
    policy_loss = jnp.where(advantages < 0, jnp.minimum(policy_loss, -dual_clip * advantages), policy_loss)
  return policy_loss


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
               normalizer: float = 1.0, entropy=None, dual_clip: float = 0.0, ratio_level: str = "token"):
  """(loss_sum, weight, aux_sums) of eq. 3 from the policy's token log-probs [batch, seq].

  batch: old_logprobs, ref_logprobs, advantages, loss_mask, each [batch, seq] aligned with tokens,
  and optionally is_weights (truncated IS correction).
  aux_sums use the same aggregation as the loss, so sum / weight is their batch average.
  """
  mask = batch["loss_mask"].astype(jnp.float32)
  advantages = batch["advantages"].astype(jnp.float32)
  high = clip_eps if clip_eps_high is None else clip_eps_high
  log_ratio = logprobs - batch["old_logprobs"]
  if ratio_level == "sequence":
    log_ratio = sequence_log_ratio(log_ratio, mask)
  ratio = jnp.exp(log_ratio)
  policy_loss = clipped_policy_loss(ratio, advantages, clip_eps=clip_eps, clip_eps_high=high, dual_clip=dual_clip)
  if "is_weights" in batch:
    policy_loss = policy_loss * batch["is_weights"].astype(jnp.float32)
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
                 normalizer: float = 1.0, with_entropy: bool = True, temperature: float = 1.0,
                 dual_clip: float = 0.0, ratio_level: str = "token", logits_chunk: int = 0):
  """loss_fn(params, batch, apply_fn) -> (loss_sum, weight, aux_sums) for train_step, on
  shared-prompt rows (packing.py). Variant knobs: see the module doc.

  apply_fn: dsmath_jax.train.step.make_apply_fn (the Transformer's __call__).
  logits_chunk: model.logits_chunk (see the module doc).
  """
  if aggregation not in AGGREGATIONS:
    raise ValueError(f"rl.aggregation={aggregation!r}; choose one of {AGGREGATIONS}")

  def loss_fn(params, batch, apply_fn):
    rows, k, n = batch["target_slots"].shape
    logprobs, entropy = response_token_stats(apply_fn, params, batch, temperature=temperature,
                                             logits_chunk=logits_chunk, entropy=with_entropy)  # [rows * k, n]
    entropy = None if entropy is None else jax.lax.stop_gradient(entropy)
    flat = {name: batch[name].reshape(rows * k, n)
            for name in ("old_logprobs", "ref_logprobs", "advantages", "loss_mask", "is_weights")
            if name in batch}
    return grpo_terms(logprobs, flat, clip_eps=clip_eps, clip_eps_high=clip_eps_high,
                      kl_coef=kl_coef, aggregation=aggregation, normalizer=normalizer,
                      entropy=entropy, dual_clip=dual_clip, ratio_level=ratio_level)

  return loss_fn
