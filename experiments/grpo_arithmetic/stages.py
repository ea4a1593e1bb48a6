"""Stages every script of this experiment shares: the task and the shared SFT model, cached
evaluations, and copies of a policy state."""
import json
import os
import time

import jax
import jax.numpy as jnp
from absl import logging

import experiment_config
import sft as sft_lib
import task

EVAL_SEED = 1234          # the sampling key of every maj@k / pass@k evaluation


def prepare(run, experiment, mesh, rules, workdir: str):
  """Task files, the shared SFT model (trained unless it exists or experiment.sft.model names one).
  Returns (the GRPO run pointed at that model and the RL questions, task dict, held-out questions)."""
  data = task.write_task(experiment.task, os.path.join(workdir, "task"))
  print("held-out vs training overlap:", json.dumps(data["overlap"]), flush=True)
  model_dir = experiment.sft.model or os.path.join(workdir, "sft", "model")
  if not os.path.isfile(os.path.join(model_dir, "model.json")):
    if experiment.sft.model:
      raise FileNotFoundError(f"config.experiment.sft.model={experiment.sft.model}: no model.json there")
    start = time.time()
    sft_lib.train_sft(run, experiment.sft, data["sft"], mesh, rules, os.path.join(workdir, "sft"))
    logging.info("SFT done in %.0fs", time.time() - start)
  run = experiment_config.pointed_at(run, experiment, model_dir, os.path.join(workdir, "task", "rl.jsonl"))
  return run, data, data["test"][:experiment.eval_questions]


def cached_eval(path: str, compute) -> dict:
  """The evaluation stored at `path`, computed and stored first if missing (written whole, then
  renamed: a file that exists is finished)."""
  if not os.path.isfile(path):
    result = compute()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(result, path)
  with open(path) as f:
    return json.load(f)


def write_json(value, path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(value, f, indent=1)
  os.replace(path + ".tmp", path)


def copy_state(state):
  """A copy in fresh buffers (the train step donates its state): each RL seed, and each fork of
  a run, starts from its own copy of the SFT state (SFT params, fresh optimizer)."""
  return jax.tree.map(jnp.copy, state)
