"""The train step: one pure function (state, batch) -> (state, metrics), jitted with shardings.

A LOSS FUNCTION `loss_fn(params, batch, apply_fn) -> (loss_sum, weight, aux_sums)` returns
sums; the step's loss is sum(loss_sum) / sum(weight) over all micro-batches of the global
batch, and the gradient is that of the same ratio (weight never depends on params), so
micro-batching and sharding do not change loss, gradients or updates (docs/conventions.md,
"The loss contract").
SFT/pretraining use loss.cross_entropy_loss; GRPO passes its own loss_fn.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dsmath_jax import runtime, sharding
from dsmath_jax.model import llama


def make_apply_fn(model_config: llama.LlamaConfig):
  """apply_fn(params, tokens, **kwargs) -> Transformer(model_config) output (logits [b, t, v])."""
  model = llama.Transformer(model_config)

  def apply_fn(params, tokens, **kwargs):
    return model.apply({"params": params}, tokens, **kwargs)

  return apply_fn


def _split_microbatches(batch, num_microbatches: int):
  """[batch, ...] -> [micro, batch/micro, ...], micro-batch m = rows m, m+M, m+2M, ...

  Strided rows keep every micro-batch spread over all data-parallel devices (a contiguous
  split would put micro-batch 0 on the first devices only).
  """
  def split(x):
    rows = x.shape[0]
    if rows % num_microbatches:
      raise ValueError(f"batch of {rows} rows does not split into {num_microbatches} micro-batches")
    x = x.reshape(rows // num_microbatches, num_microbatches, *x.shape[1:]).swapaxes(0, 1)
    return nn.with_logical_constraint(x, (None, "batch") + (None,) * (x.ndim - 2))
  return jax.tree.map(split, batch)


def _sums_and_grads(params, batch, loss_fn, apply_fn):
  """(loss_sum, weight, aux_sums) of one (micro-)batch and d loss_sum / d params."""
  def objective(p):
    loss_sum, weight, aux = loss_fn(p, batch, apply_fn)
    return loss_sum, (jax.lax.stop_gradient(weight), aux)
  (loss_sum, (weight, aux)), grads = jax.value_and_grad(objective, has_aux=True)(params)
  return (loss_sum, weight, aux), grads


def train_step(state, batch, *, loss_fn, apply_fn, num_microbatches: int = 1,
               learning_rate_fn=None):
  """One optimizer update on the global batch; metrics are global scalars."""
  if num_microbatches == 1:
    (loss_sum, weight, aux), grads = _sums_and_grads(state.params, batch, loss_fn, apply_fn)
  else:
    micro = _split_microbatches(batch, num_microbatches)
    first = jax.tree.map(lambda x: x[0], micro)
    sums_shape = jax.eval_shape(lambda b: _sums_and_grads(state.params, b, loss_fn, apply_fn)[0],
                                first)
    zeros = (jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), sums_shape),
             jax.tree.map(jnp.zeros_like, state.params))

    def accumulate(carry, micro_batch):
      sums, grads = _sums_and_grads(state.params, micro_batch, loss_fn, apply_fn)
      return jax.tree.map(jnp.add, carry, (sums, grads)), None

    ((loss_sum, weight, aux), grads), _ = jax.lax.scan(accumulate, zeros, micro)
  scale = 1.0 / jnp.where(weight > 0, weight, 1.0)
  grads = jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)
  metrics = {"loss": loss_sum * scale, "grad_norm": optax.global_norm(grads), "weight": weight,
             **{name: value * scale for name, value in aux.items()}}
  if learning_rate_fn is not None:
    metrics["learning_rate"] = learning_rate_fn(state.step)
  return state.apply_gradients(grads), metrics


def batch_shardings(mesh, rules, batch_spec):
  """NamedShardings for a batch dict: every leaf split over 'batch' on its leading axis."""
  return {name: sharding.batch_sharding(mesh, rules, len(shape)) for name, shape in batch_spec.items()}


def compile_train_step(state_shardings, mesh, rules, batch_spec, *, loss_fn, apply_fn,
                       num_microbatches: int = 1, learning_rate_fn=None):
  """jax.jit(train_step) with in/out shardings and the state donated.

  batch_spec: {name: shape} of the global batch (shapes fix each leaf's rank). The
  returned callable traces under the mesh and logical rules, so the model's activation
  constraints take effect.
  """
  step = functools.partial(train_step, loss_fn=loss_fn, apply_fn=apply_fn,
                           num_microbatches=num_microbatches, learning_rate_fn=learning_rate_fn)
  return runtime.jit_under_mesh(
      step, mesh, rules, in_shardings=(state_shardings, batch_shardings(mesh, rules, batch_spec)),
      out_shardings=(state_shardings, None), donate_argnums=0)


def compile_eval_step(param_shardings, mesh, rules, batch_spec, *, loss_fn, apply_fn):
  """jit of (params, batch) -> (loss_sum, weight): held-out loss without an update."""
  def evaluate(params, batch):
    loss_sum, weight, _ = loss_fn(params, batch, apply_fn)
    return loss_sum, weight
  return runtime.jit_under_mesh(evaluate, mesh, rules,
                                in_shardings=(param_shardings, batch_shardings(mesh, rules, batch_spec)))
