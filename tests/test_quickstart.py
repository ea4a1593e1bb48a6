"""Quickstart (configs/quickstart.py:tiny) end to end through main, checked against independent numbers.

References that are not our code: the answers, templates and numbers of the word problems are
re-read from the question text with a regex and recomputed with Python, eval accuracy is recomputed from samples.jsonl with a regex on \\boxed{}, the
corpus rounds are read from the corpus task's own stats.json, and losses come from metrics.jsonl.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from configs import quickstart as quickstart_config
from dsmath_jax import quickstart

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_QUESTION = re.compile(r"^\w+ (has|owns|keeps|collected) (\d+) \w+(?: in a box)?\. Then \w+ "
                       r"(finds|wins|picks up|gives away|loses|sells) (\d+)(?: more)?\. "
                       r"How many \w+ does \w+ have now\?$")
_SIGN = {"finds": 1, "wins": 1, "picks up": 1, "gives away": -1, "loses": -1, "sells": -1}


def _parse(question: str) -> tuple[tuple[str, str], tuple[int, int]]:
  """((opener verb, change verb), (starting count, change)) read from the text."""
  opener, start, change, amount = _QUESTION.match(question).groups()
  return (opener, change), (int(start), int(amount))


def _python_answer(question: str) -> int:
  (_, change), (start, amount) = _parse(question)
  return start + _SIGN[change] * amount


def _read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _main(workdir, *overrides, config="configs/quickstart.py:tiny", stderr=False):
  """The README's command; its stdout (and stderr, where asked)."""
  env = dict(os.environ)
  # One CPU device, as on a laptop (conftest forces 8 simulated ones; sharding is tested elsewhere).
  env["XLA_FLAGS"] = " ".join(flag for flag in env.get("XLA_FLAGS", "").split()
                              if not flag.startswith("--xla_force_host_platform_device_count"))
  result = subprocess.run(
      [sys.executable, "-m", "dsmath_jax.main", f"--config={config}", f"--workdir={workdir}",
       *overrides], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
  return (result.stdout, result.stderr) if stderr else result.stdout


def test_problems_are_disjoint_and_answers_are_right(tmp_path):
  config = quickstart_config.get_config("tiny")
  counts = quickstart.write_problems(quickstart.ProblemsConfig.from_config(config.problems), str(tmp_path))
  assert counts == dict(test=16, rl=64, sft=400)
  splits = {name: _read_jsonl(tmp_path / f"{name}.jsonl") for name in counts}
  questions = {name: {r["question"] for r in records} for name, records in splits.items()}
  # Held-out problems are distinct and none is a training question. (Training problems are drawn
  # with replacement: a repeat among the sft/rl questions is allowed, as GSM8K's RL questions are
  # its SFT questions in the paper.)
  assert len(questions["test"]) == counts["test"]
  assert not questions["test"] & (questions["sft"] | questions["rl"])
  # Content-disjoint: no held-out (opener, change) template and no held-out number pair, read from
  # the text, occurs in any training problem.
  parsed = {name: [_parse(r["question"]) for r in records] for name, records in splits.items()}
  train = parsed["sft"] + parsed["rl"]
  assert not {t for t, _ in parsed["test"]} & {t for t, _ in train}
  assert not {n for _, n in parsed["test"]} & {n for _, n in train}
  assert json.loads((tmp_path / "overlap.json").read_text())["same_template_and_numbers"] == 0
  for record in sum(splits.values(), []):
    assert int(record["answer"]) == _python_answer(record["question"])
    assert record["prompt"].startswith(f"User: {record['question']}\n") and record["prompt"].endswith("Assistant:")
  # The teacher's slips: the boxed answer of about half the SFT solutions is wrong, none of the test ones.
  boxed = lambda r: int(re.search(r"\\boxed\{(-?\d+)\}", r["response"]).group(1))
  slipped = np.mean([boxed(r) != int(r["answer"]) for r in splits["sft"]])
  assert 0.3 < slipped < 0.6, slipped
  assert all(boxed(r) == int(r["answer"]) for r in splits["test"])


def test_workdir_is_substituted_everywhere(tmp_path):
  config = quickstart.resolve(quickstart_config.get_config("tiny").pretrain, str(tmp_path))
  assert config.data.sources.math.data_dir == f"{tmp_path}/corpus/tfds"
  assert config.data.tokenizer == f"{tmp_path}/tokenizer/tokenizer.model"
  assert "{workdir}" not in config.to_json()


# problems + a 3-step pretrain on their text (byte tokenizer): the stage-running path in seconds.
_SHORT_QUICKSTART = """
from configs import common, quickstart

def get_config():
  c = quickstart.get_config("tiny")
  c.stages = ("problems", "pretrain")
  c.pretrain.model = common.model("tiny")
  c.pretrain.data.tokenizer = "byte"
  c.pretrain.data.sources = dict(text=dict(jsonl="{workdir}/problems/sft.jsonl"))
  c.pretrain.optim.steps = 3
  c.pretrain.eval.every_steps = 0
  return c
"""


def test_console_shows_a_bar_with_eta_per_long_stage_and_no_info_lines(tmp_path):
  (tmp_path / "short_quickstart.py").write_text(_SHORT_QUICKSTART)
  stdout, stderr = _main(tmp_path / "qs", config=str(tmp_path / "short_quickstart.py"), stderr=True)
  # A bar redraws itself with \r: each drawing is one piece.
  pieces = [p.strip() for p in re.split(r"[\r\n]", stdout + "\n" + stderr) if p.strip()]
  bars = [p for p in pieces if p.startswith("pretrain:")]
  assert bars and re.fullmatch(r"pretrain: 100%\|█+\| 3/3 \[[0-9:]+, ETA 00:00, +[0-9.]+(step/s|s/step)\]", bars[-1]), bars
  assert not any(p.startswith("problems:") for p in pieces)           # a short stage draws none
  # absl's INFO lines look like "I1207 18:54:47.760920 1397... main.py:89] ..." (orbax's on every save).
  info = [p for p in pieces if re.match(r"I\d{4} \d\d:\d\d:\d\d", p)]
  assert not info, info[:5]
  assert "step 3 [" in stdout and "[quickstart 2/2] pretrain done" in stdout
  assert (tmp_path / "qs" / "pretrain" / "checkpoints").is_dir()     # orbax saved (and said nothing)


def test_tiny_end_to_end_then_resume(tmp_path):
  workdir = tmp_path / "qs"
  stdout = _main(workdir)
  summary = json.loads((workdir / "summary.json").read_text())

  # Every stage left its output where the next stage (or a user) reads it.
  for path in ("corpus/tfds/dsmath_corpus", "tokenizer/tokenizer.model", "pretrain/model/model.json",
               "sft/model/model.json", "grpo/model/model.json", "eval_sft/eval/arithmetic/samples.jsonl",
               "eval_grpo/eval/arithmetic/samples.jsonl", "summary.md"):
    assert (workdir / path).exists(), path
  records = {s: json.loads((workdir / s / quickstart.STAGE_RECORD).read_text()) for s in quickstart_config.STAGES}
  assert records["sft"]["config"]["checkpoint"] == f"{workdir}/pretrain/model"
  assert records["grpo"]["config"]["checkpoint"] == f"{workdir}/sft/model"
  assert records["eval_grpo"]["config"]["checkpoint"] == f"{workdir}/grpo/model"
  # Each run's workdir holds its resolved config: the quickstart's and each stage task's own.
  assert json.loads((workdir / "config.json").read_text())["stages"] == list(quickstart_config.STAGES)
  for stage in ("corpus", "tokenizer", "pretrain", "sft"):
    assert json.loads((workdir / stage / "config.json").read_text()) == records[stage]["config"], stage
  # The SentencePiece tokenizer trained here travels with every checkpoint.
  for stage in ("pretrain", "sft", "grpo"):
    meta = json.loads((workdir / stage / "model" / "model.json").read_text())
    assert meta["tokenizer"] and meta["tokenizer"].endswith(".model"), meta["tokenizer"]
    assert meta["config"]["vocab_size"] == 512

  # Corpus: the table shows the corpus task's own per-round counts, which grow over rounds.
  corpus_stats = json.loads((workdir / "corpus" / "corpus" / "stats.json").read_text())
  pages = [r["pages"] for r in summary["corpus"]["rounds"]]
  assert pages == [r["collected"] for r in corpus_stats["rounds"]]
  assert len(pages) == 3 and pages[-1] > pages[0] and pages == sorted(pages)

  # Losses fall: held-out loss of pretraining and SFT, and pretraining's training loss.
  for stage in ("pretrain", "sft"):
    metrics = _read_jsonl(workdir / stage / "metrics.jsonl")
    eval_losses = [m["eval_loss"] for m in metrics if "eval_loss" in m]
    assert summary[stage]["eval_loss"]["first"] == pytest.approx(eval_losses[0])
    assert eval_losses[-1] < eval_losses[0] - 0.1, (stage, eval_losses)
  assert summary["pretrain"]["loss"]["last"] < summary["pretrain"]["loss"]["first"]

  # Accuracy before/after GRPO equals a regrade of the samples with a regex and Python arithmetic.
  test_questions = {r["id"]: r["question"] for r in _read_jsonl(workdir / "problems" / "test.jsonl")}
  for stage in ("eval_sft", "eval_grpo"):
    samples = _read_jsonl(workdir / stage / "eval" / "arithmetic" / "samples.jsonl")
    assert len(samples) == 16
    correct = 0
    for sample in samples:                                       # ids are the records' own
      expected = _python_answer(test_questions[sample["id"]])
      assert sample["gold"] == str(expected)
      boxed = re.findall(r"\\boxed\{(-?\d+)\}", sample["prediction"])
      correct += bool(boxed) and int(boxed[-1]) == expected
    assert summary[stage]["accuracy"] == pytest.approx(100 * correct / len(samples))
  grpo_metrics = _read_jsonl(workdir / "grpo" / "metrics.jsonl")
  assert [m["step"] for m in grpo_metrics] == [1, 2]

  assert summary["greedy_accuracy"]["before_grpo"] == summary["eval_sft"]["accuracy"]
  assert summary["greedy_accuracy"]["after_grpo"] == summary["eval_grpo"]["accuracy"]
  assert summary["problems"]["same_template_and_numbers"] == 0
  table = (workdir / "summary.md").read_text()
  assert table in stdout
  assert "before -> after GRPO" in table and f"| {pages[0]} (" in table and f"-> {pages[-1]} (" in table

  # Re-run: finished stages are skipped; a deleted stage re-runs with an overridden nested field.
  (workdir / "eval_grpo").rename(tmp_path / "old_eval_grpo")
  stdout = _main(workdir, "--config.eval_grpo.data.limit=4")
  assert stdout.count("done before, skipped") == len(quickstart_config.STAGES) - 1
  resumed = json.loads((workdir / "summary.json").read_text())
  assert resumed["eval_grpo"]["questions"] == 4
  assert resumed["corpus"] == summary["corpus"] and resumed["sft"] == summary["sft"]
