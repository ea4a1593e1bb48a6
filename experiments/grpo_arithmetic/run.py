"""The CPU GRPO experiment (configs/grpo_arithmetic.py): task -> SFT -> eval -> GRPO x seeds -> eval.

  python experiments/grpo_arithmetic/run.py --config=configs/grpo_arithmetic.py --workdir=runs/grpo_arith
  python experiments/grpo_arithmetic/report.py runs/grpo_arith/results     # results.md + PNGs

Writes WORKDIR/config.json (the resolved config), WORKDIR/task/ (sft/rl/test JSONL, overlap.json),
WORKDIR/sft/model (one SFT model shared by every RL seed), WORKDIR/sft/eval.json, and per RL
seed s: WORKDIR/seed_s/{metrics.jsonl, curves.png, model} and WORKDIR/results/seed_s.json
(held-out greedy accuracy, maj@k, pass@k before and after `experiment.rl_steps` GRPO steps, the
greedy curve, the overlap, the load). Re-running skips the SFT model and the seeds already done.
"""
import json
import os
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import evaluate as evaluate_lib  # noqa: E402
import experiment_config  # noqa: E402
import rl_loop  # noqa: E402
import stages  # noqa: E402
from dsmath_jax import config_types, runtime  # noqa: E402
from dsmath_jax.rl import grpo  # noqa: E402
from dsmath_jax.rl import questions as questions_lib  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/grpo_arithmetic.py[:tiny]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory")

CURVE_KEYS = ("reward_mean", "accuracy", "kl", "test_greedy_accuracy")


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  config_types.write_config(config, workdir)
  run, e = experiment_config.typed(config)
  mesh, rules = runtime.setup(config)
  run, data, held_out = stages.prepare(run, e, mesh, rules, workdir)
  machinery, initial_state, _, _ = grpo.setup(run, mesh, rules)
  sft_params = initial_state.params
  before = stages.cached_eval(os.path.join(workdir, "sft", "eval.json"), lambda: evaluate_lib.evaluate(
      machinery, sft_params, held_out, jax.random.key(stages.EVAL_SEED), e.eval_k))
  print("after SFT:", json.dumps(before), flush=True)
  questions = questions_lib.fit_questions(questions_lib.load_questions(run.data.questions), machinery.tokenizer,
                                          run.data.template, run.rl.max_prompt_len)
  from dsmath_jax.model import loading
  from dsmath_jax.train.metrics import MetricsWriter, plot_curves
  for seed in e.rl_seeds:
    out_path = os.path.join(workdir, "results", f"seed_{seed}.json")
    if os.path.isfile(out_path):
      print(f"seed {seed}: done before ({out_path})", flush=True)
      continue
    seed_dir = os.path.join(workdir, f"seed_{seed}")
    if os.path.exists(os.path.join(seed_dir, "metrics.jsonl")):
      os.remove(os.path.join(seed_dir, "metrics.jsonl"))     # an unfinished seed starts over
    state = stages.copy_state(initial_state)
    ref_params = machinery.copy_params(sft_params)
    writer = MetricsWriter(seed_dir, console_keys=CURVE_KEYS)
    load_before = list(os.getloadavg())
    state, curve, seconds = rl_loop.run_steps(
        run, machinery, state, ref_params, questions, held_out, seed=seed, first_step=0,
        last_step=e.rl_steps, eval_every=e.eval_every, writer=writer)
    writer.close()
    loading.save_pretrained(os.path.join(seed_dir, "model"), machinery.model_config, state.params,
                            machinery.tokenizer)
    after = evaluate_lib.evaluate(machinery, state.params, held_out, jax.random.key(stages.EVAL_SEED), e.eval_k)
    plot_curves(os.path.join(seed_dir, "metrics.jsonl"), CURVE_KEYS, os.path.join(seed_dir, "curves.png"))
    result = {"seed": seed, "rl_steps": e.rl_steps, "before": before, "after": after,
              "greedy_curve": [[0, before["greedy_accuracy"]]] + [list(p) for p in curve],
              "rl_seconds": round(seconds, 1), "eval_questions": len(held_out),
              "sft_steps": 0 if e.sft.model else e.sft.steps, "sft_shared_by_seeds": True,
              "overlap": data["overlap"], "cpu_count": os.cpu_count(),
              "load_average_before_rl": load_before,              # 1/5/15-minute load of the machine
              "load_average_after_rl": list(os.getloadavg())}
    stages.write_json(result, out_path)
    print(f"seed {seed}:", json.dumps({k: result[k] for k in ("after", "rl_seconds")}), flush=True)
  machinery.close()


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
