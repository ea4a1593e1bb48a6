"""GSM8K and MATH built from /work/shared/data: counts, gold answers, CoT rewriting, decontamination.

One module-scoped build of the default config's question sources and CoT SFT sources
(programs are tested in test_tfds_programs.py); references are the raw files read here
with json, the eval grader/extractor, and an n-gram check written in this file.
"""
import collections
import functools
import json
import re
import sys

import grain
import pytest

from configs import dataset as dataset_config
from dsmath_jax import templates
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading import grader
from dsmath_jax.datasets import decontamination, load_source, task


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("dataset")
  config = dataset_config.get_config()
  for name in list(config.sft.keys()):
    if name not in ("gsm8k_cot", "math_cot"):
      del config.sft[name]
  # The paper's list minus its Chinese sets (CMATH, Gaokao), which no English record can match;
  # the reference check below reads the same two files itself.
  config.decontamination.sets = tuple(s for s in config.decontamination.sets if s["name"] in ("gsm8k", "math"))
  assert {s["name"] for s in config.decontamination.sets} == {"gsm8k", "math"}
  rows = task.run(config, str(workdir))
  data_dir = str(workdir / "tfds")

  @functools.cache
  def load(name, split):
    source = load_source(name, split, data_dir)
    return source.__getitems__(range(len(source)))
  return dict(rows={(r["dataset"], r["split"]): r for r in rows}, data_dir=data_dir, load=load)


@functools.cache
def _raw_cached(path):
  return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())


def _raw(shared_data, path):
  return list(_raw_cached(shared_data / path))


def test_counts_match_the_sources(built):
  counts = {(name, split): len(built["load"](name, split)) for name, split in [
      ("dsmath_questions/gsm8k", "train"), ("dsmath_questions/gsm8k", "test"),
      ("dsmath_questions/math", "train"), ("dsmath_questions/math", "test")]}
  # SOURCE.md: GSM8K 7,473/1,319; MATH train 7,500 (2 have an empty \boxed{}: no gold; 1 is a
  # question of the full 5,000-problem MATH test, removed by the exact rule), MATH-500 500.
  assert counts == {("dsmath_questions/gsm8k", "train"): 7473, ("dsmath_questions/gsm8k", "test"): 1319,
                    ("dsmath_questions/math", "train"): 7497, ("dsmath_questions/math", "test"): 500}
  math_train = built["rows"][("dsmath_questions/math", "train")]
  assert math_train["read"] == 7500 and math_train["dropped"] == {"empty_boxed": 2}
  assert math_train["removed"]["exact"] == 1 and math_train["removed"]["ngram"] == 0
  subjects = collections.Counter(r["subject"] for r in built["load"]("dsmath_questions/math", "train"))
  assert subjects["Algebra"] == 1744 and subjects["Precalculus"] == 746 and sum(subjects.values()) == 7497


def test_gsm8k_gold_is_the_number_after_hashes(built, shared_data):
  for split in ("train", "test"):
    records = built["load"]("dsmath_questions/gsm8k", split)
    raw = _raw(shared_data, f"gsm8k/{split}.jsonl")
    assert [r["question"] for r in records] == [x["question"].strip() for x in raw]
    for record, line in zip(records, raw):
      assert float(record["answer"]) == float(line["answer"].split("####")[-1].replace(",", ""))
    assert len({r["id"] for r in records}) == len(records)


def test_math500_gold_matches_its_answer_field_and_level(built, shared_data):
  records = built["load"]("dsmath_questions/math", "test")
  raw = _raw(shared_data, "math/math500_test.jsonl")
  assert [(r["id"], r["answer"], r["subject"], r["level"]) for r in records] == [
      (x["unique_id"], x["answer"], x["subject"], x["level"]) for x in raw]
  # The last \boxed{} of each solution (how MATH train gold is read) agrees with the given answer.
  from dsmath_jax.datasets import hendrycks_math
  with grader.Grader(workers=2) as pool:
    verdicts = pool.grade_many([(hendrycks_math.gold_answer(x["solution"]), x["answer"]) for x in raw])
  assert [x["unique_id"] for x, v in zip(raw, verdicts) if not v.correct] == []


def test_every_gold_is_accepted_by_the_grader(built):
  pairs = []
  for name in ("dsmath_questions/gsm8k", "dsmath_questions/math"):
    for split in ("train", "test"):
      pairs += [(r["answer"], r["answer"]) for r in built["load"](name, split)]
  assert len(pairs) == 7473 + 1319 + 7497 + 500
  assert [gold for gold, same in pairs if not grader.is_equiv(gold, same)] == []


