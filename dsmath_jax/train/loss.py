"""Next-token cross-entropy over packed rows, as a LOSS FUNCTION for train_step.

Batch convention (docs/conventions.md, "Batches"): `tokens` [batch, seq]; the model reads all of `tokens`
and the logits at t predict tokens[t+1]. `loss_mask[t]` is 1 where tokens[t] is a
prediction TARGET (so it is aligned with the targets, and loss_mask[:, 0] is never used).
A target also needs the same segment as its input token: the first token of a packed
document is not predicted from the previous document, and padding (segment 0) never is.

A loss function returns SUMS (loss_sum, weight, aux_sums) so that train_step can divide
by the number of loss tokens of the whole global batch: micro-batching and sharding then
give the same loss as one big batch (docs/conventions.md, "The loss contract").
"""
import jax
import jax.numpy as jnp

from dsmath_jax.model import vocab


def target_weights(batch):
  """[batch, seq-1] float32: 1 where tokens[:, 1:] is a loss target of tokens[:, :-1]."""
  segments = batch["segment_ids"]
  same_document = (segments[:, 1:] == segments[:, :-1]) & (segments[:, 1:] != 0)
  return batch["loss_mask"][:, 1:].astype(jnp.float32) * same_document


def model_logits(params, batch, apply_fn, **kwargs):
  """Logits [batch, seq, vocab] of the packed batch (positions restart per document);
  with return_hidden=True the final hidden states [batch, seq, embed] instead."""
  return apply_fn(params, batch["tokens"], positions=batch["positions"],
                  segment_ids=batch["segment_ids"], **kwargs)


def token_nll(logits, targets):
  """-log softmax(logits)[target] and logsumexp, in float32.  logits [b, t, v] -> [b, t] x2."""
  stats = vocab.logit_stats(logits.astype(jnp.float32), targets)
  return stats["log_norm"] - stats["target_logit"], stats["log_norm"]


def cross_entropy_loss(params, batch, apply_fn, *, z_loss: float = 0.0, logits_chunk: int = 0):
  """(sum of masked token NLL [+ z_loss * logsumexp^2], number of loss tokens, aux sums).

  The optional z-loss (PaLM §5) keeps the softmax normalizer near 1 in long bf16 runs;
  bind it with functools.partial(cross_entropy_loss, z_loss=1e-4).
  logits_chunk > 0 (model.logits_chunk) projects the final hidden states to the vocabulary
  that many positions at a time (dsmath_jax/model/vocab.py): same loss and gradients,
  never all [batch, seq, vocab] logits at once.
  """
  # Every position predicts the next token; the last one has no target (weight 0). Keeping
  # all seq positions, rather than slicing logits[:, :-1], spares a copy of the logits
  # and its zero-padded gradient.
  targets = jnp.pad(batch["tokens"][:, 1:], ((0, 0), (0, 1)))           # [b, t]
  weights = jnp.pad(target_weights(batch), ((0, 0), (0, 1)))            # [b, t]
  if logits_chunk:
    hidden = model_logits(params, batch, apply_fn, return_hidden=True)  # [b, t, e]
    stats = vocab.token_stats(hidden, vocab.output_kernel(params), targets, chunk=logits_chunk,
                              dtype=hidden.dtype, correct=True)
  else:
    logits = model_logits(params, batch, apply_fn).astype(jnp.float32)  # [b, t, v]
    stats = vocab.logit_stats(logits, targets, correct=True)
  nll = stats["log_norm"] - stats["target_logit"]
  nll_sum = jnp.sum(nll * weights)
  z_sum = jnp.sum(jnp.square(stats["log_norm"]) * weights)
  aux = {"nll": nll_sum, "accuracy": jnp.sum(stats["correct"] * weights)}
  if z_loss:
    aux["z_loss"] = z_loss * z_sum
  return nll_sum + z_loss * z_sum, jnp.sum(weights), aux
