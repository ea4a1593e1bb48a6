"""experiments/grpo_arithmetic: the task files, the report's arithmetic, and the :tiny run of
every script (run.py, section5.py, maj_pass.py, report.py) end to end."""
import json
import os
import re
import subprocess
import sys

import numpy as np

import experiment_module
from configs import grpo_arithmetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


task = experiment_module.load("grpo_arithmetic", "task")
report = experiment_module.load("grpo_arithmetic", "report")
experiment_config = experiment_module.load("grpo_arithmetic", "experiment_config")


def test_task_files_keep_held_out_content_out_of_training(tmp_path):
  config = grpo_arithmetic.get_config()
  config.experiment.task.update(num_train=2000, num_test=100)
  data = task.write_task(experiment_config.ExperimentConfig.from_config(config.experiment).task, str(tmp_path))
  files = {name: task.read_jsonl(tmp_path / f"{name}.jsonl") for name in ("sft", "rl", "test")}
  assert [len(files[n]) for n in ("sft", "rl", "test")] == [1000, 1000, 100]
  numbers = lambda records: {tuple(int(n) for n in re.findall(r"\d+", r["question"])) for r in records}
  # Independent of word_problems.overlap: the numbers read from the question text.
  assert not numbers(files["test"]) & numbers(files["sft"] + files["rl"])
  assert json.loads((tmp_path / "overlap.json").read_text()) == data["overlap"]
  assert data["overlap"]["same_template_and_numbers"] == 0


def _seed_file(directory, seed, after, curve):
  record = {"seed": seed, "rl_steps": 4, "before": {"greedy_accuracy": 30.0, "maj@2": 35.0, "pass@2": 60.0},
            "after": {"greedy_accuracy": after, "maj@2": after, "pass@2": 70.0}, "greedy_curve": curve,
            "rl_seconds": 60.0, "eval_questions": 10, "cpu_count": 2, "load_average_after_rl": [2.0, 2.0, 2.0],
            "overlap": {"test_problems": 10, "same_template_and_numbers": 0, "same_template": 0, "same_numbers": 0,
                        "distinct_train_problems": 99}}
  (directory / f"seed_{seed}.json").write_text(json.dumps(record))


def test_report_means_and_spreads_match_numpy(tmp_path):
  afters = [40.0, 50.0, 66.0]
  for seed, after in enumerate(afters):
    _seed_file(tmp_path, seed, after, [[0, 30.0], [2, 35.0 + seed], [4, after]])
  text = report.main(str(tmp_path))
  mean, std = np.mean(afters), np.std(afters, ddof=1)
  assert f"| greedy_accuracy | 30.0 | 40.0 | 50.0 | 66.0 | {mean:.1f} ± {std:.1f} | {mean - 30:.1f} ± {std:.1f} |" in text
  assert f"| 2 | 35.0 | 36.0 | 37.0 | 36.0 ± 1.0 |" in text
  assert (tmp_path / "grpo.png").stat().st_size > 1000


