"""The equality rules of the paper-faithful grader (§2.2.1, §4.1), pure and without time limits.

DeepSeekMath scores MATH/GSM8K with the rule-based checker of its evaluation code
(`evaluation/eval/eval_utils.py: math_equal`, shared with ToRA's `grader.py`); the same
check is the GRPO reward for outcome supervision (§4.1). The rules, in order:
  1. equal after `normalize.normalize` (or equal once an outer bracket pair is dropped);
  2. both numbers: equal integers, or |pred - gold| <= 1e-3 (relative 1e-6 for large numbers);
     the percent variants gold/100 and 100*gold only when either answer carries a percent sign
     (`paper_compat=True`: DeepSeek-Math's own rule, |pred - x| <= 1e-3 for x in
     (gold, gold/100, 100*gold) always, so `13000` passes for `130`);
  3. sets `{...}` / bare lists `a, b` unordered, tuples / intervals `(a, b]` and matrices
     element-wise (a vector may be written as a tuple), unions `A \\cup B` piece-wise, each
     element by this same function;
  4. equations: `a = b` vs `c = d` as a - b = +-(c - d); `x = 5` vs `5` by the right side;
     then kinds sympy could only call unequal (a word, a structure vs a non-structure) stop here;
  5. symbolic: both parsed to sympy (latex2sympy2_extended, or sympy's parser for plain
     `x^2+2x+1`), equal when simplify(a - b) == 0 or their numeric values agree within 1e-3.
Rule 5 can take unbounded time; grader.py runs it in worker processes under a timeout.
Our own code; the rules follow those two projects.
"""
import functools
import math
import re
from typing import Callable

from dsmath_jax.grading.normalize import normalize, parse_number

ABS_TOL = 1e-3  # DeepSeek-Math eval_utils: math.isclose(..., abs_tol=1e-3)
REL_TOL = 1e-6  # strict rules: large numbers written two ways (1.2e9 vs 1200000000.0) still match
MAX_ANSWER_CHARS = 1000  # MATH-500's longest gold answer has 53 characters


class NeedsSympy(Exception):
  """Raised by the in-process fast path when only the symbolic rule could decide."""


def _split_top_level(text: str, separator: str) -> list[str]:
  """Splits on `separator` outside any (), [], {} nesting."""
  parts, depth, start, i = [], 0, 0, 0
  while i < len(text):
    char = text[i]
    if char in "([{":
      depth += 1
    elif char in ")]}":
      depth -= 1
    elif depth == 0 and text.startswith(separator, i):
      parts.append(text[start:i])
      start = i + len(separator)
      i = start
      continue
    i += 1
  parts.append(text[start:])
  return parts


def _encloses(text: str, open_char: str, close_char: str) -> bool:
  """True when text[0] and text[-1] are one matching pair around the whole string."""
  if len(text) < 2 or text[0] != open_char or text[-1] != close_char:
    return False
  depth = 0
  for i, char in enumerate(text):
    depth += char in "([{"
    depth -= char in ")]}"
    if depth == 0 and i < len(text) - 1:
      return False
  return True


def _bracketed(text: str) -> tuple[str, str, str] | None:
  """(open, inner, close) when one bracket pair (any of ([{ with )]}) encloses the text."""
  if len(text) >= 2 and text[0] in "([{" and text[-1] in ")]}" and _encloses(
      text, text[0], text[-1]):
    return text[0], text[1:-1], text[-1]
  return None


def _unordered_match(preds: list[str], golds: list[str], equal: Callable) -> bool:
  if len(preds) != len(golds):
    return False
  remaining = list(golds)
  for pred in preds:
    hit = next((i for i, gold in enumerate(remaining) if equal(pred, gold)), None)
    if hit is None:
      return False
    remaining.pop(hit)
  return True


def _matrix_cells(text: str) -> list[list[str]] | None:
  m = re.fullmatch(r"\\begin\{pmatrix\}(.*)\\end\{pmatrix\}", text)
  if not m:
    return None
  rows = [row for row in m.group(1).split("\\\\") if row.strip()]
  return [row.split("&") for row in rows]


def _shape(text: str) -> str:
  """'number' | 'structure' (tuple, set, interval, matrix) | 'word' (letters only) | 'expression'."""
  if parse_number(text) is not None:
    return "number"
  if _matrix_cells(text) is not None or "\\cup" in text:
    return "structure"
  bracketed = _bracketed(text)
  if len(_split_top_level(bracketed[1] if bracketed else text, ",")) > 1:
    return "structure"
  if re.fullmatch(r"[a-zA-Z]{3,}", text):
    return "word"
  return "expression"


_INTEGER = re.compile(r"-?\d+")


