"""The paper's §5 RL comparisons in miniature (configs/grpo_arithmetic_section5.py): outcome vs
process supervision (Figure 5) and one vs two rounds of iterative RL (Figure 6).

  python experiments/grpo_arithmetic/section5.py --config=configs/grpo_arithmetic_section5.py --workdir=runs/grpo_arith
  python experiments/grpo_arithmetic/report.py runs/grpo_arith/results

Shares WORKDIR/task and WORKDIR/sft with run.py (trains the SFT model only if it is missing).
Writes WORKDIR/rm/{outcome,process}/ (labelled examples + reward model, trained once, shared by
the seeds) and, per RL seed s, WORKDIR/section5/seed_s/{outcome,process,two_rounds}/metrics.jsonl
and WORKDIR/results/section5_seed_s.json with each arm's held-out greedy-accuracy curve:
  outcome     GRPO with the outcome RM for experiment.rl_steps steps;
  process     GRPO with the process RM for experiment.rl_steps steps (one round);
  two_rounds  the process arm's policy at rl_steps / 2, then round 2: the policy's own samples
              labelled with Math-Shepherd, the process RM trained further on them + 10% replay of
              round 1's examples, the reference reset to the policy, rl_steps / 2 more steps.
"""
import dataclasses
import json
import os
import sys

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import evaluate as evaluate_lib  # noqa: E402
import experiment_config  # noqa: E402
import rl_loop  # noqa: E402
import stages  # noqa: E402
from dsmath_jax import config_types, runtime  # noqa: E402
from dsmath_jax.rl import grpo  # noqa: E402
from dsmath_jax.rl import iterative  # noqa: E402
from dsmath_jax.rl import questions as questions_lib  # noqa: E402
from dsmath_jax.rl import reward_model as rm_lib  # noqa: E402
from dsmath_jax.rl import rm_task  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/grpo_arithmetic_section5.py[:tiny]",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory (shared with run.py)")

KINDS = {"outcome": "outcome_rm", "process": "process_rm"}
CURVE_KEYS = ("reward_mean", "accuracy", "kl", "test_greedy_accuracy")


def label(rm, kind: str, params, machinery, questions, rng) -> list:
  """Reward-model examples from `params`' own samples on `questions` (outcome: the grader's
  verdict; process: Math-Shepherd step labels, paper §4.1.3). `rm`: iterative.IterativeRMConfig."""
  return rm_task.policy_examples(rm.label, kind, params, machinery.model_config, machinery.tokenizer,
                                 questions, rng, mesh=machinery.mesh, rules=machinery.rules,
                                 template=machinery.template)


def train_rm(rm, seed: int, rm_config, examples, machinery, *, base_params=None, params=None, step_offset=0,
             writer=None):
  """Reward-model params after `rm.optim.steps` BCE steps on `examples` (fresh optimizer)."""
  state, shardings = rm_task.create_rm_state(rm.optim, seed, rm_config, machinery.mesh, machinery.rules,
                                             base_params=base_params, params=params)
  state, metrics = rm_task.train_reward_model(rm.training(), seed, state, shardings, rm_config, examples,
                                              machinery.mesh, machinery.rules, writer, step_offset=step_offset)
  return state.params, {k: float(v) for k, v in metrics.items()}


def _save_examples(examples, path: str) -> None:
  with open(path, "w") as f:
    json.dump([dataclasses.asdict(e) for e in examples], f)


def _load_examples(path: str) -> list:
  with open(path) as f:
    return [rm_lib.RMExample(**e) for e in json.load(f)]


def reward_models(run, rm, workdir: str, machinery, sft_params, questions) -> dict:
  """{kind: directory} of the outcome and process RMs, trained from the SFT decoder on labels of
  the SFT model's samples of the same `rm.label.num_questions` RL questions (once; reused)."""
  from dsmath_jax.train.metrics import MetricsWriter
  picked = [questions[i] for i in np.random.default_rng(0).permutation(len(questions))[:rm.label.num_questions]]
  paths = {}
  for kind in KINDS:
    directory = os.path.join(workdir, "rm", kind)
    paths[kind] = os.path.join(directory, "model")
    if os.path.isfile(os.path.join(paths[kind], "model.json")):
      continue
    os.makedirs(directory, exist_ok=True)
    examples = label(rm, kind, sft_params, machinery, picked, jax.random.key(run.seed + 7))
    _save_examples(examples, os.path.join(directory, "examples.json"))
    writer = MetricsWriter(directory, console_keys=("rm_loss", "rm_accuracy"))
    params, metrics = train_rm(rm, run.seed, machinery.model_config, examples, machinery, base_params=sft_params,
                               writer=writer)
    writer.close()
    labels = [l for e in examples for l in e.labels]
    stages.write_json({"examples": len(examples), "labels": len(labels), "positive_fraction": float(np.mean(labels)),
                       "last_train_metrics": metrics}, os.path.join(directory, "stats.json"))
    rm_lib.save_reward_model(paths[kind], machinery.model_config, params, machinery.tokenizer)
  return paths


