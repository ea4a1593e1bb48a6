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
