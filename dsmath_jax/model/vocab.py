"""Per-token statistics of the output softmax without materializing all the logits.

A 4K-token row at DeepSeekMath's vocabulary (102,400) has 419M logits, 1.6 GB in float32,
and the backward pass of a plain cross-entropy holds a second copy for the softmax. Here the
final hidden states are projected to the vocabulary `chunk` positions at a time inside a
`lax.scan` whose body is rematerialized: the forward keeps only each chunk's statistics
(logsumexp, target logit, ...), and the backward recomputes the chunk's logits to form its
gradient, so at most [batch, chunk, vocab] logits exist at once. Values and gradients equal
those of the unchunked computation (tests/test_model_vocab.py); the price is one more
[chunk, embed] x [embed, vocab] matmul per chunk in the backward pass.

The projection is the model's own (`output_kernel`: lm_head, or the tied embedding in the
model's compute dtype, as Transformer computes its logits); `temperature` divides the float32
logits as rl/loss.py's scale_logits does (the distribution the sampler drew from).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from dsmath_jax.model import dense


def output_kernel(params) -> jax.Array:
  """The [embed, vocab] output projection of Transformer params: lm_head, or the tied embedding."""
  if "lm_head" in params:
    return params["lm_head"]["kernel"]
  return params["embed_tokens"]["embedding"].T


def _logits(hidden, kernel, dtype, temperature: float):
  """[batch, n, embed] @ [embed, vocab] in the model's compute dtype -> float32 logits / temperature."""
  logits = dense.project(hidden.astype(dtype), kernel.astype(dtype))
  logits = nn.with_logical_constraint(logits, ("batch", "seq", "act_vocab")).astype(jnp.float32)
  return logits if temperature == 1.0 else logits / temperature


def logit_stats(logits, targets, *, entropy: bool = False, correct: bool = False):
  """Per-position statistics of float32 logits [..., vocab] and targets [...] (int).

  Returns a dict of [...] float32 arrays: log_norm (logsumexp), target_logit, and when asked
  entropy (of the softmax) and correct (1.0 where the argmax is the target).
  """
  log_norm = jax.nn.logsumexp(logits, axis=-1)
  stats = {"log_norm": log_norm,
           "target_logit": jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]}
  if entropy:
    probs = jnp.exp(logits - log_norm[..., None])
    stats["entropy"] = log_norm - jnp.sum(probs * logits, axis=-1)
  if correct:
    stats["correct"] = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return stats


def token_stats(hidden, kernel, targets, *, chunk: int, dtype=jnp.float32, temperature: float = 1.0,
                entropy: bool = False, correct: bool = False):
  """`logit_stats` of the logits (hidden @ kernel) / temperature, computed `chunk` positions at a time.

  hidden: [batch, seq, embed] (final normed hidden states); kernel: [embed, vocab];
  targets: [batch, seq] int; temperature: a Python float. chunk <= 0 or >= seq computes all
  logits at once.
  Returns a dict of [batch, seq] float32 arrays (see logit_stats).
  """
  batch, seq, embed = hidden.shape
  if chunk <= 0 or chunk >= seq:
    return logit_stats(_logits(hidden, kernel, dtype, temperature), targets, entropy=entropy, correct=correct)
  num_chunks = -(-seq // chunk)
  pad = num_chunks * chunk - seq
  hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
  targets = jnp.pad(targets, ((0, 0), (0, pad)))
  hidden = hidden.reshape(batch, num_chunks, chunk, embed).swapaxes(0, 1)   # [n, batch, chunk, embed]
  targets = targets.reshape(batch, num_chunks, chunk).swapaxes(0, 1)        # [n, batch, chunk]

  @jax.checkpoint
  def one_chunk(chunk_hidden, chunk_targets):
    return logit_stats(_logits(chunk_hidden, kernel, dtype, temperature), chunk_targets,
                       entropy=entropy, correct=correct)

  stats = jax.lax.map(lambda args: one_chunk(*args), (hidden, targets))    # each [n, batch, chunk]
  return {name: value.swapaxes(0, 1).reshape(batch, num_chunks * chunk)[:, :seq]
          for name, value in stats.items()}