def arm_run(run, kind: str, rm_path: str):
  """The GRPO run of one arm: rewards from the `kind` reward model at `rm_path`."""
  return dataclasses.replace(run, rl=dataclasses.replace(run.rl, reward=KINDS[kind], reward_model=rm_path))


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  config_types.write_config(config, os.path.join(workdir, "section5"))
  run, e = experiment_config.typed(config)
  if e.rm is None:
    raise ValueError("config.experiment.rm is missing: section5.py trains reward models (configs/"
                     "grpo_arithmetic_section5.py)")
  mesh, rules = runtime.setup(config)
  run, data, held_out = stages.prepare(run, e, mesh, rules, workdir)
  total, half = e.rl_steps, e.rl_steps // 2
  rule_run = dataclasses.replace(run, rl=dataclasses.replace(run.rl, reward="rule", reward_model=""))
  base_machinery, initial_state, _, _ = grpo.setup(rule_run, mesh, rules)
  questions = questions_lib.fit_questions(questions_lib.load_questions(run.data.questions), base_machinery.tokenizer,
                                          run.data.template, run.rl.max_prompt_len)
  rm_paths = reward_models(run, e.rm, workdir, base_machinery, initial_state.params, questions)
  sft_greedy = stages.cached_eval(os.path.join(workdir, "sft", "greedy.json"), lambda: {
      "greedy_accuracy": evaluate_lib.greedy_accuracy(base_machinery, initial_state.params, held_out)})
  sft_greedy = sft_greedy["greedy_accuracy"]
  base_machinery.close()
  del initial_state
  from dsmath_jax.train.metrics import MetricsWriter
  arm_runs = {kind: arm_run(run, kind, rm_paths[kind]) for kind in KINDS}
  arms = {kind: grpo.setup(arm_runs[kind], mesh, rules) for kind in KINDS}
  for seed in e.rl_seeds:
    out_path = os.path.join(workdir, "results", f"section5_seed_{seed}.json")
    if os.path.isfile(out_path):
      print(f"seed {seed}: done before ({out_path})", flush=True)
      continue
    seed_dir = os.path.join(workdir, "section5", f"seed_{seed}")
    curves, seconds, rm_round2 = {}, {}, {}
    load_before = list(os.getloadavg())

    def steps(arm_name, kind, state, ref_params, first, last, rm_params):
      machinery = arms[kind][0]
      writer = MetricsWriter(os.path.join(seed_dir, arm_name), console_keys=CURVE_KEYS)
      state, curve, secs = rl_loop.run_steps(arm_runs[kind], machinery, state, ref_params, questions, held_out,
                                             seed=seed, first_step=first, last_step=last, eval_every=e.eval_every,
                                             writer=writer, rm_params=rm_params)
      writer.close()
      curves.setdefault(arm_name, [[0, sft_greedy]]).extend(list(p) for p in curve)
      seconds[arm_name] = seconds.get(arm_name, 0.0) + round(secs, 1)
      return state

    for path in (os.path.join(seed_dir, a, "metrics.jsonl") for a in ("outcome", "process", "two_rounds")):
      if os.path.exists(path):
        os.remove(path)                               # an unfinished seed starts over
    # Each arm's setup holds the SFT state built for its compiled step; runs start from copies.
    # (a) outcome supervision.
    machinery, sft_state, _, outcome_rm = arms["outcome"]
    state = stages.copy_state(sft_state)
    steps("outcome", "outcome", state, machinery.copy_params(sft_state.params), 0, total, outcome_rm)
    # (a) process supervision = (b) one round; its policy at `half` starts round 2.
    machinery, sft_state, _, process_rm = arms["process"]
    state = stages.copy_state(sft_state)
    sft_reference = machinery.copy_params(sft_state.params)
    state = steps("process", "process", state, sft_reference, 0, half, process_rm)
    fork = stages.copy_state(state)
    steps("process", "process", state, sft_reference, half, total, process_rm)
    # (b) round 2: relabel with the current policy, retrain the PRM with 10% replay, reset the reference.
    rng = np.random.default_rng(seed)
    picked = [questions[i] for i in rng.permutation(len(questions))[:e.rm.label.num_questions]]
    new = label(e.rm, "process", fork.params, machinery, picked, jax.random.key(1000 + seed))
    old = iterative.replay(_load_examples(os.path.join(workdir, "rm", "process", "examples.json")),
                           e.rm.replay_fraction, rng)
    rm_config = rm_lib.load_reward_model(rm_paths["process"])[0]
    # A copy: RM training donates its state, and the next seed starts from round 1's RM again.
    round2_rm, rm_metrics = train_rm(e.rm, run.seed, rm_config, new + old, machinery,
                                     params=stages.copy_state(process_rm))
    rm_round2 = {"new_examples": len(new), "replayed_examples": len(old), "last_train_metrics": rm_metrics}
    curves["two_rounds"] = [list(p) for p in curves["process"] if p[0] <= half]
    seconds["two_rounds"] = 0.0
    steps("two_rounds", "process", fork, machinery.copy_params(fork.params), half, total, round2_rm)
    result = {"seed": seed, "rl_steps": total, "round2_start": half, "curves": curves, "rl_seconds": seconds,
              "reward_model_round2": rm_round2, "eval_questions": len(held_out), "overlap": data["overlap"],
              "sft_shared_by_seeds": True, "reward_models_shared_by_seeds": True, "cpu_count": os.cpu_count(),
              "load_average_before": load_before, "load_average_after": list(os.getloadavg())}
    stages.write_json(result, out_path)
    logging.info("seed %d: %s", seed, json.dumps(curves))
  for machinery, *_ in arms.values():
    machinery.close()


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
