"""Task `grpo` (paper §4.1-4.2): set up the policy, its reference and optional reward model, run
the loop of GRPO steps (grpo_step.py), save the policy.

Policy, reference and reward model live on the same mesh; the reference is a copy of the
policy's parameters at the start of training (or of the iteration, iterative.py). The config
becomes typed values once, in `run` (rl/config.py); everything below takes those.
"""
import dataclasses
import functools

import jax
from absl import logging

from dsmath_jax import config_types, console, paths, runtime
from dsmath_jax.model import loading
from dsmath_jax.rl import grpo_step
from dsmath_jax.rl import questions as questions_lib
from dsmath_jax.rl import reward_model as rm_lib
from dsmath_jax.rl.config import GRPOConfig
from dsmath_jax.rl.machinery import build_machinery
from dsmath_jax.train import benchmark_eval as bench_lib


def setup(run: GRPOConfig, mesh, rules):
  """(machinery, state, ref_params, rm_params): the policy from `run.checkpoint` (the run-time
  fields of `run.model` applied) or a fresh init, the reference copy, the reward model. PPO's
  state is a ppo.PPOState: the policy's and a value model's (decoder copied from the policy)."""
  from dsmath_jax.train import state as state_lib
  policy = loading.load_or_init(run.checkpoint, run.model, tokenizer=run.tokenizer, mesh=mesh, rules=rules)
  state, shardings = state_lib.create_train_state(run.optim, policy.config, mesh, rules, params=policy.params,
                                                  seed=run.seed)
  if run.rl.objective == "ppo":
    from dsmath_jax.rl import machinery as machinery_lib
    from dsmath_jax.rl import ppo
    from dsmath_jax.rl import rm_task
    value_state, value_shardings = rm_task.create_rm_state(machinery_lib.value_optim(run), run.seed + 1,
                                                           policy.config, mesh, rules, base_params=state.params)
    state, shardings = ppo.PPOState(state, value_state), ppo.PPOState(shardings, value_shardings)
  rm_config = rm_params = rm_shardings = None
  if run.rl.reward != "rule":
    if not run.rl.reward_model:
      raise ValueError(f"config.rl.reward={run.rl.reward!r} needs config.rl.reward_model (a `reward_model` "
                       "task's WORKDIR/model)")
    rm_config, rm_params, rm_shardings = rm_lib.load_reward_model(run.rl.reward_model, mesh, rules)
  machinery = build_machinery(run, policy.config, policy.tokenizer, shardings, mesh, rules, rm_config,
                              rm_shardings)
  ref_params = machinery.copy_params(state.params) if run.rl.needs_reference else None
  return machinery, state, ref_params, rm_params


def train(run: GRPOConfig, workdir: str, machinery, state, ref_params, rm_params=None, *, steps: int | None = None,
          questions=None, writer=None, step_offset: int = 0, checkpointer=None, benchmark=None):
  """The loop: next questions, rl_step, metrics. Returns the final state.

  benchmark: an Evaluator (train/benchmark_eval.py) called with (params, step) before the first step
  of a fresh run, every `run.benchmark_eval.every_steps` and at the last step; its `bench/...`
  metrics join that step's record.

  With a `checkpointer` (train/checkpointing.py) the loop resumes from its latest checkpoint
  and saves every `train.checkpoint_every` steps and on SIGTERM. A step's questions (those of
  dynamic sampling's extra rounds too) and sampling keys depend only on (seed, step), so the
  policy state is all a resume needs.
  """
  from dsmath_jax.train.metrics import MetricsWriter
  questions = questions if questions is not None else questions_lib.load_questions(run.data.questions)
  questions = questions_lib.fit_questions(questions, machinery.tokenizer, run.data.template, run.rl.max_prompt_len)
  own_writer = writer is None
  bench_keys = run.benchmark_eval.metric_keys() if benchmark is not None else ()
  writer = writer or MetricsWriter(workdir, console_keys=("reward_mean", "accuracy", "kl", "response_length",
                                                          "time_sampling", "time_training") + bench_keys,
                                   wandb_project=run.train.wandb_project, run_config=dataclasses.asdict(run),
                                   profile_steps=(step_offset + 1, run.train.profile_steps))
  batches = questions_lib.question_batches(questions, run.data.questions_per_step, run.seed + step_offset)
  rng = jax.random.key(run.seed)
  steps = run.optim.steps if steps is None else steps
  done, saved = 0, True                                    # steps finished; is `done` checkpointed
  if checkpointer is not None:
    state, done = checkpointer.restore(state)
    for _ in range(done):                                  # the questions of the steps already done
      next(batches)
  if benchmark is not None and done == 0:
    writer.write(step_offset, benchmark(state.params, step_offset))
  bar = console.progress("grpo", steps, initial=done, enabled=jax.process_index() == 0)
  while done < steps:
    global_step = step_offset + done
    writer.step(global_step)
    fresh = functools.partial(questions_lib.fresh_questions, questions, run.data.questions_per_step, run.seed,
                              global_step)                 # dynamic sampling "resample": extra rounds
    state, metrics, _ = grpo_step.rl_step(run.rl, machinery, state, ref_params, next(batches),
                                          jax.random.fold_in(rng, global_step), rm_params, fresh_questions=fresh)
    done += 1
    if benchmark is not None and run.benchmark_eval.due(done, steps):
      metrics = {**metrics, **benchmark(state.params, global_step + 1)}
    writer.write(global_step + 1, metrics)
    bar.update(1)
    if checkpointer is not None:
      saved = checkpointer.save(done, state)
      if checkpointer.should_stop(done):
        logging.warning("stopping at step %d (preemption); re-run the command to resume", done)
        break
  bar.close()
  if checkpointer is not None and not saved:    # the last step (or the preempted one) is always saved
    checkpointer.save(done, state, force=True)
  if own_writer:
    writer.close()
  return state


