"""The training loop shared by pretraining (§2.3) and SFT (§3.1): next batch, step, log, save.

Re-running the same command resumes from the latest checkpoint in WORKDIR/checkpoints,
data position included. The run starts from `config.checkpoint` (load_pretrained) when
set, else from a random init, and ends with save_pretrained(WORKDIR/"model"), which the
next stage's `config.checkpoint` points at.
"""
import dataclasses
import functools
import os
import time

import jax
import numpy as np
from absl import logging

from dsmath_jax import sharding
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.data import pipeline
from dsmath_jax.model import llama, loading
from dsmath_jax.train import checkpointing, optim
from dsmath_jax.train import loss as loss_lib
from dsmath_jax.train import metrics as metrics_lib
from dsmath_jax.train import state as state_lib
from dsmath_jax.train import step as step_lib

# Run-time knobs of config.model that apply on top of a loaded checkpoint's shape.
_RUNTIME_FIELDS = ("dtype", "param_dtype", "remat", "scan_layers")


def initial_model(config, mesh, rules):
  """(LlamaConfig, params or None, tokenizer) from config.checkpoint or config.model."""
  if config.get("checkpoint", ""):
    loaded = loading.load_pretrained(config.checkpoint, dtype=config.model.dtype,
                                     param_dtype=config.model.param_dtype, mesh=mesh, rules=rules)
    model_config = dataclasses.replace(
        loaded.config, **{k: config.model[k] for k in _RUNTIME_FIELDS if k in config.model})
    tokenizer = loaded.tokenizer or tokenizers.load_tokenizer(config.data.tokenizer)
    return model_config, loaded.params, tokenizer
  tokenizer = tokenizers.load_tokenizer(config.data.tokenizer)
  model_config = llama.LlamaConfig.from_config(config.model)
  if tokenizer.vocab_size > model_config.vocab_size:
    raise ValueError(f"tokenizer {config.data.tokenizer!r} has {tokenizer.vocab_size} tokens, "
                     f"config.model.vocab_size is {model_config.vocab_size}")
  return model_config, None, tokenizer


def _check_batch(config, mesh, rules):
  global_batch, micro = int(config.data.global_batch), int(config.train.num_microbatches)
  if global_batch % micro:
    raise ValueError(f"data.global_batch={global_batch} does not split into "
                     f"train.num_microbatches={micro}")
  sharding.check_batch_divides(global_batch // micro, mesh, rules,
                               what="data.global_batch / train.num_microbatches")


def _eval_batches(config, tokenizer, kind):
  """A fixed list of held-out host batches (config.eval.sources), or [] when none."""
  if not config.get("eval", None) or not config.eval.get("sources", None):
    return []
  data_config = config.data.copy_and_resolve_references()
  data_config.sources = config.eval.sources
  iterator = iter(pipeline.batches(data_config, tokenizer, kind, shuffle=False, repeat=False))
  return [batch for _, batch in zip(range(int(config.eval.num_batches)), iterator)]


def train(config, workdir: str, *, kind: str) -> dict:
  """Runs (or resumes) training; returns the last logged metrics. kind: 'text' | 'sft'."""
  sharding.maybe_initialize_distributed(config)
  mesh = sharding.make_mesh(config.mesh)
  rules = tuple(tuple(rule) for rule in config.logical_axis_rules)
  _check_batch(config, mesh, rules)
  model_config, params, tokenizer = initial_model(config, mesh, rules)
  state, shardings = state_lib.create_train_state(config, model_config, mesh, rules, params)
  del params
  iterator = iter(pipeline.batches(config.data, tokenizer, kind))
  checkpointer = checkpointing.Checkpointer(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      every_steps=int(config.train.checkpoint_every), keep=int(config.train.keep_checkpoints))
  state, start = checkpointer.restore(state, iterator)

  spec = pipeline.batch_spec(config.data)
  apply_fn = step_lib.make_apply_fn(model_config)
  loss_fn = functools.partial(loss_lib.cross_entropy_loss, z_loss=float(config.optim.z_loss))
  train_step = step_lib.compile_train_step(
      shardings, mesh, rules, spec, loss_fn=loss_fn, apply_fn=apply_fn,
      num_microbatches=int(config.train.num_microbatches),
      learning_rate_fn=optim.make_schedule(config.optim))
  batch_sharding = sharding.batch_sharding(mesh, rules, 2)
  eval_batches = _eval_batches(config, tokenizer, kind)
  eval_step = step_lib.compile_eval_step(shardings.params, mesh, rules, spec, loss_fn=loss_fn,
                                         apply_fn=apply_fn)

  def evaluate(params):
    sums = [jax.device_get(eval_step(params, sharding.put_global(b, batch_sharding)))
            for b in eval_batches]
    return float(sum(s[0] for s in sums) / max(sum(s[1] for s in sums), 1.0))

  writer = metrics_lib.MetricsWriter(workdir)
  steps, log_every = int(config.optim.steps), int(config.train.log_every)
  eval_every = int(config.eval.get("every_steps", 0)) if eval_batches else 0
  tokens_per_step = int(config.data.global_batch) * int(config.data.seq_len)
  flops_per_token = model_config.flops_per_token(int(config.data.seq_len))
  peak_flops = float(config.train.peak_flops_per_device) * jax.device_count()
  if eval_every and start == 0:
    writer.write(0, {"eval_loss": evaluate(state.params)})
  logging.info("training %s (%.1fM params) from step %d to %d on mesh %s", kind,
               model_config.num_params / 1e6, start, steps, dict(mesh.shape))
  last, last_time, last_step, stopped, saved, done = {}, time.time(), start, False, True, start
  for step in range(start, steps):
    batch = sharding.put_global(next(iterator), batch_sharding)
    state, metrics = train_step(state, batch)
    done = step + 1
    if done % log_every == 0 or done == steps:
      last = {k: float(v) for k, v in jax.device_get(metrics).items()}
      now = time.time()
      tokens_per_s = tokens_per_step * (done - last_step) / max(now - last_time, 1e-9)
      last.update(tokens_per_s=tokens_per_s, mfu=tokens_per_s * flops_per_token / peak_flops)
      last_time, last_step = now, done
      if eval_every and (done % eval_every == 0 or done == steps):
        last["eval_loss"] = evaluate(state.params)
      writer.write(done, last)
      if not np.isfinite(last["loss"]):
        raise FloatingPointError(f"loss is {last['loss']} at step {done}")
    saved = checkpointer.save(done, state, iterator)
    if checkpointer.should_stop(done):
      stopped = True
      logging.warning("stopping at step %d (preemption); re-run the command to resume", done)
      break
  if not saved:                 # the last step (or the preempted one) is always saved
    checkpointer.save(done, state, iterator, force=True)
  checkpointer.close()
  writer.close()
  if not stopped:
    loading.save_pretrained(os.path.join(workdir, "model"), model_config, state.params, tokenizer)
    if jax.process_index() == 0:
      metrics_lib.plot_curves(writer.path, ("loss", "eval_loss", "learning_rate", "grad_norm"),
                              os.path.join(workdir, "loss.png"))
  return last
