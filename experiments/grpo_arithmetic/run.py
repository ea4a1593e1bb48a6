"""The CPU GRPO experiment (configs/grpo_arithmetic.py): SFT -> eval -> GRPO -> eval -> plots.

  python experiments/grpo_arithmetic/run.py --config=configs/grpo_arithmetic.py --workdir=runs/grpo_arith

Writes WORKDIR/task/*.jsonl (the generated task), WORKDIR/sft/model, WORKDIR/rl/metrics.jsonl,
WORKDIR/rl/curves.png (reward, grader accuracy, KL, length), WORKDIR/rl/model (the policy after
GRPO), WORKDIR/results.json and WORKDIR/results.png with held-out greedy accuracy, maj@k and
pass@k before and after GRPO.
"""
import json
import os
import sys
import time

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import dataclasses  # noqa: E402

import task  # noqa: E402
from dsmath_jax import runtime, sharding  # noqa: E402
from dsmath_jax.grading import answer as answer_lib  # noqa: E402
from dsmath_jax.eval import metrics as eval_metrics  # noqa: E402
from dsmath_jax.grading.grader import grade_output  # noqa: E402
from dsmath_jax.rl import grpo, grpo_step  # noqa: E402
from dsmath_jax.rl import questions as questions_lib  # noqa: E402
from dsmath_jax.rl.config import GRPOConfig  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/grpo_arithmetic.py[:tiny]", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory")


def sft(config, records, workdir: str) -> str:
  """Supervised fine-tuning of a random model on worked solutions; returns the model dir."""
  from dsmath_jax import tokenizer as tokenizer_lib
  from dsmath_jax.model import llama, loading
  from dsmath_jax.train import loss as loss_lib, optim, state as state_lib, step as step_lib
  from dsmath_jax.train.metrics import MetricsWriter
  e = config.experiment
  tokenizer = tokenizer_lib.load_tokenizer(config.tokenizer)
  model_config = llama.LlamaConfig.from_config(config.model)
  mesh = sharding.make_mesh(config.mesh)
  rules = tuple(tuple(r) for r in config.logical_axis_rules)
  view = ml_collections.ConfigDict(dict(seed=int(e.seed), optim=dict(
      lr=float(e.sft_lr), schedule="cosine", steps=int(e.sft_steps), warmup_steps=10, weight_decay=0.0,
      clip_norm=1.0, end_lr_ratio=0.1)))
  params = None
  if e.get("sft_init"):                   # continue SFT from an earlier run's WORKDIR/sft/model
    pretrained = loading.load_pretrained(e.sft_init, mesh=mesh, rules=rules)
    model_config, params = pretrained.config, pretrained.params
  state, shardings = state_lib.create_train_state(optim.OptimConfig.from_config(view.optim), model_config, mesh,
                                                   rules, params=params, seed=view.seed)
  seq_len = int(config.rl.max_prompt_len) + int(config.rl.max_new_tokens)
  batch_size = int(e.sft_batch)
  spec = {k: (batch_size, seq_len) for k in ("tokens", "segment_ids", "positions", "loss_mask")}
  step = step_lib.compile_train_step(shardings, mesh, rules, spec, loss_fn=loss_lib.cross_entropy_loss,
                                     apply_fn=step_lib.make_apply_fn(model_config))
  writer = MetricsWriter(os.path.join(workdir, "sft"))
  rng = np.random.default_rng(int(e.seed))
  for index in range(int(e.sft_steps)):
    batch = {k: np.zeros((batch_size, seq_len), np.float32 if k == "loss_mask" else np.int32) for k in spec}
    for row, i in enumerate(rng.choice(len(records), batch_size, replace=False)):
      prompt = questions_lib.encode_prompt(tokenizer, records[i]["question"], config.data.template)
      response = tokenizer.encode(records[i]["solution"]) + [tokenizer.eos_id]
      ids = (prompt + response)[:seq_len]
      batch["tokens"][row, :len(ids)] = ids
      batch["segment_ids"][row, :len(ids)] = 1
      batch["positions"][row, :len(ids)] = np.arange(len(ids))
      batch["loss_mask"][row, len(prompt):len(ids)] = 1.0
    state, metrics = step(state, sharding.put_global(batch, sharding.batch_sharding(mesh, rules, 2)))
    if index % 20 == 0 or index == int(e.sft_steps) - 1:
      writer.write(index + 1, jax.device_get(metrics))
  writer.close()
  return loading.save_pretrained(os.path.join(workdir, "sft", "model"), model_config, state.params, tokenizer)


