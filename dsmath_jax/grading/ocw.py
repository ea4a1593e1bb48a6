"""OCW Courses answers graded as Minerva (Lewkowycz et al. 2022, App. D) and DeepSeek-Math grade them.

DeepSeek-Math's `evaluation/eval/ocwcourses_eval_utils.py` (Minerva's rules) sorts each gold
answer into one of three kinds:
- numeric (`float(gold)` parses): the prediction loses its units ("eV", "kg m/s", `\\mathrm{~g}`,
  "years", ...) and is read as a number, `4.5 \\times 10^{33}` and `4.5e33` alike; equal by
  `numeric_equality`: |a - b| < 1% of their mean near zero, else `np.isclose` (rtol 1e-5);
- equation (`=` in gold): both parsed to sympy equations and compared;
- expression: both normalized by Minerva's `normalize_tex` and compared as strings.
DeepSeek-Math's `is_tex_equiv` returns right after the string test (its sympy branch is dead
code); `paper_compat=True` keeps that. The strict default adds what the issue asks for:
symbolic equivalence of expressions and equations by our math rules, and gold answers written
as Python arithmetic (`-1./3`, `np.arcsin(10/13)`) read as numbers.
"""
import math
import re
from typing import Callable

from dsmath_jax.grading.normalize import normalize, parse_number

# normalize_numeric's unit list, in its order (longer spellings before their prefixes).
_UNITS = ("eV", " \\mathrm{~kg} \\cdot \\mathrm{m} / \\mathrm{s}", " kg m/s", "kg*m/s", "kg", "m/s", "m / s",
          "m s^{-1}", "\\text{ m/s}", " \\mathrm{m/s}", " \\text{ m/s}", "g/mole", "g/mol", "\\mathrm{~g}",
          "\\mathrm{~g} / \\mathrm{mol}", "W", "erg/s", "years", "year", "cm")
