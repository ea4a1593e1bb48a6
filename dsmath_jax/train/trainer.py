"""The training loop shared by pretraining (§2.3) and SFT (§3.1): next batch, step, log, save.

Re-running the same command resumes from the latest checkpoint in WORKDIR/checkpoints,
data position included. The run starts from `config.checkpoint` (load_or_init) when
set, else from a random init, and ends with save_pretrained(WORKDIR/"model"), which the
next stage's `config.checkpoint` points at. `train` is the door: it writes WORKDIR/config.json
and turns the config into typed values; `fit` and everything below take those values. WORKDIR
may be a gs:// URL: every path below goes through dsmath_jax.paths.
"""
import dataclasses
import functools
import time
from collections.abc import Mapping
from typing import NamedTuple

import jax
import numpy as np
from absl import logging

from dsmath_jax import config_types, console, paths, runtime, sharding
from dsmath_jax.data import pipeline, sources
from dsmath_jax.model import llama, loading
from dsmath_jax.train import benchmark_eval as bench_lib
from dsmath_jax.train import checkpointing, optim
from dsmath_jax.train import loss as loss_lib
from dsmath_jax.train import metrics as metrics_lib
from dsmath_jax.train import state as state_lib
from dsmath_jax.train import step as step_lib

# Sections of a pretrain/SFT config, each typed by its own dataclass (LlamaConfig, DataConfig, ...).
SECTIONS = ("task", "model", "mesh", "distributed", "logical_axis_rules", "data", "optim", "train", "eval",
            "benchmark_eval")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """The top-level keys of a pretrain/SFT config besides its sections."""
  seed: int                      # parameter init and the train state's rng
  checkpoint: str                # load_or_init source: orbax/HF dir or GGUF; "" = random init of config.model

  @classmethod
  def from_config(cls, config) -> "RunConfig":
    return config_types.from_section(cls, config, where="config",
                                     ignore=SECTIONS + (config_types.ALLOW_CHANGE_KEY,))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The `train` section: how the loop runs, logs and checkpoints."""
  num_microbatches: int          # the global batch is accumulated over this many slices
  log_every: int                 # steps between metrics records
  checkpoint_every: int          # steps between checkpoints of (state, data position)
  keep_checkpoints: int          # checkpoints kept in WORKDIR/checkpoints
  peak_flops_per_device: float   # for MFU; 0 = the chip's data-sheet peak (metrics.PEAK_FLOPS), none on CPU
  wandb_project: str = ""        # Weights & Biases project beside TensorBoard; "" = off (as in GRPO)
  profile_steps: int = 0         # jax.profiler trace of this many steps after the first (compiling) one

  @classmethod
  def from_config(cls, section, where: str = "config.train") -> "TrainConfig":
    train = config_types.from_section(cls, section, where=where)
    config_types.require(train, where, positive=("num_microbatches", "log_every", "checkpoint_every",
                                                 "keep_checkpoints"),
                         non_negative=("peak_flops_per_device", "profile_steps"))
    return train


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """The `eval` section: held-out loss during training (not the `eval` task)."""
  every_steps: int               # steps between held-out losses; 0 = none
  num_batches: int               # batches of `sources` per held-out loss
  sources: Mapping[str, sources.SourceSpec]   # held-out records (same specs as data.sources)

  @classmethod
  def from_config(cls, section, where: str = "config.eval") -> "EvalConfig":
    fields = config_types.strict_fields(cls, section, where=where)
    fields["sources"] = sources.source_specs(fields["sources"], f"{where}.sources")
    evaluation = cls(**fields)
    config_types.require(evaluation, where, non_negative=("every_steps", "num_batches"))
    return evaluation


def _check_batch(global_batch: int, num_microbatches: int, mesh, rules):
  if global_batch % num_microbatches:
    raise ValueError(f"data.global_batch={global_batch} does not split into "
                     f"train.num_microbatches={num_microbatches}")
  sharding.check_batch_divides(global_batch // num_microbatches, mesh, rules,
                               what="data.global_batch / train.num_microbatches")


def _eval_batches(data: pipeline.DataConfig, evaluation: EvalConfig, tokenizer, kind, rows: slice):
  """A fixed list of held-out host batches (evaluation.sources), or [] when none."""
  if not evaluation.sources:
    return []
  held_out = dataclasses.replace(data, sources=evaluation.sources)
  iterator = iter(pipeline.batches(held_out, tokenizer, kind, rows=rows, shuffle=False, repeat=False))
  return [batch for _, batch in zip(range(evaluation.num_batches), iterator)]


class TaskConfig(NamedTuple):
  """A pretrain/SFT config as typed values, one per section."""
  run: RunConfig
  model: llama.LlamaConfig
  mesh: runtime.MeshConfig
  data: pipeline.DataConfig
  optim: optim.OptimConfig
  train: TrainConfig
  eval: EvalConfig
  benchmark_eval: bench_lib.BenchmarkEvalConfig


def typed_config(config) -> TaskConfig:
  """The door: every key of the config read once, unknown or missing keys refused by name."""
  return TaskConfig(
      run=RunConfig.from_config(config), model=llama.LlamaConfig.from_config(config.model),
      mesh=runtime.MeshConfig.from_config(config.mesh), data=pipeline.DataConfig.from_config(config.data),
      optim=optim.OptimConfig.from_config(config.optim), train=TrainConfig.from_config(config.train),
      eval=EvalConfig.from_config(config.eval),
      benchmark_eval=bench_lib.BenchmarkEvalConfig.from_config(config.get("benchmark_eval")))


def input_paths(c: TaskConfig) -> list[tuple[str, str]]:
  """(config key, path) of every file a pretrain/SFT run reads: checked before any model is built."""
  return ([("config.checkpoint", c.run.checkpoint)] + c.data.input_paths()
          + sources.source_paths(c.eval.sources, "config.eval.sources") + c.benchmark_eval.input_paths())


def train(config, workdir: str, *, kind: str,
          benchmark_evaluator: bench_lib.EvaluatorFactory | None = None) -> dict:
  """Tasks `pretrain` and `sft`: the config becomes typed values (typed_config), then `fit`.

  kind: 'text' | 'sft'. benchmark_evaluator: what builds the `config.benchmark_eval` callback (the
  entry point passes eval/during_training.make_evaluator). Returns the last logged metrics.
  """
  c = typed_config(config)
  paths.check_orbax_dir(workdir, "--workdir")     # s3:// refused here, before any model is built
  bench_lib.check_factory(c.benchmark_eval, benchmark_evaluator)
  config_types.check_paths(input_paths(c))
  config_types.write_config(config, workdir)
  mesh, rules = runtime.setup(config)
  _check_batch(c.data.global_batch, c.train.num_microbatches, mesh, rules)
  pretrained = loading.load_or_init(c.run.checkpoint, c.model, tokenizer=c.data.tokenizer, mesh=mesh,
                                    rules=rules)
  benchmark = bench_lib.make_evaluator(c.benchmark_eval, benchmark_evaluator, pretrained.config,
                                       pretrained.tokenizer, mesh, rules, workdir)
  return fit(pretrained, workdir, kind=kind, seed=c.run.seed, data=c.data, optim_config=c.optim,
             train_config=c.train, evaluation=c.eval, mesh=mesh, rules=rules, benchmark=benchmark,
             benchmark_config=c.benchmark_eval,
             run_config={section: dataclasses.asdict(values) for section, values in c._asdict().items()})


def fit(pretrained: loading.Pretrained, workdir: str, *, kind: str, seed: int,
        data: pipeline.DataConfig, optim_config: optim.OptimConfig, train_config: TrainConfig,
        evaluation: EvalConfig, mesh, rules, benchmark: bench_lib.Evaluator | None = None,
        benchmark_config: bench_lib.BenchmarkEvalConfig = bench_lib.BenchmarkEvalConfig(),
        run_config: dict | None = None) -> dict:
  """Runs (or resumes) training from `pretrained` (params None: random init from `seed`).

  benchmark: called with (params, step) at step 0 of a fresh run, every `benchmark_config.every_steps`
  and at the last step; its `bench/...` metrics join that step's record. run_config: the typed
  config as a dict, the config of the W&B run (`train_config.wandb_project`)."""
  model_config, params, tokenizer = pretrained
  state, shardings = state_lib.create_train_state(optim_config, model_config, mesh, rules, params,
                                                  seed=seed)
  del params, pretrained
  batch_sharding = sharding.batch_sharding(mesh, rules, 2)
  rows = sharding.process_rows(batch_sharding, data.global_batch)   # this host's rows of each batch
  iterator = iter(pipeline.batches(data, tokenizer, kind, rows=rows))
  checkpointer = checkpointing.Checkpointer(
      paths.join(workdir, config_types.CHECKPOINTS_DIR),
      every_steps=train_config.checkpoint_every, keep=train_config.keep_checkpoints)
  state, start = checkpointer.restore(state, iterator)

  spec = pipeline.batch_spec(data)
  apply_fn = step_lib.make_apply_fn(model_config)
  loss_fn = functools.partial(loss_lib.cross_entropy_loss, z_loss=optim_config.z_loss,
                              logits_chunk=model_config.logits_chunk)
  train_step = step_lib.compile_train_step(
      shardings, mesh, rules, spec, loss_fn=loss_fn, apply_fn=apply_fn,
      num_microbatches=train_config.num_microbatches,
      learning_rate_fn=optim.make_schedule(optim_config))
  eval_batches = _eval_batches(data, evaluation, tokenizer, kind, rows)
  eval_step = step_lib.compile_eval_step(shardings.params, mesh, rules, spec, loss_fn=loss_fn,
                                         apply_fn=apply_fn)

  def evaluate(params):
    sums = [jax.device_get(eval_step(params, sharding.put_global(b, batch_sharding)))
            for b in eval_batches]
    return float(sum(s[0] for s in sums) / max(sum(s[1] for s in sums), 1.0))

  bench_keys = benchmark_config.metric_keys() if benchmark is not None else ()
  # The trace skips the run's first step, which compiles (as GRPO's, rl/grpo.py).
  writer = metrics_lib.MetricsWriter(workdir, console_keys=metrics_lib.CONSOLE_KEYS + bench_keys,
                                     wandb_project=train_config.wandb_project, run_config=run_config,
                                     profile_steps=(start + 1, train_config.profile_steps))
  steps, log_every = optim_config.steps, train_config.log_every
  eval_every = evaluation.every_steps if eval_batches else 0
  tokens_per_step = data.global_batch * data.seq_len
  flops_per_token = model_config.flops_per_token(data.seq_len)
  peak_flops = metrics_lib.peak_flops_per_device(
      train_config.peak_flops_per_device, jax.devices()[0].device_kind) * jax.device_count()
  first = {}
  if eval_every and start == 0:
    first["eval_loss"] = evaluate(state.params)
  if benchmark is not None and start == 0:
    first.update(benchmark(state.params, 0))
  if first:
    writer.write(0, first)
  logging.info("training %s (%.1fM params) from step %d to %d on mesh %s", kind,
               model_config.num_params / 1e6, start, steps, dict(mesh.shape))
  last, last_time, last_step, stopped, saved, done = {}, time.time(), start, False, True, start
  bar = console.progress("pretrain" if kind == "text" else kind, steps, initial=start,
                         enabled=jax.process_index() == 0)
  for step in range(start, steps):
    writer.step(step)
    batch = sharding.put_global(next(iterator), batch_sharding)
    state, metrics = train_step(state, batch)
    done = step + 1
    record = {}
    if done % log_every == 0 or done == steps:
      last = {k: float(v) for k, v in jax.device_get(metrics).items()}
      now = time.time()
      tokens_per_s = tokens_per_step * (done - last_step) / max(now - last_time, 1e-9)
      last.update(tokens_per_s=tokens_per_s, **metrics_lib.mfu_entry(tokens_per_s * flops_per_token, peak_flops))
      last_time, last_step = now, done
      if eval_every and (done % eval_every == 0 or done == steps):
        last["eval_loss"] = evaluate(state.params)
      if not np.isfinite(last["loss"]):
        writer.write(done, last)
        raise FloatingPointError(f"loss is {last['loss']} at step {done}")
      record = last
    if benchmark is not None and benchmark_config.due(done, steps):
      started = time.time()
      record = {**record, **benchmark(state.params, done)}
      last_time += time.time() - started           # tokens_per_s counts training time only
    if record:
      writer.write(done, record)
    bar.update(1)
    saved = checkpointer.save(done, state, iterator)
    if checkpointer.should_stop(done):
      stopped = True
      logging.warning("stopping at step %d (preemption); re-run the command to resume", done)
      break
  if not saved:                 # the last step (or the preempted one) is always saved
    checkpointer.save(done, state, iterator, force=True)
  bar.close()
  checkpointer.close()
  writer.close()
  if not stopped:
    loading.save_pretrained(paths.join(workdir, "model"), model_config, state.params, tokenizer)
    if jax.process_index() == 0:
      metrics_lib.plot_curves(writer.path, ("loss", "eval_loss", "learning_rate", "grad_norm") + bench_keys,
                              paths.join(workdir, "loss.png"))
  return last