def test_math_train_levels_and_cot_records(built, shared_data):
  questions = built["load"]("dsmath_questions/math", "train")
  raw = {x["unique_id"]: x for x in _raw(shared_data, "math/train.jsonl")}
  for record in questions[::50]:
    line = raw[record["id"]]
    assert record["level"] == int(line["level"].split()[-1]) or line["level"] == "Level ?"
    assert record["subject"] == line["type"] and record["solution"] == line["solution"]
  sft = built["load"]("dsmath_sft/math_cot", "train")
  for record in sft[::50]:
    assert record["prompt"] == templates.render(raw[record["id"]]["problem"], "cot")
    assert record["response"] == " " + raw[record["id"]]["solution"].strip()
    assert record["format"] == "cot" and record["prompt"].endswith("Assistant:")


_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:/\d+)?")


def _numbers(text):
  values = set()
  for token in _NUMBER.findall(text):
    token = token.replace(",", "").rstrip(".")
    try:
      values.add(round(eval(token) if "/" in token else float(token), 6))  # noqa: S307 (digits only)
    except (ValueError, ZeroDivisionError, SyntaxError):
      pass
  return values


def test_gsm8k_cot_keeps_every_computed_number(built, shared_data):
  raw = _raw(shared_data, "gsm8k/train.jsonl")
  records = built["load"]("dsmath_sft/gsm8k_cot", "train")
  assert len(records) == 7473 - built["rows"][("dsmath_sft/gsm8k_cot", "train")]["removed"]["ngram"]
  for record in records[::7]:                                    # ~1,070 solutions
    line = raw[int(record["id"].rsplit("-", 1)[1]) - 1]
    assert record["prompt"] == templates.render(line["question"], "cot")
    response = record["response"]
    assert response.startswith(" ") and "<<" not in response and "####" not in response
    gold = line["answer"].split("####")[-1].strip().replace(",", "")
    assert answer_lib.extract_answer(response) == gold
    computed = [inner.rsplit("=", 1)[1] for inner in re.findall(r"<<([^<>]*)>>", line["answer"]) if "=" in inner]
    shown = _numbers(response)
    for number in computed:
      assert _numbers(number) <= shown, (record["id"], number, response)


def _word_grams(text, n=10):
  words = re.findall(r"\w+", re.sub(r"<<[^<>]*>>", " ", text).lower())
  return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}, " ".join(words), len(words)


def test_decontamination_removes_exactly_the_overlapping_questions(built, shared_data):
  # Benchmark texts: GSM8K test questions and solutions, all 5,000 MATH test problems and solutions.
  benchmark_grams, short = set(), []
  for path, fields in (("deepseek_math_eval/gsm8k/test.jsonl", ("question", "cot")),
                       ("math/test.jsonl", ("problem", "solution"))):
    for line in _raw(shared_data, path):
      for field in fields:
        grams, joined, length = _word_grams(line[field])
        benchmark_grams |= grams
        if 3 <= length < 10:
          short.append(joined)
  for source, path, field in (("gsm8k_cot", "gsm8k/train.jsonl", "question"), ("math_cot", "math/train.jsonl", "problem")):
    kept = {r["question"] for r in built["load"](f"dsmath_sft/{source}", "train")}
    expected_removed = set()
    for line in _raw(shared_data, path):
      grams, joined, _ = _word_grams(line[field])
      if grams & benchmark_grams or any(f" {s} " in f" {joined} " for s in short):
        expected_removed.add(line[field].strip())
    removed_count = built["rows"][(f"dsmath_sft/{source}", "train")]["removed"]
    # Verbatim copies: none in GSM8K train; MATH train/geometry/6032 is a MATH test question.
    assert removed_count["exact"] == {"gsm8k_cot": 0, "math_cot": 1}[source]
    assert removed_count["exact"] + removed_count["ngram"] == len(expected_removed) > 0
    assert not kept & expected_removed
  # RL questions: exact match only (config); one MATH train question is a MATH test question.
  removed = built["rows"][("dsmath_questions/math", "train")]["removed"]
  assert (removed["exact"], removed["ngram"]) == (1, 0)
  assert [e["id"] for e in removed["examples"]] == ["train/geometry/6032.json"]


def test_exact_rule_catches_the_math_train_test_duplicate(shared_data):
  """train/geometry/6032.json is also in the full MATH test set (not shipped here)."""
  raw = [x for x in _raw(shared_data, "math/train.jsonl") if x["unique_id"] == "train/geometry/6032.json"]
  assert raw, "the known duplicate is in MATH train"
  test_copy = "  " + raw[0]["problem"].upper().replace(" ", "   ") + "\n"    # spacing and case differ
  index = decontamination.BenchmarkIndex([("math_test", test_copy)], ngram=0)
  kept, removed = decontamination.decontaminate([dict(id="x", question=raw[0]["problem"])], index)
  assert kept == [] and removed["exact"] == 1


def test_grain_reads_without_tensorflow(built):
  source = load_source("dsmath_sft/gsm8k_cot", "train", built["data_dir"])
  dataset = grain.MapDataset.source(source).shuffle(seed=0).batch(4, batch_fn=list)
  batch = dataset[0]
  assert len(batch) == 4 and all(isinstance(r["response"], str) for r in batch)
  assert "tensorflow" not in sys.modules
