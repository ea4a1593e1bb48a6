"""GSM8K-style arithmetic word problems whose test split differs from training in content.

Each problem comes from a template (a story and the computation it asks for, e.g. boxes of
pens minus the pens given away: a * b - c) filled with random numbers. The training and test
splits use DIFFERENT templates (TRAIN_TEMPLATES, TEST_TEMPLATES): a test problem's story and
composition of operations never appear in training, only the elementary skills (reading a
quantity, multiplying, adding, subtracting, dividing evenly) are shared. On top of that, a
test problem whose computation with its numbers (e.g. "7*6-5") equals a training problem's is
redrawn, so no test problem is a training problem in other words. `overlap` counts both.

Both splits mix one-, two- and three-operation problems. Difficulty is set by `max_factor`
(bound of multiplied numbers) and `max_count` (bound of added/removed counts); it is chosen on
the TRAINING split only (README).
"""
import json
import random
from collections.abc import Callable

NAMES = ["Tom", "Ana", "Li", "Sam", "Maya", "Omar", "Kim", "Ravi", "Zoe", "Ben"]
THINGS = ["apples", "pens", "books", "coins", "stickers", "cards", "marbles", "shells"]


def _name(rng):
  return rng.choice(NAMES)


# A template: rng, max_factor, max_count -> (question, the computation with its numbers, answer);
# the caller redraws when the answer is not positive.
Template = Callable[[random.Random, int, int], tuple[str, str, int]]


def _boxes_give_away(rng, f, n):
  name, thing = _name(rng), rng.choice(THINGS)
  a, b, c = rng.randint(2, f), rng.randint(2, f), rng.randint(1, n)
  return (f"{name} has {a} boxes with {b} {thing} in each box. {name} gives away {c} {thing}. "
          f"How many {thing} does {name} have left?", f"{a}*{b}-{c}", a * b - c)


def _change(rng, f, n):
  name, thing = _name(rng), rng.choice(["notebooks", "pencils", "erasers", "stamps"])
  a, b = rng.randint(2, f), rng.randint(2, f)
  c = rng.choice([20, 50, 100])
  return (f"{name} buys {a} {thing} for ${b} each and pays with a ${c} bill. How much change does "
          f"{name} get?", f"{c}-{a}*{b}", c - a * b)


def _pages(rng, f, n):
  name = _name(rng)
  a, b, c = rng.randint(2, n), rng.randint(2, f), rng.randint(1, n)
  return (f"{name} reads {a} pages every day for {b} days and then reads {c} more pages. How many pages "
          f"does {name} read in total?", f"{a}*{b}+{c}", a * b + c)


