"""Generated arithmetic word problems with a held-out split disjoint in content.

A problem is an opener (family "two_step": a first step `p * q` or `p + q`; "one_step": a
starting count p) and a change (the last step: `x + r` or `x - r`), e.g. "Li has 3 boxes of 4
cards. Then Li loses 5. How many cards does Li have now?" -> " 3 * 4 = 12.\\n12 - 5 = 7.\\nThe answer is \\\\boxed{7}." Its *template* is the (opener,
change) pair, its *numbers* the tuple (p, q, r) (one step: (p, r)); names and objects are decoration.

Held-out problems share no content with training problems (GSM8K-style generalization, not
recall of the training distribution):
  - templates: 8 of the 4 x 6 (opener, change) pairs of a family are test-only (each opener is
    held out with one adding and one removing change, so every phrase is still seen in
    training, only never in that combination);
  - numbers: a seeded `test_number_fraction` of all numbers tuples are test-only, whatever
    the template; with `test_number_fraction=0` no numbers are held out (the split is then
    disjoint by template only: every held-out problem pairs a seen opener and change in a way no
    training problem does, with numbers that training problems also use).
`overlap(test, train)` counts what is shared; both overlaps are 0 by construction and the
experiments print and record them.

`teacher_error` models SFT data from an imperfect teacher (a weaker model, as when SFT data is
distilled): with that probability a worked solution applies the wrong last operation and
boxes that wrong result. A record's `answer` is always the true one (rewards and accuracy use
it); the SFT loss sees `solution`.

`solution_format` is how a worked solution writes its `+`/`-` step:
  - "equation": " 13 - 4 = 9." (the answer in one go: the model must know the sum);
  - "counting": " 13 - 4 = 12 - 3 = 11 - 2 = 10 - 1 = 9." (one unit moved per equation, a
    scratchpad). Each equation follows from the one before by a local rule (the left number one
    up or down, the right one down), so a model of a few million parameters that has not learned
    the addition table can still reach the sum of numbers it never saw together; what is left to
    learn is the operation a verb asks for, which is the lever GRPO pulls.
"""
import random

NAMES = ("Tom", "Ana", "Li", "Sam", "Maya", "Omar", "Kim", "Ravi")
THINGS = ("apples", "pens", "books", "coins", "stickers", "cards", "marbles", "shells")
# Openers of each family: (phrase, operator of the first step or None, bound of its numbers).
FAMILIES = {
    "two_step": (("{name} has {p} boxes of {q} {thing}", "*", "max_factor"),
                 ("{name} has {p} bags with {q} {thing} in each", "*", "max_factor"),
                 ("{name} has {p} {thing} and buys {q} more", "+", "max_addend"),
                 ("{name} has {p} {thing} and is given {q} more", "+", "max_addend")),
    # One step: the change applied to a starting count (the quickstart's few-minute model).
    "one_step": (("{name} has {p} {thing}", None, "max_start"),
                 ("{name} owns {p} {thing}", None, "max_start"),
                 ("{name} keeps {p} {thing} in a box", None, "max_start"),
                 ("{name} collected {p} {thing}", None, "max_start")),
}
# (phrase, operator of the last step)
CHANGES = (("finds {r} more", "+"), ("wins {r} more", "+"), ("picks up {r} more", "+"),
           ("gives away {r}", "-"), ("loses {r}", "-"), ("sells {r}", "-"))


def template_id(opener: int, change: int) -> str:
  return f"o{opener}c{change}"


def is_test_template(opener: int, change: int) -> bool:
  """8 of 24 pairs; opener i keeps out changes 2i and 2i+3 (mod 6): one "+" and one "-"."""
  return (change - 2 * opener) % len(CHANGES) in (0, 3)


def _apply(op: str, u: int, v: int) -> int:
  return {"+": u + v, "-": u - v, "*": u * v}[op]


def _first(opener_spec, numbers) -> int:
  """The count before the change: p (one step) or p op q (two steps)."""
  _, op, _ = opener_spec
  return numbers[0] if op is None else _apply(op, numbers[0], numbers[1])


def _valid(opener_spec, change: int, numbers, bounds: dict) -> bool:
  *operands, r = numbers
  return (max(operands) <= bounds[opener_spec[2]] and r <= bounds["max_addend"]
          and (CHANGES[change][1] == "+" or r < _first(opener_spec, numbers)))


def number_tuples(family: str, bounds: dict) -> list[tuple[int, ...]]:
  """Every numbers tuple a template of the family can use: operands then the change's r."""
  operands = 1 if FAMILIES[family][0][1] is None else 2
  top = max(bounds[spec[2]] for spec in FAMILIES[family])
  grid = [()]
  for _ in range(operands):
    grid = [g + (v,) for g in grid for v in range(2, top + 1)]
  return [g + (r,) for g in grid for r in range(2, bounds["max_addend"] + 1)]


def test_numbers(family: str, bounds: dict, fraction: float, seed: int) -> frozenset:
  """The numbers tuples reserved for held-out problems (a seeded random `fraction`)."""
  tuples = number_tuples(family, bounds)
  random.Random(f"test-numbers-{seed}").shuffle(tuples)
  return frozenset(tuples[:round(fraction * len(tuples))])


SOLUTION_FORMATS = ("equation", "counting")