def numbers_equal(pred_text: str, gold_text: str, pred: float, gold: float, paper_compat: bool = False) -> bool:
  """Rule 2 on two normalized numbers and their values (parse_number: `50%` is 0.5)."""
  if paper_compat:
    return any(math.isclose(pred, x, rel_tol=0.0, abs_tol=ABS_TOL) for x in (gold, gold / 100, gold * 100))
  if _INTEGER.fullmatch(pred_text) and _INTEGER.fullmatch(gold_text):
    return int(pred_text) == int(gold_text)
  candidates = (gold, gold / 100, gold * 100) if "%" in pred_text + gold_text else (gold,)
  return any(math.isclose(pred, x, rel_tol=REL_TOL, abs_tol=ABS_TOL) for x in candidates)


def compare(prediction: str | None, gold: str, symbolic: Callable[[str, str], bool],
            paper_compat: bool = False) -> tuple[bool, str]:
  """(equal, deciding rule) for two raw answers; `symbolic(a, b)` implements rule 5.

  paper_compat: DeepSeek-Math's number rule (percent variants always); strict otherwise."""
  if prediction is None:
    return False, "no answer"
  if len(prediction) > max(MAX_ANSWER_CHARS, 10 * len(gold)):
    return False, "too long"  # a runaway box or answer line, not an answer; keeps the rules fast
  pred, ref = normalize(prediction), normalize(gold)
  if not pred:
    return False, "empty answer"
  if pred == ref:
    return True, "string"
  unwrapped = [(_bracketed(s) or (None, s, None))[1] if "," not in s else s for s in (pred, ref)]
  if unwrapped[0].lower() == unwrapped[1].lower() and unwrapped[0]:
    return True, "string"

  def equal(a, b):
    return compare(a, b, symbolic, paper_compat)[0]

  pred_number, ref_number = parse_number(pred), parse_number(ref)
  if pred_number is not None and ref_number is not None:
    return numbers_equal(pred, ref, pred_number, ref_number, paper_compat), "numeric"

  # Unions of intervals / sets: piece-wise, in any order.
  if "\\cup" in pred and "\\cup" in ref:
    return _unordered_match(_split_top_level(pred, "\\cup"), _split_top_level(ref, "\\cup"), equal), "union"
  # Matrices (pmatrix / bmatrix / array were unified by normalize).
  pred_cells, ref_cells = _matrix_cells(pred), _matrix_cells(ref)
  if pred_cells is not None and ref_cells is not None:
    same = (len(pred_cells) == len(ref_cells) and all(
        len(p) == len(r) and all(equal(a, b) for a, b in zip(p, r)) for p, r in zip(pred_cells, ref_cells)))
    return same, "matrix"
  if (pred_cells is None) != (ref_cells is None):  # a column/row vector written as a tuple
    cells, other = (pred_cells, ref) if pred_cells is not None else (ref_cells, pred)
    other_br = _bracketed(other)
    if other_br and other_br[0] + other_br[2] in ("()", "[]") and (
        len(cells) == 1 or all(len(row) == 1 for row in cells)):
      flat = [cell for row in cells for cell in row]
      items = _split_top_level(other_br[1], ",")
      if len(items) == len(flat) > 1:
        pairs = zip(flat, items) if pred_cells is not None else zip(items, flat)
        return all(equal(a, b) for a, b in pairs), "matrix"
  # Sets, tuples, intervals and bare comma lists.
  pred_br, ref_br = _bracketed(pred), _bracketed(ref)
  pred_items = _split_top_level(pred_br[1] if pred_br else pred, ",")
  ref_items = _split_top_level(ref_br[1] if ref_br else ref, ",")
  if len(pred_items) > 1 or len(ref_items) > 1:
    pred_kind = pred_br and pred_br[0] + pred_br[2]
    ref_kind = ref_br and ref_br[0] + ref_br[2]
    if pred_kind == ref_kind and pred_kind not in (None, "{}"):  # ordered: tuple / interval
      same = len(pred_items) == len(ref_items) and all(equal(a, b) for a, b in zip(pred_items, ref_items))
      return same, "tuple"
    if {pred_kind, ref_kind} <= {None, "{}"}:  # unordered: set or "separated by commas"
      return _unordered_match(pred_items, ref_items, equal), "set"
  # Equations and "x = 5" answers.
  if pred.count("=") == 1 and ref.count("=") == 1:
    (pl, pr), (rl, rr) = pred.split("="), ref.split("=")
    if len(pl) <= 2 and len(rl) <= 2 and pl == rl:  # k=5 vs k=5.0
      return equal(pr, rr), "equation"
    diff_pred, diff_ref = f"{pl}-({pr})", f"{rl}-({rr})"
    return symbolic(diff_pred, diff_ref) or symbolic(f"-({diff_pred})", diff_ref), "equation"
  if pred.count("=") == 1 and "=" not in ref and len(pred.split("=")[0]) <= 2:
    return equal(pred.split("=")[1], ref), "equation"
  if ref.count("=") == 1 and "=" not in pred and len(ref.split("=")[0]) <= 2:
    return equal(pred, ref.split("=")[1]), "equation"
  # Kinds that sympy could only call unequal: skip the parse (it is the slow part).
  shapes = {_shape(pred), _shape(ref)}
  if "word" in shapes:
    return False, "string"  # words are compared as strings ("Evelyn" vs "Levyne": not a product)
  if "structure" in shapes:
    return False, "kind"
  return symbolic(pred, ref), "symbolic"


