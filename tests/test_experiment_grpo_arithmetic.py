"""experiments/grpo_arithmetic: the generated task and the :tiny run of every stage."""
import importlib.util
import json
import os
import re
import subprocess
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name: str, path: str):
  """The experiment's module by file path, under its own name: grpo_smollm2 has a task.py too,
  and two tests importing `task` in one worker would share whichever came first."""
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


task = _load("grpo_arithmetic_task", os.path.join(ROOT, "experiments", "grpo_arithmetic", "task.py"))


def test_task_answers_are_right_and_the_teacher_errs_as_configured():
  train, test = task.generate(4000, 200, seed=3, max_addend=9, teacher_error=0.5, max_factor=5)
  assert not {r["question"] for r in test} & {r["question"] for r in train}
  for record in train + test:
    numbers = [int(n) for n in re.findall(r"\d+", record["question"])]
    first, second = record["solution"].strip().split("\n")[:2]
    a, op, b = first.split(" = ")[0].split()
    assert int(a) in numbers and int(b) in numbers
    shown = re.search(r"\\boxed\{(-?\d+)\}", record["solution"]).group(1)
    assert (shown == record["answer"]) == record["teacher_correct"]
    x, op2, y = second.split(" = ")[0].split()
    assert int(second.split(" = ")[1].rstrip(".")) == (int(x) + int(y) if op2 == "+" else int(x) - int(y))
  assert all(r["teacher_correct"] for r in test)                     # held-out solutions are clean
  wrong = 1 - sum(r["teacher_correct"] for r in train) / len(train)
  assert 0.45 < wrong < 0.55


def test_tiny_run_writes_results_curves_and_plots(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}    # one CPU device
  out = subprocess.run([sys.executable, "experiments/grpo_arithmetic/run.py",
                        "--config=configs/grpo_arithmetic.py:tiny", f"--workdir={tmp_path}"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.load(open(tmp_path / "results.json"))
  for when in ("before", "after"):
    assert set(results[when]) == {"greedy_accuracy", "maj@2", "pass@2", "boxed_fraction"}
  assert results["rl_steps"] >= 1
  for name in ("results.png", "rl/curves.png", "rl/metrics.jsonl", "sft/model", "rl/model"):
    assert os.path.exists(tmp_path / name), name