def step_text(x: int, op: str, r: int, solution_format: str) -> str:
  """The worked `x op r` step, ending with its result and a period."""
  if solution_format == "equation":
    return f"{x} {op} {r} = {_apply(op, x, r)}."
  if solution_format != "counting":
    raise ValueError(f"solution_format={solution_format!r}; choose one of {SOLUTION_FORMATS}")
  unit = 1 if op == "+" else -1
  terms = [f"{x + unit * moved} {op} {r - moved}" for moved in range(r)]      # x op r, ..., (.) op 1
  return " = ".join(terms + [f"{x + unit * r}."])


def make_problem(family: str, opener: int, change: int, numbers, name: str, thing: str, *,
                 teacher_slip: bool = False, solution_format: str = "equation") -> dict:
  """One record: question, true answer, the (possibly slipped) worked solution, template, numbers."""
  spec = FAMILIES[family][opener]
  *operands, r = numbers
  change_text, op2 = CHANGES[change]
  question = (spec[0].format(name=name, p=operands[0], q=operands[-1], thing=thing) + ". Then " + name + " "
              + change_text.format(r=r) + f". How many {thing} does {name} have now?")
  x = _first(spec, numbers)
  answer = _apply(op2, x, r)
  shown_op = op2
  if teacher_slip:
    flipped = "-" if op2 == "+" else "+"
    if _apply(flipped, x, r) > 0:
      shown_op = flipped
  shown = _apply(shown_op, x, r)
  lines = [] if spec[1] is None else [f"{operands[0]} {spec[1]} {operands[1]} = {x}."]
  lines += [step_text(x, shown_op, r, solution_format), f"The answer is \\boxed{{{shown}}}."]
  return {"question": question, "answer": str(answer), "solution": " " + "\n".join(lines),
          "teacher_correct": shown == answer, "template": template_id(opener, change),
          "numbers": list(numbers)}


def _draw(rng: random.Random, family: str, templates, allowed_numbers, bounds: dict, teacher_error: float,
          solution_format: str):
  while True:
    opener, change = rng.choice(templates)
    spec = FAMILIES[family][opener]
    operands = 1 if spec[1] is None else 2
    numbers = tuple(rng.randint(2, bounds[spec[2]]) for _ in range(operands)) + (rng.randint(2, bounds["max_addend"]),)
    if numbers in allowed_numbers and _valid(spec, change, numbers, bounds):
      slip = bool(teacher_error) and rng.random() < teacher_error
      return make_problem(family, opener, change, numbers, rng.choice(NAMES), rng.choice(THINGS),
                          teacher_slip=slip, solution_format=solution_format)


def generate(num_train: int, num_test: int, *, seed: int = 0, teacher_error: float = 0.0,
             family: str = "two_step", max_factor: int = 5, max_addend: int = 9, max_start: int = 20,
             test_number_fraction: float = 0.25, solution_format: str = "equation"):
  """(train, test): train records (with teacher slips) from the training templates and numbers;
  `num_test` held-out problems, each a distinct (template, numbers), with clean solutions.

  Bounds: multiplied numbers <= max_factor, added/removed numbers <= max_addend, a one-step
  problem's starting count <= max_start (all from 2)."""
  if family not in FAMILIES:
    raise ValueError(f"family={family!r}; choose one of {sorted(FAMILIES)}")
  if solution_format not in SOLUTION_FORMATS:
    raise ValueError(f"solution_format={solution_format!r}; choose one of {SOLUTION_FORMATS}")
  bounds = dict(max_factor=max_factor, max_addend=max_addend, max_start=max_start)
  rng = random.Random(seed)
  pairs = [(o, c) for o in range(len(FAMILIES[family])) for c in range(len(CHANGES))]
  test_templates = [t for t in pairs if is_test_template(*t)]
  train_templates = [t for t in pairs if not is_test_template(*t)]
  every_tuple = frozenset(number_tuples(family, bounds))
  if test_number_fraction > 0:
    held_numbers = test_numbers(family, bounds, test_number_fraction, seed)
    train_numbers = every_tuple - held_numbers
  else:                                    # held out by template only: numbers are shared
    held_numbers = train_numbers = every_tuple
  available = sum(_valid(FAMILIES[family][o], c, n, bounds) for o, c in test_templates for n in held_numbers)
  if num_test > available:
    raise ValueError(f"num_test={num_test}: only {available} distinct held-out problems exist")
  test, seen = [], set()
  while len(test) < num_test:
    record = _draw(rng, family, test_templates, held_numbers, bounds, 0.0, solution_format)
    key = (record["template"], tuple(record["numbers"]))
    if key not in seen:
      seen.add(key)
      test.append(record)
  train = [_draw(rng, family, train_templates, train_numbers, bounds, teacher_error, solution_format)
           for _ in range(num_train)]
  return train, test


def overlap(test, train) -> dict:
  """How many held-out problems share content with a training problem, by what they share."""
  keys = lambda r: (r["template"], tuple(r["numbers"]))
  train_keys = {keys(r) for r in train}
  train_templates = {r["template"] for r in train}
  train_numbers = {tuple(r["numbers"]) for r in train}
  train_questions = {r["question"] for r in train}
  return {"test_problems": len(test),
          "same_template_and_numbers": sum(keys(r) in train_keys for r in test),
          "same_template": sum(r["template"] in train_templates for r in test),
          "same_numbers": sum(tuple(r["numbers"]) in train_numbers for r in test),
          "same_question_text": sum(r["question"] in train_questions for r in test),
          "distinct_train_problems": len(train_keys),
          "distinct_test_problems": len({keys(r) for r in test})}
