"""dsmath_jax/data/word_problems.py: answers, teacher slips and the content-disjoint split,
checked against the question text re-read with a regex and Python arithmetic."""
import re

import pytest

from dsmath_jax.data import word_problems

_TWO_STEP = re.compile(r"^\w+ has (\d+) (boxes of|bags with|\w+ and buys|\w+ and is given) (\d+) .*?\. Then \w+ "
                       r"(finds|wins|picks up|gives away|loses|sells) (\d+)(?: more)?\. How many \w+ does \w+ have now\?$")
_ONE_STEP = re.compile(r"^\w+ (has|owns|keeps|collected) (\d+) \w+(?: in a box)?\. Then \w+ "
                       r"(finds|wins|picks up|gives away|loses|sells) (\d+)(?: more)?\. How many \w+ does \w+ have now\?$")
_SIGN = {"finds": 1, "wins": 1, "picks up": 1, "gives away": -1, "loses": -1, "sells": -1}


def _read(question: str):
  """(template words, numbers, true answer) from the text alone."""
  match = _TWO_STEP.match(question)
  if match:
    p, opener, q, change, r = match.groups()
    multiply = opener in ("boxes of", "bags with")
    opener = opener if multiply else opener.split(" and ")[-1]            # "cards and buys" -> "buys"
    first = int(p) * int(q) if multiply else int(p) + int(q)
    return (opener, change), (int(p), int(q), int(r)), first + _SIGN[change] * int(r)
  opener, p, change, r = _ONE_STEP.match(question).groups()
  return (opener, change), (int(p), int(r)), int(p) + _SIGN[change] * int(r)


@pytest.mark.parametrize("family", ["two_step", "one_step"])
def test_answers_split_and_teacher_slips_match_the_text(family):
  train, test = word_problems.generate(6000, 200, seed=3, teacher_error=0.5, family=family)
  read = {name: [_read(r["question"]) for r in records] for name, records in (("train", train), ("test", test))}
  for record, (_, numbers, answer) in zip(train + test, read["train"] + read["test"]):
    assert int(record["answer"]) == answer and tuple(record["numbers"]) == numbers, record
    lines = record["solution"].strip().split("\n")
    *steps, last = lines
    for step in steps:                                             # every shown step is right arithmetic
      u, op, v = step.split(" = ")[0].split()
      assert int(step.split(" = ")[1].rstrip(".")) == eval(f"{int(u)} {op} {int(v)}")
    shown = int(re.search(r"\\boxed\{(-?\d+)\}", last).group(1))
    assert (shown == answer) == record["teacher_correct"]
  # Held-out problems share neither template nor numbers with any training problem (from the text).
  assert not {t for t, _, _ in read["test"]} & {t for t, _, _ in read["train"]}
  assert not {n for _, n, _ in read["test"]} & {n for _, n, _ in read["train"]}
  assert len({(t, n) for t, n, _ in read["test"]}) == 200
  assert all(r["teacher_correct"] for r in test)                   # held-out solutions are clean
  slipped = 1 - sum(r["teacher_correct"] for r in train) / len(train)
  assert 0.35 < slipped < 0.55, slipped                           # 0.5 minus slips that would go <= 0
  counts = word_problems.overlap(test, train)
  assert counts["same_template_and_numbers"] == counts["same_template"] == counts["same_numbers"] == 0
  assert counts["distinct_test_problems"] == 200


def test_overlap_counts_a_shared_problem():
  train, test = word_problems.generate(500, 20, seed=0)
  leaked = dict(test[0], question="x")                           # same template and numbers, other text
  counts = word_problems.overlap(test, train + [leaked])
  assert counts["same_template_and_numbers"] == 1 and counts["same_template"] >= 1


def test_too_many_test_problems_is_an_error():
  with pytest.raises(ValueError, match="distinct held-out problems"):
    word_problems.generate(10, 100000, family="one_step")


def test_no_held_out_numbers_splits_by_template_only():
  """test_number_fraction=0: held-out problems reuse training numbers, never a training template."""
  train, test = word_problems.generate(4000, 200, seed=0, teacher_error=0.5, family="one_step", max_start=9,
                                       test_number_fraction=0.0)
  read = {name: [_read(r["question"]) for r in records] for name, records in (("train", train), ("test", test))}
  assert not {t for t, _, _ in read["test"]} & {t for t, _, _ in read["train"]}
  assert {n for _, n, _ in read["test"]} <= {n for _, n, _ in read["train"]}
  assert all(int(r["answer"]) == answer for r, (_, _, answer) in zip(test, read["test"]))
  counts = word_problems.overlap(test, train)
  assert counts["same_template_and_numbers"] == counts["same_template"] == 0
  assert counts["same_numbers"] == counts["distinct_test_problems"] == 200


def test_counting_solutions_move_one_unit_per_equation_and_reach_the_shown_answer():
  """solution_format="counting": " 13 - 4 = 12 - 3 = 11 - 2 = 10 - 1 = 9." Every link of the chain
  is a true equation, the left number moves by one and the right one falls by one each time,
  and the chain starts from the question's numbers and ends at the boxed (possibly slipped) answer."""
  train, test = word_problems.generate(3000, 200, seed=1, teacher_error=0.5, family="one_step", max_start=25,
                                       max_addend=6, solution_format="counting")
  for record in train + test:
    (_, change), (p, r), answer = _read(record["question"])
    chain, last = record["solution"].strip().split("\n")
    terms = chain.rstrip(".").split(" = ")
    pairs = [term.split() for term in terms[:-1]]
    ops = {op for _, op, _ in pairs}
    assert len(ops) == 1 and len(pairs) == r, record               # one operation, r links
    op = ops.pop()
    assert (int(pairs[0][0]), int(pairs[0][2])) == (p, r)
    for (x, _, k), (x_next, _, k_next) in zip(pairs, pairs[1:]):
      assert int(x_next) == int(x) + (1 if op == "+" else -1) and int(k_next) == int(k) - 1
    result = eval(f"{p} {op} {r}")
    assert int(terms[-1]) == result == int(re.search(r"\\boxed\{(-?\d+)\}", last).group(1))
    assert (result == answer) == record["teacher_correct"]
    assert (op == "+") == ((_SIGN[change] > 0) == record["teacher_correct"])   # a slip flips the operation
  assert word_problems.overlap(test, train)["same_template_and_numbers"] == 0


def test_an_unknown_solution_format_is_named():
  with pytest.raises(ValueError, match="solution_format='steps'"):
    word_problems.generate(10, 10, family="one_step", solution_format="steps")
