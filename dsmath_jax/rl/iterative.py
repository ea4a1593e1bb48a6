"""Iterative RL (paper §4.1.4, Algorithm 1): the reward model follows the policy.

for iteration in 1..I:
  reference <- policy
  M GRPO steps of the policy against the current reward model
  label the CURRENT policy's samples (outcome: grader; process: Math-Shepherd), and continue
  training the reward model on them plus a replay of `rm.replay_fraction` (paper: 10%) of
  the examples of earlier iterations
The task is `grpo` with `rl.iterations > 0` (configs/grpo_iterative.py; main routes it here). Without an initial
`rl.reward_model`, the reward model starts from the policy's decoder and is first trained on
the initial policy's labelled samples.
"""
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from dsmath_jax import sharding
from dsmath_jax.rl import grpo
from dsmath_jax.rl import reward_model as rm_lib
from dsmath_jax.rl import rm_task


def rm_view(config) -> ml_collections.ConfigDict:
  """The reward-model training settings as a `reward_model`-task-shaped config."""
  return ml_collections.ConfigDict(dict(seed=int(config.seed), data=config.rm.data.to_dict(),
                                        label=config.rm.label.to_dict(), optim=config.rm.optim.to_dict(),
                                        train=config.rm.train.to_dict()))


def replay(history: list, fraction: float, rng: np.random.Generator) -> list:
  """A random `fraction` of the earlier iterations' examples (at least one when there are any)."""
  if not history or fraction <= 0:
    return []
  count = max(1, int(round(fraction * len(history))))
  return [history[i] for i in rng.choice(len(history), size=min(count, len(history)), replace=False)]


def run(config, workdir: str):
  from dsmath_jax.model import loading
  from dsmath_jax.train import optim
  from dsmath_jax.train import state as state_lib
  from dsmath_jax.train.metrics import MetricsWriter, plot_curves
  sharding.maybe_initialize_distributed(config)
  mesh = sharding.make_mesh(config.mesh)
  rules = tuple(tuple(r) for r in config.logical_axis_rules)
  view = rm_view(config)
  kind = "process" if config.rl.reward == "process_rm" else "outcome"
  model_config, params, tokenizer = grpo.load_policy(config, mesh, rules)
  if params is None:
    from dsmath_jax.model import llama
    import flax.linen as nn
    params = nn.unbox(llama.init_params(model_config, jax.random.key(int(config.seed))))
  questions = grpo.fit_questions(grpo.load_questions(config.data.questions), tokenizer,
                                 config.data.template, int(config.rl.max_prompt_len))
  rng = np.random.default_rng(int(config.seed))
  key = jax.random.key(int(config.seed) + 1)

  def label(policy_params, iteration):
    picked = [questions[i] for i in rng.choice(len(questions), min(len(questions),
                                                                   int(config.rm.label.num_questions)), replace=False)]
    return rm_task.policy_examples(view.label, kind, policy_params, model_config, tokenizer, picked,
                                   jax.random.fold_in(key, iteration), mesh=mesh, rules=rules,
                                   template=config.data.template)

  writer = MetricsWriter(workdir, console_keys=("reward_mean", "accuracy", "kl", "rm_loss", "rm_accuracy"))
  history = []
  if config.rl.reward_model:
    rm_config, rm_params, _ = rm_lib.load_reward_model(config.rl.reward_model, mesh, rules)
    rm_state, rm_shardings = rm_task.create_rm_state(view, rm_config, mesh, rules, params=rm_params)
  else:                                   # start from the policy's decoder, trained on its samples
    rm_config = model_config
    rm_state, rm_shardings = rm_task.create_rm_state(view, rm_config, mesh, rules, base_params=params)
    history = label(params, 0)
    rm_state, _ = rm_task.train_reward_model(view, rm_state, rm_shardings, rm_config, history, mesh, rules,
                                             writer, step_offset=0)
  state, shardings = state_lib.create_train_state(optim.OptimConfig.from_config(config.optim), model_config, mesh,
                                                   rules, params=params, seed=config.seed)
  machinery = grpo.build_machinery(config, model_config, tokenizer, shardings, mesh, rules, rm_config,
                                   rm_shardings.params)
  steps = int(config.rl.steps_per_iteration)
  for iteration in range(int(config.rl.iterations)):
    ref_params = machinery.copy_params(state.params)          # reference <- current policy
    state = grpo.train(config, workdir, machinery, state, ref_params, rm_state.params, steps=steps,
                       questions=questions, writer=writer, step_offset=iteration * steps)
    new = label(state.params, iteration + 1)
    old = replay(history, float(config.rm.replay_fraction), rng)
    logging.info("iteration %d: %d new reward-model examples + %d replayed", iteration, len(new), len(old))
    rm_state, rm_metrics = rm_task.train_reward_model(view, rm_state, rm_shardings, rm_config, new + old,
                                                      mesh, rules, step_offset=iteration)
    writer.write((iteration + 1) * steps, {"rm_loss": rm_metrics["loss"], "rm_accuracy": rm_metrics["accuracy"],
                                           "iteration": iteration + 1})
    history += new
  writer.close()
  machinery.close()
  plot_curves(os.path.join(workdir, "metrics.jsonl"), ("reward_mean", "accuracy", "kl", "response_length",
                                                       "rm_accuracy"), os.path.join(workdir, "curves.png"))
  loading.save_pretrained(os.path.join(workdir, "model"), model_config, state.params, tokenizer)
  rm_lib.save_reward_model(os.path.join(workdir, "reward_model"), rm_config, rm_state.params, tokenizer)
  return state
