"""A generated arithmetic word-problem task for the CPU GRPO experiment (GSM8K-like, tiny).

Two-operation problems over small numbers ("Tom has 7 boxes of 6 pens and gives away 5 pens.
How many pens does he have now?"), a worked solution in the SFT format (one line per step,
final answer in \\boxed{}), and the gold answer. Deterministic from the seed; held-out
questions never appear in training (checked by text).

`teacher_error` models SFT data written by an imperfect teacher (a weaker model, as when SFT
data is distilled): with that probability a worked solution applies the wrong second
operation (+ instead of -, or - instead of +) and boxes the wrong result. The record's
`answer` is always the true one: rewards and accuracy use it, the SFT loss sees `solution`.
"""
import json
import random

NAMES = ["Tom", "Ana", "Li", "Sam", "Maya", "Omar", "Kim", "Ravi"]
THINGS = ["apples", "pens", "books", "coins", "stickers", "cards", "marbles", "shells"]


def _problem(rng: random.Random, max_addend: int = 30, teacher_error: float = 0.0, max_factor: int = 9) -> dict:
  name, thing = rng.choice(NAMES), rng.choice(THINGS)
  kind = rng.randrange(4)
  a, b, c = rng.randint(2, max_factor), rng.randint(2, max_factor), rng.randint(2, max_addend)
  # first step "p op1 q = x", second step "x op y"
  if kind == 0:
    q = f"{name} has {a} boxes of {b} {thing} and finds {c} more {thing}. How many {thing} does {name} have?"
    first, x, op, y = f"{a} * {b}", a * b, "+", c
  elif kind == 1:
    c = rng.randint(1, min(a * b - 1, max_addend))
    q = f"{name} has {a} bags of {b} {thing} and gives away {c} {thing}. How many {thing} are left?"
    first, x, op, y = f"{a} * {b}", a * b, "-", c
  elif kind == 2:
    d = rng.randint(2, max_addend)
    q = f"{name} has {c} {thing}, buys {d} more and then {a} more. How many {thing} does {name} have?"
    first, x, op, y = f"{c} + {d}", c + d, "+", a
  else:
    d = rng.randint(2, max_addend)
    e = rng.randint(1, c + d - 1)
    q = f"{name} has {c} {thing}, gets {d} more and loses {e}. How many {thing} are left?"
    first, x, op, y = f"{c} + {d}", c + d, "-", e
  apply = {"+": lambda u, v: u + v, "-": lambda u, v: u - v}
  answer = shown = apply[op](x, y)
  shown_op = op
  if teacher_error and rng.random() < teacher_error:      # the teacher's slip: wrong second operation
    flipped_op = "-" if op == "+" else "+"
    if apply[flipped_op](x, y) > 0:
      shown_op, shown = flipped_op, apply[flipped_op](x, y)
  steps = [f"{first} = {x}.", f"{x} {shown_op} {y} = {shown}."]
  solution = " " + "\n".join(steps + [f"The answer is \\boxed{{{shown}}}."])
  return {"question": q, "answer": str(answer), "solution": solution, "teacher_correct": shown == answer}


def generate(num_train: int, num_test: int, seed: int = 0, max_addend: int = 30,
             teacher_error: float = 0.0, max_factor: int = 9) -> tuple[list[dict], list[dict]]:
  """(train, test) records; max_factor and max_addend bound the multiplied and the
  added/removed numbers (difficulty knobs); teacher_error applies to the training records'
  solutions only."""
  rng = random.Random(seed)
  test, seen = [], set()
  while len(test) < num_test:
    p = _problem(rng, max_addend, 0.0, max_factor)
    if p["question"] not in seen:
      seen.add(p["question"])
      test.append(p)
  train = []
  while len(train) < num_train:
    p = _problem(rng, max_addend, teacher_error, max_factor)
    if p["question"] not in seen:
      train.append(p)
  return train, test


def write_jsonl(records, path: str) -> str:
  with open(path, "w") as f:
    for r in records:
      f.write(json.dumps(r) + "\n")
  return path