def evaluate(config, machinery, params, questions, rng) -> dict:
  """Held-out greedy accuracy and maj@k / pass@k (k = experiment.eval_k), graded by the grader."""
  from dsmath_jax.sample import sampler
  tokenizer, k = machinery.tokenizer, int(config.experiment.eval_k)
  prompts = [questions_lib.encode_prompt(tokenizer, q["question"], machinery.template) for q in questions]
  greedy = sampler.generate(params, machinery.model_config, tokenizer, prompts,
                            dataclasses.replace(machinery.sampling, greedy=True, num_samples=1), rng,
                            mesh=machinery.mesh, rules=machinery.rules)
  greedy_correct = [grade_output(c.text, questions[c.prompt_index]["answer"]) for c in greedy]
  sampled = sampler.generate(params, machinery.model_config, tokenizer, prompts,
                             dataclasses.replace(machinery.sampling, num_samples=k), jax.random.fold_in(rng, 1),
                             mesh=machinery.mesh, rules=machinery.rules)
  maj, passk, boxed = [], [], []
  for i, q in enumerate(questions):
    texts = [c.text for c in sampled[i * k:(i + 1) * k]]
    flags_ = [grade_output(t, q["answer"]) for t in texts]
    answers = [answer_lib.extract_answer(t) for t in texts]
    maj.append(eval_metrics.maj_at_k(answers, flags_, k))
    passk.append(eval_metrics.pass_at_k(k, sum(flags_), k))
    boxed.extend("\\boxed{" in t for t in texts)
  return {"greedy_accuracy": 100 * float(np.mean(greedy_correct)), f"maj@{k}": 100 * float(np.mean(maj)),
          f"pass@{k}": 100 * float(np.mean(passk)),
          "boxed_fraction": 100 * float(np.mean(boxed))}


def plot_results(results: dict, path: str) -> None:
  """Held-out greedy accuracy, maj@k and pass@k before and after GRPO, as bars (PNG)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = [k for k in results["before"] if k != "boxed_fraction"]
  x = np.arange(len(names))
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for offset, when in ((-0.2, "before"), (0.2, "after")):
    values = [results[when][k] for k in names]
    bars = ax.bar(x + offset, values, 0.4, label=f"{when} GRPO")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
  ax.set_xticks(x, names)
  ax.set_ylabel("held-out accuracy (%)")
  ax.set_ylim(0, 118)
  ax.set_title(f"GRPO, {results['rl_steps']} steps in {results['rl_seconds'] / 60:.0f} min "
               f"({results['eval_questions']} questions)")
  ax.legend(loc="upper left", ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  e = config.experiment
  os.makedirs(os.path.join(workdir, "task"), exist_ok=True)
  train_records, test_records = task.generate(int(e.num_train), int(e.num_test), int(e.seed), int(e.max_addend),
                                              float(e.teacher_error), int(e.max_factor))
  task.write_jsonl(train_records, os.path.join(workdir, "task", "train.jsonl"))
  task.write_jsonl(test_records, os.path.join(workdir, "task", "test.jsonl"))
  # SFT sees the first half of the training questions; RL gets questions only, from the second half.
  half = len(train_records) // 2
  rl_path = task.write_jsonl(train_records[half:], os.path.join(workdir, "task", "rl_train.jsonl"))
  start = time.time()
  if e.get("sft_model"):                  # reuse an earlier run's SFT model
    config.checkpoint = e.sft_model
  else:
    config.checkpoint = sft(config, train_records[:half], workdir)
  logging.info("SFT done in %.0fs", time.time() - start)
  config.data.questions = f"jsonl:{rl_path}"

  grpo_run = GRPOConfig.from_config(config, ignore=("experiment",))
  machinery, state, ref_params, _ = grpo.setup(grpo_run, *runtime.setup(config))
  held_out = test_records[:int(e.eval_questions)]
  eval_rng = jax.random.key(1234)
  before = evaluate(config, machinery, state.params, held_out, eval_rng)
  logging.info("before GRPO: %s", before)

  rl_dir = os.path.join(workdir, "rl")
  from dsmath_jax.train.metrics import MetricsWriter, plot_curves
  writer = MetricsWriter(rl_dir, console_keys=("reward_mean", "accuracy", "kl", "response_length"))
  questions = questions_lib.fit_questions(questions_lib.load_questions(grpo_run.data.questions),
                                          machinery.tokenizer, grpo_run.data.template, grpo_run.rl.max_prompt_len)
  batches = questions_lib.question_batches(questions, grpo_run.data.questions_per_step, grpo_run.seed)
  rng = jax.random.key(grpo_run.seed)
  deadline, steps = time.time() + 60 * float(e.minutes), 0
  rl_start = time.time()
  while time.time() < deadline:            # the loop of grpo.train, wall-clock bounded
    state, metrics, _ = grpo_step.rl_step(grpo_run.rl, machinery, state, ref_params, next(batches),
                                          jax.random.fold_in(rng, steps))
    steps += 1
    writer.write(steps, metrics)
  rl_seconds = time.time() - rl_start
  writer.close()
  from dsmath_jax.model import loading
  loading.save_pretrained(os.path.join(rl_dir, "model"), machinery.model_config, state.params, machinery.tokenizer)
  after = evaluate(config, machinery, state.params, held_out, eval_rng)
  logging.info("after GRPO (%d steps, %.0fs): %s", steps, rl_seconds, after)
  plot_curves(os.path.join(rl_dir, "metrics.jsonl"), ("reward_mean", "accuracy", "kl", "response_length"),
              os.path.join(rl_dir, "curves.png"))
  results = {"before": before, "after": after, "rl_steps": steps, "rl_seconds": rl_seconds,
             "greedy_gain_points": after["greedy_accuracy"] - before["greedy_accuracy"],
             "sft_steps": 0 if e.get("sft_model") else int(e.sft_steps),
             "eval_questions": len(held_out),
             "load_average_after_rl": list(os.getloadavg())}     # 1/5/15-minute load of the machine
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  plot_results(results, os.path.join(workdir, "results.png"))
  print(json.dumps(results))


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