def run(config, workdir: str, benchmark_evaluator=None):
  """Task `grpo`: train, plot the curves, save WORKDIR/model (load_pretrained reads it; PPO also
  WORKDIR/value_model) and the
  resolved config (WORKDIR/config.json). Re-running the command resumes from WORKDIR/checkpoints
  (the reference is the policy of `config.checkpoint` again). Iterative RL (rl.iterations > 0)
  is `iterative.run`; main routes it. benchmark_evaluator: what builds the `config.benchmark_eval`
  callback (the entry point passes eval/during_training.make_evaluator). WORKDIR and
  `config.checkpoint` may be gs:// URLs: every path goes through dsmath_jax.paths."""
  from dsmath_jax.train import checkpointing
  from dsmath_jax.train.metrics import plot_curves
  paths.check_orbax_dir(workdir, "--workdir")     # s3:// refused here, before any model is built
  grpo_run = GRPOConfig.from_config(config)
  bench_lib.check_factory(grpo_run.benchmark_eval, benchmark_evaluator)
  config_types.check_paths(grpo_run.input_paths())
  config_types.write_config(config, workdir)
  if grpo_run.rl.iterations:
    raise ValueError(f"config.rl.iterations={grpo_run.rl.iterations}: iterative RL is iterative.run "
                     "(the `grpo` task of dsmath_jax.main routes it)")
  mesh, rules = runtime.setup(config)
  machinery, state, ref_params, rm_params = setup(grpo_run, mesh, rules)
  checkpointer = checkpointing.Checkpointer(
      paths.join(workdir, config_types.CHECKPOINTS_DIR),
      every_steps=grpo_run.train.checkpoint_every, keep=grpo_run.train.keep_checkpoints)
  try:
    benchmark = bench_lib.make_evaluator(grpo_run.benchmark_eval, benchmark_evaluator, machinery.model_config,
                                         machinery.tokenizer, mesh, rules, workdir)
    state = train(grpo_run, workdir, machinery, state, ref_params, rm_params, checkpointer=checkpointer,
                  benchmark=benchmark)
  finally:
    checkpointer.close()
    machinery.close()
  plot_curves(paths.join(workdir, "metrics.jsonl"),
              ("reward_mean", "accuracy", "kl", "response_length", "zero_advantage_groups", "entropy")
              + grpo_run.benchmark_eval.metric_keys(),
              paths.join(workdir, "curves.png"))
  loading.save_pretrained(paths.join(workdir, "model"), machinery.model_config, state.params,
                          machinery.tokenizer)
  if grpo_run.rl.objective == "ppo":        # rm_lib.load_reward_model reads it back
    rm_lib.save_reward_model(paths.join(workdir, "value_model"), machinery.model_config, state.value.params,
                             machinery.tokenizer)
  return state
