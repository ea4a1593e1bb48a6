"""pass@k against brute-force enumeration, maj@k on hand-made cases, and the whole summary on the
shipped toy file dsmath_jax/assets/eval/tiny_predictions.jsonl (4 questions x 4 samples), whose
values below were computed by hand:

  question  gold      extracted answers (correct?)                    c   answer classes
  tiny/1    18        18 T, 18.0 T, 20 F, \\$18 T                      3   {18: 0,1,3} {20: 2}
  tiny/2    1/2       0.5 T, 1/3 F, \\frac13 F, \\dfrac{1}{2} T           2   {1/2: 0,3} {1/3: 1,2}
  tiny/3    (1,2)     none, (2,1) F, (2, 1) F, (1,2) T                1   {(2,1): 1,2} {(1,2): 3}
  tiny/4    7         7 T, 8 F, 8 F, 9 F  (program outputs 7, 8, 7, -) 1   {7: 0} {8: 1,2} {9: 3}

  pass@1 = mean(c/4) = (3+2+1+1)/16 = 43.75%
  pass@2 = mean(1 - C(4-c,2)/C(4,2)) = (1 + 5/6 + 1/2 + 1/2)/4 = 70.8333%;  pass@4 = 100%
  maj@1 (first sample) = T, T, F (no answer), T -> 75%
  maj@2 = T (18,18), T (1/2 vs 1/3: tie, first class wins), F ((2,1) only), T (7 vs 8: tie) -> 75%
  maj@4 = T (3 vs 1), T (2 vs 2: tie, first class), F (2 vs 1), F (8 has 2 vs 1 and 1) -> 50%
  program accuracy = (0 + 0 + 0 + 2/4)/4 = 12.5%
"""
import itertools
import math
import pathlib

import numpy as np
import pytest

from dsmath_jax.benchmarks import load
from dsmath_jax.eval import metrics, predictions, scoring
from dsmath_jax.grading.grader import Grader

ASSETS = pathlib.Path(__file__).resolve().parents[1] / "dsmath_jax" / "assets" / "eval"


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 3), (6, 1, 4), (8, 3, 5), (8, 0, 8),
                                   (8, 8, 2), (10, 4, 10)])
def test_pass_at_k_matches_enumeration(n, c, k):
  outcomes = [True] * c + [False] * (n - c)
  subsets = list(itertools.combinations(range(n), k))
  expected = sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)
  assert metrics.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_large_n_matches_binomials():
  assert metrics.pass_at_k(64, 5, 16) == pytest.approx(1 - math.comb(59, 16) / math.comb(64, 16), rel=1e-10)
  with pytest.raises(ValueError):
    metrics.pass_at_k(4, 5, 1)
  with pytest.raises(ValueError):
    metrics.pass_at_k(4, 1, 5)


def test_maj_at_k_hand_cases():
  # correct answers are one class (they all equal the gold), wrong ones group by normalized string
  answers, flags = ["3", "\\frac12", "0.5", "3.0", "3"], [False, True, True, False, False]
  assert not metrics.maj_at_k(answers, flags, 5)        # "3" x3 beats the correct class x2
  assert metrics.maj_at_k(answers, flags, 3)            # correct x2 beats "3" x1
  assert not metrics.maj_at_k(answers, flags, 2)        # tie 1-1: the class seen first ("3") wins
  assert metrics.maj_at_k([None, None, "5"], [False, False, True], 3)
  assert not metrics.maj_at_k([None, None], [False, False], 2)
  assert metrics.majority_answer(["a", "b", "b"], [False, False, False]) == 1


def test_maj_at_k_tie_goes_to_the_first_class():
  assert not metrics.maj_at_k(["4", "5"], [False, True], 2)
  assert metrics.maj_at_k(["5", "4"], [True, False], 2)


def test_ks_up_to():
  assert metrics.ks_up_to(1) == [1]
  assert metrics.ks_up_to(64) == [1, 2, 4, 8, 16, 32, 64]
  assert metrics.ks_up_to(5) == [1, 2, 4, 5]


def test_toy_file_summary_matches_hand_computed_values():
  questions = load.questions("jsonl", str(ASSETS / "tiny_questions.jsonl"))
  outputs, bad = predictions.read_predictions(str(ASSETS / "tiny_predictions.jsonl"), [q["id"] for q in questions])
  assert bad == [] and {k: len(v) for k, v in outputs.items()} == {f"tiny/{i}": 4 for i in range(1, 5)}
  with Grader(workers=1, timeout_s=20.0) as grader:
    rows, summary = scoring.score(questions, outputs, grader)
  assert [r["correct"] for r in rows] == [True, True, False, True, True, False, False, True,
                                          False, False, False, True, True, False, False, False]
  assert summary["accuracy"] == pytest.approx(43.75)
  per_question = [3 / 4, 2 / 4, 1 / 4, 1 / 4]
  assert summary["accuracy_stderr"] == pytest.approx(100 * np.std(per_question, ddof=1) / 2)
  assert summary["pass@k"] == pytest.approx({"1": 43.75, "2": 100 * (1 + 5 / 6 + 0.5 + 0.5) / 4, "4": 100.0})
  assert summary["maj@k"] == pytest.approx({"1": 75.0, "2": 75.0, "4": 50.0})
  assert summary["program_accuracy"] == pytest.approx(12.5)
  assert summary["no_answer_samples"] == 1
  assert summary["by_subject"] == {"Algebra": dict(questions=2, accuracy=pytest.approx(25.0)),
                                   "Prealgebra": dict(questions=2, accuracy=pytest.approx(62.5))}
  assert summary["by_level"]["1"]["accuracy"] == pytest.approx(np.mean([3 / 4, 1 / 4]) * 100)