# Digits, one-letter variables, + - * / ^ ( ) ! and spaces: "x^2+2x+1", "(a+5)(b+2)", "10!".
_PLAIN = re.compile(r"(?:[0-9.+\-*/^()! ]|[a-zA-Z](?![a-zA-Z]))+")


@functools.lru_cache(maxsize=4096)
def _parse_sympy(text: str):
  """sympy object of a normalized answer: LaTeX first, then plain sympy syntax; None if neither."""
  from latex2sympy2_extended import latex2sympy
  from sympy.parsing import sympy_parser
  text = text.replace("%", "\\%") if text.endswith("%") and not text.endswith("\\%") else text
  import sympy
  transformations = sympy_parser.standard_transformations + (
      sympy_parser.implicit_multiplication_application, sympy_parser.convert_xor)

  def python_syntax():  # `i` is the imaginary unit in MATH answers, `e` Euler's number (as in LaTeX)
    return sympy_parser.parse_expr(text, transformations=transformations, local_dict={"e": sympy.E},
                                   evaluate=True).subs(sympy.Symbol("i"), sympy.I)

  if _PLAIN.fullmatch(text):  # reads the same in LaTeX and Python; 20-100x faster than the antlr parser
    try:
      return python_syntax()
    except Exception:
      pass
  try:
    return latex2sympy(text).subs(sympy.Symbol("i"), sympy.I)
  except Exception:  # antlr / conversion errors of every kind
    pass
  try:
    return python_syntax()
  except Exception:
    return None


def symbolic_equal(a: str, b: str) -> bool:
  """Rule 5: sympy equality, simplify(a - b) == 0, or numeric values within 1e-3. Unbounded time."""
  import sympy
  left, right = _parse_sympy(a), _parse_sympy(b)
  if left is None or right is None:
    return False
  try:
    if left == right:
      return True
  except Exception:
    pass
  if isinstance(left, sympy.MatrixBase) or isinstance(right, sympy.MatrixBase):
    try:
      return left.shape == right.shape and all(
          abs(complex(sympy.N(x - y))) <= ABS_TOL for x, y in zip(left, right))
    except Exception:
      return False
  try:
    difference = left - right
    symbols = sorted(difference.free_symbols, key=str)
  except Exception:
    return False
  if not symbols:  # constants: simplify(d) == 0 implies |N(d)| <= 1e-3, so N alone decides
    try:
      return difference == 0 or abs(complex(sympy.N(difference))) <= ABS_TOL
    except Exception:
      return _numeric_close(left, right)
  if _differ_somewhere(left, right, symbols):  # then simplify(d) cannot be 0: skip it
    return False
  try:
    if sympy.simplify(difference) == 0:
      return True
  except Exception:
    pass
  return _numeric_close(left, right)


def _numeric_close(left, right) -> bool:
  import sympy
  try:
    return abs(complex(sympy.N(left)) - complex(sympy.N(right))) <= ABS_TOL
  except Exception:
    return False


def _differ_somewhere(minuend, subtrahend, symbols) -> bool:
  """True when a(x) != b(x) clearly at one of two fixed irrational points (a cheap
  certificate that simplify(a - b) != 0); False when unsure (poles, errors)."""
  import sympy
  for point in (0.5772156649, 1.3247179572):
    values = {s: point + k / 7 for k, s in enumerate(symbols)}
    try:
      left, right = (complex(sympy.N(side.subs(values))) for side in (minuend, subtrahend))
    except Exception:
      continue
    scale = max(1.0, abs(left), abs(right))
    if math.isfinite(scale) and abs(left - right) > 1e-6 * scale:
      return True
  return False


def _needs_sympy(a: str, b: str) -> bool:
  raise NeedsSympy()


def math_equal(prediction: str | None, gold: str, paper_compat: bool = False) -> bool:
  """The full check in this process, with no timeout (workers and trusted inputs only)."""
  return compare(prediction, gold, symbolic_equal, paper_compat)[0]


def quick_compare(prediction: str | None, gold: str, paper_compat: bool = False) -> tuple[bool, str] | None:
  """Rules 1-4 without sympy: (equal, rule), or None when only rule 5 can decide."""
  try:
    return compare(prediction, gold, _needs_sympy, paper_compat)
  except NeedsSympy:
    return None


def math_verify_equal(prediction: str | None, gold: str, timeout_s: float = 5.0) -> bool:
  """math-verify's verdict on the same two extracted answers (each given to it as \\boxed{})."""
  import math_verify
  if prediction is None:
    return False
  seconds = max(1, int(timeout_s / 3))  # parse, parse, verify: together within timeout_s
  gold_parsed = math_verify.parse("\\boxed{%s}" % gold, parsing_timeout=seconds)
  pred_parsed = math_verify.parse("\\boxed{%s}" % prediction, parsing_timeout=seconds)
  return bool(math_verify.verify(gold_parsed, pred_parsed, timeout_seconds=seconds))
