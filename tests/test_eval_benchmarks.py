"""Grading the real benchmarks' own gold solutions: MATH-500 and GSM8K test.

Each gold solution, given as a model output, must be graded correct against its record's
answer (>= 99%), and incorrect against another record's answer (< 2%: a random derangement
of the answer column; the few hits are questions that share an answer, e.g. "2" and "2").
"""
import random

import pytest

from dsmath_jax.eval import benchmark, scoring
from dsmath_jax.grading.grader import Grader


@pytest.fixture(scope="module")
def pool():
  with Grader(workers=2, timeout_s=10.0) as g:
    yield g


def _derange(answers: list[str], seed: int) -> list[str]:
  """answers permuted so that no record keeps its own (a random cyclic derangement)."""
  order = list(range(len(answers)))
  random.Random(seed).shuffle(order)
  result = list(answers)
  for k, i in enumerate(order):
    result[i] = answers[order[(k + 1) % len(order)]]
  return result


@pytest.mark.parametrize("relative_path,expected_questions", [
    ("math/math500_test.jsonl", 500), ("gsm8k/test.jsonl", 1319)])
def test_gold_solutions_grade_correct_and_shuffled_incorrect(shared_data, pool, relative_path, expected_questions):
  questions = benchmark.load_questions(str(shared_data / relative_path))
  assert len(questions) == expected_questions
  outputs = {q["id"]: [q["solution"]] for q in questions}   # the full reference solution as the output
  rows, summary = scoring.score(questions, outputs, pool)
  wrong = [(r["id"], r["extracted"], r["gold"]) for r in rows if not r["correct"]]
  assert summary["accuracy"] >= 99.0, wrong[:20]
  assert summary["grader"]["timeouts"] == 0

  shuffled_answers = _derange([q["answer"] for q in questions], seed=0)
  shuffled = [dict(q, answer=a) for q, a in zip(questions, shuffled_answers)]
  assert sorted(shuffled_answers) == sorted(q["answer"] for q in questions)  # the same answers, moved
  rows, summary = scoring.score(shuffled, outputs, pool)
  hits = [(r["id"], r["extracted"], r["gold"]) for r in rows if r["correct"]]
  assert summary["accuracy"] < 2.0, hits