def _run(script, config, workdir):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}    # one CPU device
  out = subprocess.run([sys.executable, f"experiments/grpo_arithmetic/{script}", f"--config={config}",
                        f"--workdir={workdir}"], cwd=ROOT, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


def test_tiny_runs_of_every_script_then_the_report(tmp_path):
  _run("run.py", "configs/grpo_arithmetic.py:tiny", tmp_path)
  results = tmp_path / "results"
  for seed in (0, 1):
    record = json.loads((results / f"seed_{seed}.json").read_text())
    assert set(record["after"]) == {"greedy_accuracy", "maj@1", "pass@1", "maj@2", "pass@2", "boxed_fraction"}
    assert [p[0] for p in record["greedy_curve"]] == [0, 1, 2]                 # eval every step of 2
    assert record["overlap"]["same_template_and_numbers"] == 0
    metrics = [json.loads(l) for l in open(tmp_path / f"seed_{seed}" / "metrics.jsonl")]
    assert sorted({m["step"] for m in metrics}) == [1, 2]
  assert json.loads((results / "seed_0.json").read_text())["before"] == \
      json.loads((results / "seed_1.json").read_text())["before"]              # one shared SFT model
  stdout = _run("run.py", "configs/grpo_arithmetic.py:tiny", tmp_path)         # resumes: nothing to redo
  assert "seed 0: done before" in stdout and "seed 1: done before" in stdout

  _run("section5.py", "configs/grpo_arithmetic_section5.py:tiny", tmp_path)    # reuses the SFT model
  record = json.loads((results / "section5_seed_0.json").read_text())
  assert set(record["curves"]) == {"outcome", "process", "two_rounds"}
  assert [p[0] for p in record["curves"]["two_rounds"]] == [0, 1, 2]
  assert record["curves"]["two_rounds"][:2] == record["curves"]["process"][:2]  # round 1 is shared
  for kind in ("outcome", "process"):
    assert (tmp_path / "rm" / kind / "model" / "model.json").exists()

  _run("maj_pass.py", "configs/grpo_arithmetic.py:tiny", tmp_path)
  record = json.loads((results / "maj_pass.json").read_text())
  assert set(record) >= {"sft", "rl_seed_0", "rl_seed_1"} and "pass@4" in record["sft"]

  text = report.main(str(results))
  for heading in ("GRPO with the grader's reward", "Outcome vs process supervision", "One vs two rounds",
                  "maj@k and pass@k"):
    assert heading in text
  for png in ("grpo.png", "supervision.png", "iterative.png", "maj_pass.png"):
    assert (results / png).exists(), png


_CONTEXT = {"eval_questions": 10, "cpu_count": 2, "load_average_after": [2.0, 2.0, 2.0],
            "overlap": {"test_problems": 10, "same_template_and_numbers": 0, "same_template": 0, "same_numbers": 0,
                        "distinct_train_problems": 99}}


def _figure5_file(directory, seed, curves, steps=4):
  record = {"seed": seed, "rl_steps": steps, "eval_every": 2, "curves": curves,
            "rl_seconds": {arm: 120.0 for arm in curves}, **_CONTEXT}
  (directory / f"figure5_seed_{seed}.json").write_text(json.dumps(record))


def _section5_file(directory, seed, outcome, process, steps=4):
  (directory / f"section5_seed_{seed}.json").write_text(json.dumps(
      {"seed": seed, "rl_steps": steps, "round2_start": steps // 2, **_CONTEXT,
       "curves": {"outcome": outcome, "process": process, "two_rounds": process},
       "reward_model_round2": {"new_examples": 1, "replayed_examples": 1, "last_train_metrics": {}}}))


def test_report_figure5_table_matches_numpy_and_takes_grpo_from_section5(tmp_path):
  finals = {"rft": [31.0, 33.0, 38.0], "online_rft": [40.0, 44.0, 45.0], "dpo": [30.0, 30.0, 36.0],
            "ppo": [35.0, 39.0, 41.0]}
  for seed in range(3):
    _figure5_file(tmp_path, seed, {arm: [[0, 30.0], [2, 30.0 + seed], [4, values[seed]]]
                                   for arm, values in finals.items()})
  text = report.main(str(tmp_path))                         # no section5 results: said, not invented
  assert "| step | RFT | Online RFT | DPO | PPO |" in text and "left out: no section5_seed_S.json" in text
  row = "| 4 | " + " | ".join(f"{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f}" for v in finals.values()) + " |"
  assert row in text
  assert "| 2 | 31.0 ± 1.0 | 31.0 ± 1.0 | 31.0 ± 1.0 | 31.0 ± 1.0 |" in text
  outcome, process = [50.0, 52.0, 60.0], [55.0, 57.0, 62.0]
  for seed in range(3):
    _section5_file(tmp_path, seed, [[0, 30.0], [2, 40.0], [4, outcome[seed]]],
                   [[0, 30.0], [2, 41.0], [4, process[seed]]])
  text = report.main(str(tmp_path))
  assert "| step | RFT | Online RFT | DPO | PPO | GRPO+OS | GRPO+PS |" in text
  assert row + f" {np.mean(outcome):.1f} ± {np.std(outcome, ddof=1):.1f} | " \
      f"{np.mean(process):.1f} ± {np.std(process, ddof=1):.1f} |" in text
  assert (tmp_path / "figure5.png").stat().st_size > 1000
  _section5_file(tmp_path, 1, [[0, 30.0], [4, 50.0]], [[0, 30.0], [4, 55.0]])    # evaluated at other steps
  text = report.main(str(tmp_path))
  assert "| step | RFT | Online RFT | DPO | PPO |" in text and "section5_seed_1.json has 4 steps evaluated at" in text


def test_tiny_figure5_runs_every_method_resumes_per_arm_then_the_report(tmp_path):
  _run("figure5.py", "configs/grpo_arithmetic_figure5.py:tiny", tmp_path)
  results = tmp_path / "results"
  record = json.loads((results / "figure5_seed_0.json").read_text())
  arms = {"rft", "online_rft", "dpo", "ppo"}
  assert set(record["curves"]) == arms and (record["rl_steps"], record["eval_every"]) == (2, 1)
  for arm, curve in record["curves"].items():
    assert [p[0] for p in curve] == [0, 1, 2] and all(0 <= p[1] <= 100 for p in curve), arm
  assert len({curve[0][1] for curve in record["curves"].values()}) == 1     # one SFT model
  methods = record["methods"]
  assert (methods["rft"]["rl"]["data_source"], methods["rft"]["rl"]["gradient_coefficient"]) == \
      ("offline_samples", "correct_only")
  assert (methods["dpo"]["rl"]["objective"], methods["ppo"]["rl"]["objective"]) == ("dpo", "ppo")
  metrics = lambda arm: [json.loads(l) for l in open(tmp_path / "figure5" / "seed_0" / arm / "metrics.jsonl")]
  assert "pair_accuracy" in metrics("dpo")[0] and "value_loss" in metrics("ppo")[0]
  first = [m for m in metrics("online_rft") if "loss" in m]
  # An unfinished seed resumes per arm: the finished arms are read back, the missing one reruns
  # from the SFT model and sees the same questions and sampling keys.
  (results / "figure5_seed_0.json").unlink()
  (tmp_path / "figure5" / "seed_0" / "online_rft" / "result.json").unlink()
  stdout = _run("figure5.py", "configs/grpo_arithmetic_figure5.py:tiny", tmp_path)
  assert all(f"arm {arm}: done before" in stdout for arm in arms - {"online_rft"})
  assert "arm online_rft: done before" not in stdout
  again = [m for m in metrics("online_rft") if "loss" in m]
  assert [(m["step"], m["reward_mean"], m["loss"]) for m in again] == \
      [(m["step"], m["reward_mean"], m["loss"]) for m in first]
  assert json.loads((results / "figure5_seed_0.json").read_text())["curves"] == record["curves"]
  text = report.main(str(results))
  assert "RL methods compared (paper Figure 5" in text and (results / "figure5.png").exists()
