"""One entry for every kind of answer a benchmark asks for: extract it, then decide it.

Kinds (the `answer` of a benchmark definition):
- "math": a number or a LaTeX expression (GSM8K, MATH, CMATH, MGSM-zh): answer.extract_answer,
  equivalence.compare;
- "choice": option letters (SAT, MMLU-STEM, Gaokao-MathQA): choice.extract_choice, same letters;
- "cloze": several blanks in order (Gaokao-MathCloze): blanks.extract_blanks, each blank by
  the math rules;
- "ocw": physical quantities and formulas (OCW Courses): answer.extract_answer, ocw.compare.
`decide(..., quick=True)` raises equivalence.NeedsSympy where only sympy could decide, so the
caller can send that pair to a worker with a time limit (grader.py).
"""
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading import blanks, choice, equivalence, ocw

KINDS = ("math", "choice", "cloze", "ocw")


def check_kind(kind: str) -> str:
  if kind not in KINDS:
    raise ValueError(f"answer kind must be one of {KINDS}, got {kind!r}")
  return kind


def extract(text: str | None, kind: str = "math", *, options: dict[str, str] | None = None, gold=None,
            language: str = "en", paper_compat: bool = False):
  """The final answer of a model output for this kind: a string (math, ocw, choice letters),
  a tuple of blanks (cloze, as many as `gold` has), or None."""
  check_kind(kind)
  if text is None:
    return None
  if kind == "choice":
    if paper_compat:
      return choice.paper_choice(text, language)
    return choice.extract_choice(text, options or {letter: "" for letter in "ABCD"})
  if kind == "cloze":
    return blanks.extract_blanks(text, len(gold) if gold else 1)
  return answer_lib.extract_answer(text)


def _symbolic_value(text: str) -> float | None:
  """A LaTeX constant (`\\frac{\\sqrt{3}}{2}`) as a float through sympy; None if not a number."""
  import sympy
  parsed = equivalence._parse_sympy(text)  # noqa: SLF001 -- the one LaTeX parser of the package
  try:
    return float(sympy.N(parsed)) if parsed is not None and parsed.is_number else None
  except Exception:  # noqa: BLE001
    return None


def _equations_equal(a: str, b: str) -> bool:
  left, right = equivalence._parse_sympy(a), equivalence._parse_sympy(b)  # noqa: SLF001
  return left is not None and left == right


def _defer(*args):
  raise equivalence.NeedsSympy()


def decide(prediction, gold, kind: str = "math", *, paper_compat: bool = False, quick: bool = False) -> tuple[bool, str]:
  """(equal, deciding rule) for an extracted answer and its gold answer of `kind`."""
  symbolic = equivalence._needs_sympy if quick else equivalence.symbolic_equal  # noqa: SLF001
  if prediction is None:
    return False, "no answer"
  if kind == "math":
    return equivalence.compare(prediction, gold, symbolic, paper_compat)
  if kind == "choice":
    return choice.choice_equal(prediction, gold), "choice"
  if kind == "cloze":
    golds = tuple(gold)
    if len(prediction) != len(golds):
      return False, "blanks"
    for predicted, expected in zip(prediction, golds):
      if not equivalence.compare(predicted, expected, symbolic, paper_compat)[0]:
        return False, "blanks"
    return True, "blanks"
  if kind == "ocw":
    math_compare = lambda a, b: equivalence.compare(a, b, symbolic)  # noqa: E731
    return ocw.compare(prediction, gold, math_compare, _defer if quick else _symbolic_value, paper_compat,
                       _defer if quick else _equations_equal)
  raise ValueError(f"answer kind must be one of {KINDS}, got {kind!r}")


def quick_decide(prediction, gold, kind: str = "math", *, paper_compat: bool = False) -> tuple[bool, str] | None:
  """decide() without sympy, or None when only sympy can decide."""
  try:
    return decide(prediction, gold, kind, paper_compat=paper_compat, quick=True)
  except equivalence.NeedsSympy:
    return None