# Minerva's normalize_tex tables (Lewkowycz et al. 2022, appendix D), character for character.
_SUBSTITUTIONS = (("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), (r"\ ", ""), (" ", ""), ("mbox", "text"),
                  (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"))
_REMOVED = ("square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units", "\\ldots", "sue",
            "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters", "meals",
            "edges", "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}",
            "\\text{}^2", "\\text{}^3", "\\text{\n}", "\\text{}", r"\mathrm{th}", r"^\circ", r"^{\circ}", r"\;",
            r",\!", "{,}", '"', "\\dots")
_UNIT = r"(?:\\(?:text|mathrm|mbox|rm)\s*\{[^{}]*\}|~?[a-zA-Zμ]+)(?:\^\{?-?\d+\}?)?"
_TRAILING_UNIT = re.compile(rf"\s*(?:(?:/|\\cdot|\*)?\s*{_UNIT}|/|\\cdot|\*)\s*$")
_ARITHMETIC = re.compile(r"[\d.eE+\-*/() ]+")
_NUMPY_CALL = re.compile(r"np\.(arcsin|arccos|arctan|sin|cos|tan|exp|log|sqrt)\(([\d.eE+\-*/() ]+)\)")


def normalize_tex(final_answer: str) -> str:
  """Minerva's normalize_tex (appendix D): the string an expression answer is compared as."""
  final_answer = final_answer.split("=")[-1]
  for before, after in _SUBSTITUTIONS:
    final_answer = final_answer.replace(before, after)
  for expression in _REMOVED:
    final_answer = final_answer.replace(expression, "")
  final_answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", final_answer)
  final_answer = re.sub(r"(\\text\{)(.*?)(\})", "\\2", final_answer)
  final_answer = re.sub(r"(\\textbf\{)(.*?)(\})", "\\2", final_answer)
  final_answer = re.sub(r"(\\overline\{)(.*?)(\})", "\\2", final_answer)
  final_answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", final_answer)
  final_answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", final_answer)
  final_answer = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", final_answer)
  final_answer = final_answer.replace("$", "")
  if final_answer.replace(",", "").isdigit():
    final_answer = final_answer.replace(",", "")
  return final_answer


def _arithmetic(text: str) -> float | None:
  """A Python arithmetic literal (`-1./3`, `4.5e33`, `np.arcsin(10/13)`) as a float, safely."""
  text = _NUMPY_CALL.sub(lambda m: f"math.{m.group(1).replace('arc', 'a')}({m.group(2)})", text.strip())
  if not _ARITHMETIC.fullmatch(re.sub(r"math\.\w+", "", text)) or not text:
    return None
  try:
    value = eval(text, {"__builtins__": {}, "math": math})  # digits, operators and math.* only
    return float(value)
  except Exception:  # noqa: BLE001 -- SyntaxError, ZeroDivisionError, OverflowError
    return None


def prediction_number(text: str, symbolic_value: Callable[[str], float | None] | None) -> float | None:
  """A predicted quantity without its units, as a float (Minerva's normalize_numeric, extended)."""
  s = text
  for unit in _UNITS:
    s = s.replace(unit, "").strip()
  for maybe_unit in ("m", "s", "cm"):
    s = s.replace("\\mathrm{" + maybe_unit + "}", "").replace("\\mathrm{~" + maybe_unit + "}", "").strip()
  s = s.strip("$").strip()
  s = re.sub(r"^(?:\\approx|\\sim|~|≈)\s*", "", s)
  while (shorter := _TRAILING_UNIT.sub("", s)) != s and shorter:   # "erg / s", "\\mathrm{~kg} \\cdot \\mathrm{m}"
    s = shorter
  s = re.sub(r"\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*([-+]?\d+)\s*\}?", r"e\1", s)
  s = re.sub(r"^10\s*\^\s*\{?\s*([-+]?\d+)\s*\}?$", r"1e\1", s)
  s = s.replace("{,}", "").replace("\\,", "").replace("\\!", "").strip()
  if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
    s = s.replace(",", "")
  value = _arithmetic(s)
  if value is None:
    value = parse_number(normalize(s))
  if value is None and symbolic_value is not None:
    value = symbolic_value(normalize(s))
  return value


def numeric_equality(n1: float, n2: float, threshold: float = 0.01, paper_compat: bool = False) -> bool:
  """Minerva's numeric_equality: 1% of the mean near zero, else np.isclose(n1, n2). Its mean is
  signed, so two equal negative numbers near zero are unequal; strict mode takes |mean|."""
  def isclose(a, b):  # np.isclose(a, b): |a - b| <= 1e-8 + 1e-5 * |b|
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)
  if isclose(n1, 0) or isclose(n2, 0) or isclose(n1 - n2, 0):
    mean = (n1 + n2) / 2
    return abs(n1 - n2) < threshold * (mean if paper_compat else abs(mean)) or (not paper_compat and n1 == n2)
  return isclose(n1, n2)


def gold_kind(gold: str, paper_compat: bool = False) -> tuple[str, float | None]:
  """('numeric', value) | ('equation', None) | ('expression', None), as Minerva sorts them."""
  try:
    return "numeric", float(gold)
  except ValueError:
    pass
  if not paper_compat and (value := _arithmetic(gold)) is not None:
    return "numeric", value
  return ("equation" if "=" in gold else "expression"), None


def compare(prediction: str | None, gold: str, math_compare: Callable[[str, str], tuple[bool, str]],
            symbolic_value: Callable[[str], float | None] | None, paper_compat: bool = False,
            equations_equal: Callable[[str, str], bool] | None = None) -> tuple[bool, str]:
  """(equal, rule) of an OCW answer. `math_compare` is the general rule set (strict mode),
  `symbolic_value` reads a LaTeX number through sympy, `equations_equal` is paper mode's sympy
  equation test; either may raise to defer the pair to a worker."""
  if not prediction or not prediction.strip():
    return False, "no answer"
  kind, value = gold_kind(gold.strip(), paper_compat)
  if kind == "numeric":
    predicted = prediction_number(prediction, symbolic_value)
    if predicted is None or not math.isfinite(predicted):
      return False, "ocw numeric"
    return numeric_equality(predicted, value, paper_compat=paper_compat), "ocw numeric"
  if kind == "equation":
    if paper_compat:
      return bool(equations_equal and equations_equal(prediction, gold)), "ocw equation"
    return math_compare(prediction, gold)[0], "ocw equation"
  if normalize_tex(prediction) == normalize_tex(gold):
    return True, "ocw string"
  if paper_compat:
    return False, "ocw string"
  right = lambda s: s.split("=")[-1] if s.count("=") == 1 else s  # noqa: E731  ("v = 3x": the value)
  return math_compare(right(prediction), right(gold))[0], "ocw symbolic"
