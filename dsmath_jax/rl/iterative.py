"""Iterative RL (paper §4.1.4, Algorithm 1): the reward model follows the policy.

for iteration in 1..I:
  reference <- policy
  M GRPO steps of the policy against the current reward model
  label the CURRENT policy's samples (outcome: grader; process: Math-Shepherd), and continue
  training the reward model on them plus a replay of `rm.replay_fraction` (paper: 10%) of
  the examples of earlier iterations
Each iteration ends with a checkpoint; re-running the command resumes after the last one (run()).
The task is `grpo` with `rl.iterations > 0` (configs/grpo_iterative.py; main routes it here). Without an initial
`rl.reward_model`, the reward model starts from the policy's decoder and is first trained on
the initial policy's labelled samples.
"""
import dataclasses

import jax
import numpy as np
from absl import logging

from dsmath_jax import config_types, paths, runtime
from dsmath_jax.model import loading
from dsmath_jax.rl import grpo
from dsmath_jax.rl import reward_model as rm_lib
from dsmath_jax.rl import rm_task
from dsmath_jax.rl.config import GRPOConfig
from dsmath_jax.train.optim import OptimConfig
from dsmath_jax.rl.machinery import build_machinery
from dsmath_jax.rl.questions import fit_questions, load_questions


@dataclasses.dataclass(frozen=True)
class IterativeRMConfig:
  """How the reward model is retrained between iterations (config.rm)."""
  label: rm_task.LabelConfig             # labelling the current policy's samples
  optim: OptimConfig                     # paper §4.1.2: lr 2e-5
  seq_len: int = 2048                    # prompt + response tokens per reward-model row
  global_batch: int = 256                # reward-model rows per update
  num_microbatches: int = 32             # gradient accumulation slices (memory only)
  replay_fraction: float = 0.1           # share of earlier iterations' examples replayed (§4.1.4: 10%)

  @classmethod
  def from_config(cls, section, where: str = "config.rm") -> "IterativeRMConfig":
    top = config_types.strict_fields(cls, section, where=where)
    rm = cls(**dict(top, label=rm_task.LabelConfig.from_config(section.label, where=f"{where}.label"),
                    optim=OptimConfig.from_config(section.optim, where=f"{where}.optim")))
    config_types.require(rm, where, positive=("seq_len", "global_batch", "num_microbatches"),
                         non_negative=("replay_fraction",))
    return rm

  def training(self) -> rm_task.RMTrainConfig:
    return rm_task.RMTrainConfig(seq_len=self.seq_len, global_batch=self.global_batch,
                                 num_microbatches=self.num_microbatches, optim=self.optim)


def typed(config) -> tuple[GRPOConfig, IterativeRMConfig]:
  """The door: (the GRPO run, the reward model's retraining), checked against each other."""
  grpo_run = GRPOConfig.from_config(config, ignore=("rm",))
  rm = IterativeRMConfig.from_config(config.rm)
  if grpo_run.benchmark_eval.every_steps:
    raise ValueError("config.benchmark_eval.every_steps: benchmark evaluation during training is wired into "
                     "plain GRPO, SFT and pretraining, not yet into iterative RL; set it to 0")
  rl = grpo_run.rl
  if rl.iterations < 1 or rl.steps_per_iteration < 1:
    raise ValueError(f"iterative RL needs config.rl.iterations >= 1 and config.rl.steps_per_iteration >= 1 "
                     f"(got {rl.iterations}, {rl.steps_per_iteration})")
  if rl.reward == "rule":
    raise ValueError("iterative RL retrains a reward model: set config.rl.reward to outcome_rm or process_rm")
  if rl.reward == "process_rm" and rm.label.step_delimiter != rl.step_delimiter:
    raise ValueError(f"config.rm.label.step_delimiter={rm.label.step_delimiter!r} differs from "
                     f"config.rl.step_delimiter={rl.step_delimiter!r}: the reward model would score other steps")
  return grpo_run, rm


def replay(history: list, fraction: float, rng: np.random.Generator) -> list:
  """A random `fraction` of the earlier iterations' examples (at least one when there are any)."""
  if not history or fraction <= 0:
    return []
  count = max(1, int(round(fraction * len(history))))
  return [history[i] for i in rng.choice(len(history), size=min(count, len(history)), replace=False)]


HISTORY_DIR = "rm_history"     # WORKDIR/rm_history/iteration_K.jsonl: the examples labelled at iteration K


def _history_path(workdir: str, iteration: int) -> str:
  return paths.join(workdir, HISTORY_DIR, f"iteration_{iteration}.jsonl")


