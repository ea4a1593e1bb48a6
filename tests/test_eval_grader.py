"""The paper-faithful grader on ~300 hand-checked (prediction, gold, equal?) pairs, its worker
pool (timeouts count as incorrect, the pool survives them) and the single-call API.

tests/data/grader_cases.jsonl: every label was decided by hand from the mathematics (with
1e-3 absolute tolerance for decimals, and x, x/100, 100x only where a percent sign is written),
not by running the grader. `paper_compat_equal` labels the pairs where DeepSeek-Math's own rule
(percent variants always) decides otherwise.
"""
import collections
import json
import os
import pathlib
import signal
import time

import pytest

from dsmath_jax.grading import grader

CASES = [json.loads(line) for line in
         (pathlib.Path(__file__).parent / "data" / "grader_cases.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def pool():
  with grader.Grader(workers=2, timeout_s=20.0) as g:
    yield g


def test_cases_cover_both_outcomes():
  counts = collections.Counter(case["equal"] for case in CASES)
  assert len(CASES) >= 300 and counts[True] >= 150 and counts[False] >= 80, counts


def test_hand_checked_pairs(pool):
  verdicts = pool.grade_many([(case["prediction"], case["gold"]) for case in CASES])
  wrong = [(case["prediction"], case["gold"], case["equal"], v) for case, v in zip(CASES, verdicts)
           if v.correct != case["equal"] or v.status != "ok"]
  assert not wrong, "\n".join(map(str, wrong))


def test_paper_compat_reproduces_deepseek_math_percent_rule():
  cases = [case for case in CASES if "paper_compat_equal" in case]
  assert any(c["equal"] != c["paper_compat_equal"] for c in cases)
  with grader.Grader(workers=1, timeout_s=20.0, paper_compat=True) as g:
    verdicts = g.grade_many([(case["prediction"], case["gold"]) for case in cases])
  assert [v.correct for v in verdicts] == [case["paper_compat_equal"] for case in cases]


def test_timeout_counts_as_incorrect_and_pool_recovers():
  # Equal expressions, but simplify() on degree-600 polynomials takes ~30 s (3 s at degree 200).
  slow = ("(x+1)^{300}(x-1)^{300}", "(x^2-1)^{300}")
  with grader.Grader(workers=1, timeout_s=2.0) as g:
    verdicts = g.grade_many([slow, ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"), ("3", "4")])
    assert [v.status for v in verdicts] == ["timeout", "ok", "ok"]
    assert [v.correct for v in verdicts] == [False, True, False]
    assert g.restarts == 1
    assert g.grade_many([("(x+1)^2", "x^2+2x+1")])[0].correct  # the replacement worker grades


def test_no_answer_is_incorrect_without_a_worker():
  g = grader.Grader(workers=1)
  assert g.grade_many([(None, "5"), ("", "5")]) == [
      grader.Verdict(False, "ok", "no answer"), grader.Verdict(False, "ok", "empty answer")]
  assert g._workers == []  # decided in-process; no process was started
  g.close()


def test_second_opinion_from_math_verify():
  pairs = [("\\frac{1}{2}", "0.5"), ("3", "4"), ("(x+1)^2", "x^2+2x+1")]
  with grader.Grader(workers=1, timeout_s=20.0, second_opinion=True) as g:
    verdicts = g.grade_many(pairs)
  assert [v.correct for v in verdicts] == [True, False, True]
  assert [v.math_verify for v in verdicts] == [True, False, True]


def test_quick_path_needs_no_sympy():
  assert grader.quick_compare("\\$1,000", "1000") == (True, "numeric")
  assert grader.quick_compare("(1, 2)", "(1,3)") == (False, "tuple")
  assert grader.quick_compare("x^2", "x \\cdot x") is None     # only sympy can decide


def test_is_equiv_and_grade_output():
  assert grader.is_equiv("0.5", "\\frac{1}{2}")
  assert not grader.is_equiv("0.6", "\\frac{1}{2}")
  assert grader.is_equiv("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}")  # through the shared pool
  assert grader.grade_output("So we get $\\boxed{\\dfrac{1}{2}}$.", "0.5")
  assert grader.grade_output("Janet makes 9 * 2 = 18.\n#### 18", "18")
  assert not grader.grade_output("I give up.", "18")
  tool = "```python\nprint(7)\n```\n```output\n7\n```\nThe answer is $\\boxed{8}$."
  assert not grader.grade_output(tool, "7") and grader.grade_output(tool, "7", mode="program")


def _grade_in_pool_worker(pairs):
  with grader.Grader(workers=1, timeout_s=2.0) as g:
    return [tuple(v) for v in g.grade_many(pairs)]


def test_inside_a_daemonic_process_grades_in_process_with_a_timeout():
  # multiprocessing.Pool workers are daemonic and may not start the grading workers.
  import multiprocessing
  pairs = [("(x+1)^2", "x^2+2x+1"), ("(x+1)^{300}(x-1)^{300}", "(x^2-1)^{300}")]
  with multiprocessing.get_context("spawn").Pool(1) as pool:
    verdicts = pool.apply(_grade_in_pool_worker, (pairs,))
  assert [v[:2] for v in verdicts] == [(True, "ok"), (False, "timeout")]


OCW_CASES = [  # (prediction, gold, strict, paper_compat); Minerva: 1% near zero, else rtol 1e-5
    ("4.5 \\times 10^{33}", "4.5e33", True, True),
    ("4.5 \\times 10^{33} \\mathrm{erg} / \\mathrm{s}", "4.5e33", True, True),
    ("4.6e33", "4.5e33", False, False),
    ("1.6 kg", "1.6", True, True),
    ("41.8 years", "41.8", True, True),
    ("-0.333333", "-1./3", True, False),          # gold as Python arithmetic: a number in strict mode
    ("-0.3333", "-1./3", False, False),           # rtol 1e-5 away from the gold: Minerva says no
    ("\\frac{1}{s+1}", "\\frac{1}{s+1}", True, True),
    ("1/(s+1)", "\\frac{1}{s+1}", True, False),    # DeepSeek-Math compares expressions as strings only
    ("\\frac{1}{s+2}", "\\frac{1}{s+1}", False, False),
]


def test_ocw_as_minerva_grades_it():
  pairs = [(p, g, "ocw") for p, g, _, _ in OCW_CASES]
  for paper, column in ((False, 2), (True, 3)):
    with grader.Grader(workers=1, timeout_s=20.0, paper_compat=paper) as g:
      verdicts = g.grade_many(pairs)
    assert [v.correct for v in verdicts] == [case[column] for case in OCW_CASES], paper


def test_kinds_choice_and_cloze_in_process():
  from dsmath_jax.grading import kinds
  assert kinds.quick_decide("AD", "A D", "choice") == (True, "choice")
  assert kinds.quick_decide(("5", "\\frac{1}{2}"), ("5", "0.5"), "cloze") == (True, "blanks")
  assert kinds.quick_decide(("0.5", "5"), ("5", "0.5"), "cloze") == (False, "blanks")   # blanks keep their order
  with grader.Grader(workers=1) as g:
    assert [v.correct for v in g.grade_many([("B", "B", "choice"), (("1",), ("2",), "cloze")])] == [True, False]
  with pytest.raises(ValueError, match="answer kind"):
    kinds.extract("x", "essay")


def test_a_keyboard_interrupt_leaves_the_workers_grading():
  """Ctrl-C (or a notebook's interrupt) reaches the whole process group; the pool's workers must
  outlive it, so the grading process decides, and the next call is graded by the same workers."""
  with grader.Grader(workers=1, timeout_s=20.0) as g:
    g.start()
    worker = g._workers[0]
    os.kill(worker.process.pid, signal.SIGINT)
    time.sleep(1.0)
    assert worker.process.is_alive()
    # \frac{1}{2} vs 0.5 is decided in a worker (not by the in-process rules).
    verdicts = g.grade_many([("\\frac{1}{2}", "0.5"), ("x^2", "x*x"), ("3", "4")])
    assert [v.correct for v in verdicts] == [True, True, False]
    assert g.restarts == 0 and g._workers[0] is worker
