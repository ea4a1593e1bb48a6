"""The paper's Figure 5 in miniature (§5.2.1, configs/grpo_arithmetic_figure5.py): RFT, Online RFT,
DPO and PPO from the shared SFT model, with held-out greedy accuracy along the way.

  python experiments/grpo_arithmetic/figure5.py --config=configs/grpo_arithmetic_figure5.py --workdir=runs/grpo_arith
  python experiments/grpo_arithmetic/report.py runs/grpo_arith/results

Shares WORKDIR/task, WORKDIR/sft and WORKDIR/sft/greedy.json with run.py and section5.py (trains the
SFT model only if it is missing). Per RL seed s and arm A of experiment.arms, it runs A's method
(experiment_config.arm_run: the method's rl keys and the arm's optim keys on top of the task's
GRPO run) for experiment.rl_steps steps with held-out greedy accuracy every experiment.eval_every
steps (the questions and sampling keys of a step depend on (seed, step) only, as in section5.py),
and writes WORKDIR/figure5/seed_s/A/{metrics.jsonl, result.json}; once every arm of the seed is
done, WORKDIR/results/figure5_seed_s.json. A finished arm (its result.json) or seed is skipped when
the command is run again; an unfinished arm starts over. GRPO+OS and GRPO+PS are section5.py's
`outcome` and `process` arms: report.py takes their curves from WORKDIR/results/section5_seed_s.json.
"""
import dataclasses
import json
import os
import sys

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

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/grpo_arithmetic_figure5.py[:tiny]",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory (shared with run.py and section5.py)")

CURVE_KEYS = ("reward_mean", "accuracy", "kl", "test_greedy_accuracy")


class Arms:
  """Each arm's setup (grpo.setup: machinery with its compiled step, the SFT state), built on first
  use and shared by the seeds; the RL questions and the SFT model's held-out greedy accuracy."""

  def __init__(self, runs: dict, mesh, rules, workdir: str, held_out: list):
    self.runs, self.mesh, self.rules, self.workdir, self.held_out = runs, mesh, rules, workdir, held_out
    self._setups, self.questions, self.sft_greedy = {}, None, None

  def setup(self, name: str):
    if name not in self._setups:
      self._setups[name] = grpo.setup(self.runs[name], self.mesh, self.rules)
      machinery, sft_state = self._setups[name][:2]
      if self.questions is None:
        run = self.runs[name]
        self.questions = questions_lib.fit_questions(questions_lib.load_questions(run.data.questions),
                                                     machinery.tokenizer, run.data.template, run.rl.max_prompt_len)
        self.sft_greedy = stages.cached_eval(os.path.join(self.workdir, "sft", "greedy.json"), lambda: {
            "greedy_accuracy": evaluate_lib.greedy_accuracy(machinery, sft_state.params, self.held_out)
        })["greedy_accuracy"]
    return self._setups[name]

  def close(self):
    for machinery, *_ in self._setups.values():
      machinery.close()


def run_arm(arms: Arms, name: str, seed: int, e, arm_dir: str) -> dict:
  """Arm `name` for e.rl_steps steps from a copy of the SFT state -> its result (curve, seconds, load)."""
  from dsmath_jax.train.metrics import MetricsWriter
  run = arms.runs[name]
  machinery, sft_state, _, rm_params = arms.setup(name)
  state = stages.copy_state(sft_state)
  # The reference (KL, DPO) and the sampler of offline samples (RFT): the SFT model, frozen.
  ref_params = machinery.copy_params(sft_state.params) if run.rl.needs_reference else None
  if os.path.exists(os.path.join(arm_dir, "metrics.jsonl")):
    os.remove(os.path.join(arm_dir, "metrics.jsonl"))                # an unfinished arm starts over
  writer = MetricsWriter(arm_dir, console_keys=CURVE_KEYS)
  load_before = list(os.getloadavg())
  _, curve, seconds = rl_loop.run_steps(run, machinery, state, ref_params, arms.questions, arms.held_out, seed=seed,
                                        first_step=0, last_step=e.rl_steps, eval_every=e.eval_every, writer=writer,
                                        rm_params=rm_params)
  writer.close()
  return {"arm": name, "seed": seed, "curve": [[0, arms.sft_greedy]] + [list(p) for p in curve],
          "rl_seconds": round(seconds, 1), "load_average_before": load_before,
          "load_average_after": list(os.getloadavg())}


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  config_types.write_config(config, os.path.join(workdir, "figure5"))
  run, e = experiment_config.typed(config)
  if not e.arms:
    raise ValueError("config.experiment.arms is missing: figure5.py runs one arm per method "
                     "(configs/grpo_arithmetic_figure5.py)")
  mesh, rules = runtime.setup(config)
  run, data, held_out = stages.prepare(run, e, mesh, rules, workdir)
  runs = {name: experiment_config.arm_run(run, arm, where=f"config.experiment.arms.{name}")
          for name, arm in e.arms.items()}
  arms = Arms(runs, mesh, rules, workdir, held_out)
  for seed in e.rl_seeds:
    out_path = os.path.join(workdir, "results", f"figure5_seed_{seed}.json")
    if os.path.isfile(out_path):
      print(f"seed {seed}: done before ({out_path})", flush=True)
      continue
    results = {}
    for name in runs:
      arm_dir = os.path.join(workdir, "figure5", f"seed_{seed}", name)
      path = os.path.join(arm_dir, "result.json")
      if os.path.isfile(path):
        print(f"seed {seed} arm {name}: done before ({path})", flush=True)
      else:
        stages.write_json(run_arm(arms, name, seed, e, arm_dir), path)
      with open(path) as f:
        results[name] = json.load(f)
    result = {"seed": seed, "rl_steps": e.rl_steps, "eval_every": e.eval_every,
              "curves": {name: r["curve"] for name, r in results.items()},
              "rl_seconds": {name: r["rl_seconds"] for name, r in results.items()},
              "load_average_after_arm": {name: r["load_average_after"] for name, r in results.items()},
              "methods": {name: {"rl": dataclasses.asdict(runs[name].rl), "optim": dataclasses.asdict(runs[name].optim)}
                          for name in runs},
              "eval_questions": len(held_out), "overlap": data["overlap"], "sft_shared_by_seeds": True,
              "cpu_count": os.cpu_count(), "load_average_after": list(os.getloadavg())}
    stages.write_json(result, out_path)
    print(f"seed {seed}:", json.dumps(result["curves"]), flush=True)
  arms.close()


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