def run(config, workdir: str):
  """Task `grpo` with rl.iterations > 0: WORKDIR/model (policy), WORKDIR/reward_model, metrics,
  curves and the resolved config (WORKDIR/config.json).

  Re-running the command resumes at the last finished iteration: each one ends with a checkpoint of
  the policy and the reward model (optimizer states included) in WORKDIR/checkpoints, and its
  labelled examples in WORKDIR/rm_history, which the replay reads back. Every random choice is a
  function of (seed, iteration), so a resumed run repeats the uninterrupted one exactly; an
  iteration cut short is redone from its start (SIGTERM stops at the next iteration's end).
  """
  from dsmath_jax.train import checkpointing
  from dsmath_jax.train import state as state_lib
  from dsmath_jax.train.metrics import MetricsWriter, plot_curves
  paths.check_orbax_dir(workdir, "--workdir")     # s3:// refused here, before any model is built
  grpo_run, rm = typed(config)
  config_types.check_paths(grpo_run.input_paths())
  config_types.write_config(config, workdir)
  mesh, rules = runtime.setup(config)
  kind = "process" if grpo_run.rl.reward == "process_rm" else "outcome"
  policy = loading.load_or_init(grpo_run.checkpoint, grpo_run.model, tokenizer=grpo_run.tokenizer, mesh=mesh,
                                rules=rules)
  model_config, tokenizer = policy.config, policy.tokenizer
  params = rm_task.policy_params(policy, grpo_run.seed)
  questions = fit_questions(load_questions(grpo_run.data.questions), tokenizer, grpo_run.data.template,
                            grpo_run.rl.max_prompt_len)
  key = jax.random.key(grpo_run.seed + 1)
  training = rm.training()

  def label(policy_params, iteration):
    """The examples of `iteration` (0: the initial policy's), saved for the replay of a resumed run."""
    rng = np.random.default_rng([grpo_run.seed, iteration])
    picked = [questions[i] for i in rng.choice(len(questions), min(len(questions), rm.label.num_questions),
                                               replace=False)]
    examples = rm_task.policy_examples(rm.label, kind, policy_params, model_config, tokenizer, picked,
                                       jax.random.fold_in(key, iteration), mesh=mesh, rules=rules,
                                       template=grpo_run.data.template)
    if jax.process_index() == 0:
      rm_task.write_examples(_history_path(workdir, iteration), examples)
    return examples

  writer = MetricsWriter(workdir, console_keys=("reward_mean", "accuracy", "kl", "rm_loss", "rm_accuracy"))
  if grpo_run.rl.reward_model:
    rm_config, rm_params, _ = rm_lib.load_reward_model(grpo_run.rl.reward_model, mesh, rules)
    rm_state, rm_shardings = rm_task.create_rm_state(rm.optim, grpo_run.seed, rm_config, mesh, rules,
                                                     params=rm_params)
  else:                                   # start from the policy's decoder, trained on its samples
    rm_config = model_config
    rm_state, rm_shardings = rm_task.create_rm_state(rm.optim, grpo_run.seed, rm_config, mesh, rules,
                                                     base_params=params)
  state, shardings = state_lib.create_train_state(grpo_run.optim, model_config, mesh, rules, params=params,
                                                  seed=grpo_run.seed)
  steps = grpo_run.rl.steps_per_iteration
  checkpointer = checkpointing.Checkpointer(
      paths.join(workdir, config_types.CHECKPOINTS_DIR), every_steps=steps,
      keep=grpo_run.train.keep_checkpoints)
  restored, done_steps = checkpointer.restore({"policy": state, "rm": rm_state})
  state, rm_state = restored["policy"], restored["rm"]
  first = done_steps // steps                                   # iterations finished before
  if first:
    history = [e for i in range(first + 1) if paths.path(_history_path(workdir, i)).is_file()
               for e in rm_task.read_examples(_history_path(workdir, i))]
  elif grpo_run.rl.reward_model:
    history = []
  else:
    history = label(state.params, 0)               # the initial policy (create_train_state took `params`)
    rm_state, _ = rm_task.train_reward_model(training, grpo_run.seed, rm_state, rm_shardings, rm_config, history,
                                             mesh, rules, writer, step_offset=0)
  machinery = build_machinery(grpo_run, model_config, tokenizer, shardings, mesh, rules, rm_config,
                              rm_shardings.params)
  stopped = False
  try:
    for iteration in range(first, grpo_run.rl.iterations):
      ref_params = machinery.copy_params(state.params)          # reference <- current policy
      state = grpo.train(grpo_run, workdir, machinery, state, ref_params, rm_state.params, steps=steps,
                         questions=questions, writer=writer, step_offset=iteration * steps)
      new = label(state.params, iteration + 1)
      old = replay(history, rm.replay_fraction, np.random.default_rng([grpo_run.seed, iteration + 1, 1]))
      logging.info("iteration %d: %d new reward-model examples + %d replayed", iteration, len(new), len(old))
      rm_state, rm_metrics = rm_task.train_reward_model(training, grpo_run.seed, rm_state, rm_shardings,
                                                        rm_config, new + old, mesh, rules, step_offset=iteration)
      writer.write((iteration + 1) * steps, {"rm_loss": rm_metrics["loss"], "rm_accuracy": rm_metrics["accuracy"],
                                             "iteration": iteration + 1})
      history += new
      checkpointer.save((iteration + 1) * steps, {"policy": state, "rm": rm_state}, force=True)
      if checkpointer.should_stop((iteration + 1) * steps) and iteration + 1 < grpo_run.rl.iterations:
        logging.warning("stopping after iteration %d (preemption); re-run the command to resume", iteration + 1)
        stopped = True
        break
  finally:
    checkpointer.close()
    writer.close()
    machinery.close()
  if stopped:
    return state
  plot_curves(paths.join(workdir, "metrics.jsonl"), ("reward_mean", "accuracy", "kl", "response_length",
                                                     "rm_accuracy"), paths.join(workdir, "curves.png"))
  loading.save_pretrained(paths.join(workdir, "model"), model_config, state.params, tokenizer)
  rm_lib.save_reward_model(paths.join(workdir, "reward_model"), rm_config,
                           rm_state.params, tokenizer)
  return state