def _share(rng, f, n):
  name, thing = _name(rng), rng.choice(THINGS)
  c = rng.randint(2, f)
  total = c * rng.randint(2, f)
  a = rng.randint(1, total - 1)
  b = total - a
  return (f"{name} has {a} {thing} and buys {b} more. {name} shares them equally among {c} friends. "
          f"How many {thing} does each friend get?", f"({a}+{b})/{c}", total // c)


def _wage(rng, f, n):
  name = _name(rng)
  a, b, c = rng.randint(2, f + 3), rng.randint(1, f), rng.randint(1, f)
  return (f"{name} earns ${a} per hour. {name} works {b} hours on Monday and {c} hours on Tuesday. "
          f"How much does {name} earn on these two days?", f"{a}*({b}+{c})", a * (b + c))


def _boys_pencils(rng, f, n):
  a = rng.randint(10, 10 + n)
  b, c = rng.randint(1, a - 2), rng.randint(2, f)
  return (f"There are {a} students in a class and {b} of them are girls. Each boy has {c} pencils. "
          f"How many pencils do the boys have altogether?", f"({a}-{b})*{c}", (a - b) * c)


def _half_rest(rng, f, n):
  name = _name(rng)
  b = rng.randint(2, n)
  a = b + 2 * rng.randint(2, n)
  return (f"{name} has ${a}. {name} spends ${b} on a book and then half of the remaining money on lunch. "
          f"How much money does {name} have left?", f"({a}-{b})/2", (a - b) // 2)


def _more_than(rng, f, n):
  name, other, thing = _name(rng), rng.choice(["Jo", "Eli", "Ada"]), rng.choice(THINGS)
  a, b = rng.randint(2, n), rng.randint(2, n)
  return (f"{name} has {a} {thing}. {other} has {b} more {thing} than {name}. How many {thing} do they "
          f"have together?", f"{a}+({a}+{b})", a + a + b)


def _bags(rng, f, n):
  name, thing = _name(rng), rng.choice(THINGS)
  a, b = rng.randint(2, f), rng.randint(2, f)
  return (f"{name} has {a} bags with {b} {thing} in each bag. How many {thing} does {name} have?",
          f"{a}*{b}", a * b)


def _gave_away(rng, f, n):
  name, other, thing = _name(rng), rng.choice(["Jo", "Eli", "Ada"]), rng.choice(THINGS)
  a = rng.randint(3, 2 * n)
  b = rng.randint(1, a - 1)
  return (f"{name} had {a} {thing} and gave {b} of them to {other}. How many {thing} does {name} have now?",
          f"{a}-{b}", a - b)


# ---- held-out templates: stories and compositions that no training problem uses -------------

def _bakery(rng, f, n):
  a, b = rng.randint(2, f), rng.randint(2, f)
  c, d = rng.randint(2, n), rng.randint(2, n)
  return (f"A baker makes {a} trays of muffins with {b} muffins on each tray. She sells {c} muffins in "
          f"the morning and {d} muffins in the afternoon. How many muffins are left?",
          f"{a}*{b}-{c}-{d}", a * b - c - d)


def _bus(rng, f, n):
  a = rng.randint(10, 10 + 2 * n)
  b, c = rng.randint(1, a - 1), rng.randint(1, n)
  return (f"A bus has {a} passengers. At the first stop {b} people get off and {c} people get on. "
          f"How many passengers are on the bus now?", f"{a}-{b}+{c}", a - b + c)


def _garden(rng, f, n):
  a, b, c, d = (rng.randint(2, f) for _ in range(4))
  return (f"A garden has {a} beds with {b} roses each and {c} beds with {d} tulips each. How many "
          f"flowers are in the garden?", f"{a}*{b}+{c}*{d}", a * b + c * d)


def _tickets(rng, f, n):
  name = _name(rng)
  a, b, c = rng.randint(2, f), rng.randint(2, f), rng.randint(2, f)
  return (f"{name} buys {a} adult tickets and {b} child tickets for a show. Every ticket costs ${c}. "
          f"How much does {name} pay?", f"({a}+{b})*{c}", (a + b) * c)


def _farm(rng, f, n):
  a, b, c = (rng.randint(2, n) for _ in range(3))
  return (f"A farm has {a} cows, {b} pigs and {c} hens. How many animals are on the farm?",
          f"{a}+{b}+{c}", a + b + c)


TRAIN_TEMPLATES: dict[str, Template] = {
    "boxes_give_away": _boxes_give_away, "change": _change, "pages": _pages, "share": _share,
    "wage": _wage, "boys_pencils": _boys_pencils, "half_rest": _half_rest, "more_than": _more_than,
    "bags": _bags, "gave_away": _gave_away}
TEST_TEMPLATES: dict[str, Template] = {
    "bakery": _bakery, "bus": _bus, "garden": _garden, "tickets": _tickets, "farm": _farm}


def _draw(rng, templates: dict[str, Template], max_factor: int, max_count: int) -> dict:
  name = rng.choice(sorted(templates))               # templates equally often
  while True:
    question, expression, answer = templates[name](rng, max_factor, max_count)
    if answer > 0:                                   # else redraw (e.g. more given away than owned)
      return {"question": question, "answer": str(answer), "template": name, "expression": expression}


def generate(num_train: int, num_test: int, seed: int = 0, max_factor: int = 9,
             max_count: int = 20) -> tuple[list[dict], list[dict]]:
  """(train, test) records {question, answer, template, expression}; deterministic from `seed`.

  Training problems come from TRAIN_TEMPLATES, test problems from TEST_TEMPLATES; a test
  problem whose expression (computation with its numbers) occurs in training is redrawn.
  """
  rng = random.Random(seed)
  train = [_draw(rng, TRAIN_TEMPLATES, max_factor, max_count) for _ in range(num_train)]
  train_expressions = {r["expression"] for r in train}
  test, seen = [], set()
  while len(test) < num_test:
    record = _draw(rng, TEST_TEMPLATES, max_factor, max_count)
    if record["expression"] not in train_expressions and record["question"] not in seen:
      seen.add(record["question"])
      test.append(record)
  return train, test


def _numbers(record: dict) -> tuple[int, ...]:
  import re
  return tuple(int(x) for x in re.findall(r"\d+", record["expression"]))


def overlap(train: list[dict], test: list[dict]) -> dict:
  """How many test problems share content with some training problem (all must be 0):
  same template and same numbers; same computation with the same numbers; same text."""
  template_numbers = {(r["template"], _numbers(r)) for r in train}
  expressions = {r["expression"] for r in train}
  questions = {r["question"] for r in train}
  return {
      "same_template_and_numbers": sum((r["template"], _numbers(r)) in template_numbers for r in test),
      "same_expression": sum(r["expression"] in expressions for r in test),
      "same_question": sum(r["question"] in questions for r in test),
      "shared_templates": sorted({r["template"] for r in train} & {r["template"] for r in test}),
  }


def write_jsonl(records, path: str) -> str:
  with open(path, "w") as f:
    for r in records:
      f.write(json.dumps(r) + "\n")
  return path
