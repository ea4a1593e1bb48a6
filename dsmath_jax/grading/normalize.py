"""String normalization of final answers before comparison (DeepSeek-Math / ToRA lineage).

The MATH convention (Hendrycks et al. `math_equivalence`, kept by DeepSeek-Math's
`strip_string` and ToRA's `math_normalization`): drop what does not change the value
(`\\left`/`\\right`, `\\!`, spaces, `$`, degrees, a trailing unit in `\\text{}`, a trailing
"."), unify spellings (`\\dfrac` -> `\\frac`, `\\frac12` -> `\\frac{1}{2}`, `3/4` -> `\\frac{3}{4}`,
`.5` -> `0.5`, `5.00` -> `5`), so that most equal answers become equal strings and the rest
reach the numeric and symbolic comparisons of `grader.py` in a form sympy can parse.
Our own code; the rules follow those two projects.
"""
import math
import re

_SPACES = re.compile(r"(?<!\\)\\[,;:! ]|~|\\quad|\\qquad")  # not the `\\` of a matrix row
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")
_STYLE = re.compile(r"\\(?:displaystyle|textstyle|mathbf|mathrm|boldsymbol|bf|rm|mathit)(?![a-zA-Z])")
_TEXT = re.compile(r"\\(?:text|textbf|textit|mbox|mathrm|operatorname)\s*\{([^{}]*)\}")
_TRAILING_TEXT = re.compile(r"\\(?:text|textbf|mbox|mathrm)\s*\{[^{}]*\}(?:\^\{?[23]\}?)?$")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°|\\degree|\\circ")
# Each word must follow whitespace: `(?:[a-z]+\s*)+` would backtrack exponentially on "5 ab ab ab ... !".
_UNIT_WORDS = re.compile(r"^(-?[\d.,]+%?)(?:\s+[a-zA-Z]+\.?(?:\^\{?[23]\}?)?)+\s*$")
_TRAILING_ZEROS = re.compile(r"(\d)\.0+(?![\d])")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_SIMPLE_FRAC = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_SLASH_FRAC = re.compile(r"^(-?\d+)/(\d+)$")
_MIXED_NUMBER = re.compile(r"^(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")  # 3\frac{1}{2} = 7/2
_MATH_WORDS = {"and", "or", "to", "sin", "cos", "tan", "pi", "log", "ln", "sqrt", "i"}


def matching_braces(text: str) -> dict[int, int]:
  """{index of each balanced "{": index of its "}"}, in one pass (linear on any input)."""
  matches, stack = {}, []
  for i, char in enumerate(text):
    if char == "{":
      stack.append(i)
    elif char == "}" and stack:
      matches[stack.pop()] = i
  return matches


def _read_group(text: str, i: int, matches: dict[int, int]) -> tuple[str, int] | None:
  """One TeX argument at text[i]: a {...} group (content returned) or a single character."""
  if i >= len(text):
    return None
  if text[i] != "{":
    return text[i], i + 1
  if i not in matches:
    return None
  return text[i + 1:matches[i]], matches[i] + 1


def fix_fracs(text: str) -> str:
  """`\\frac12`, `\\frac1{72}`, `\\frac{a}b` -> `\\frac{1}{2}`, ... (TeX reads one token per arg)."""
  matches = matching_braces(text)
  out, i = [], 0
  while True:
    j = text.find("\\frac", i)
    if j < 0:
      out.append(text[i:])
      return "".join(out)
    out.append(text[i:j + 5])
    k = j + 5
    numerator = _read_group(text, k, matches)
    denominator = numerator and _read_group(text, numerator[1], matches)
    if not denominator or text[k:k + 1].isalpha():  # \fracture, or \frac at the end
      i = k
      continue
    out.append("{%s}{%s}" % (numerator[0], denominator[0]))
    i = denominator[1]


def fix_sqrt(text: str) -> str:
  """`\\sqrt2` / `\\sqrt 12` / `\\sqrt x` -> `\\sqrt{2}`, `\\sqrt{12}`, `\\sqrt{x}` (DeepSeek-Math reads a digit run)."""
  return re.sub(r"\\sqrt\s*(\d+|[a-zA-Z](?![a-zA-Z]))", r"\\sqrt{\1}", text)


def normalize(answer: str | None) -> str:
  """The canonical string of a final answer ('' for None). Idempotent."""
  if answer is None:
    return ""
  s = str(answer).strip().replace("\n", "")
  s = _SPACES.sub(" ", s).replace("{,}", ",")
  s = re.sub(r"\\text\{\s*and\s*\}", ",", s)
  s = re.sub(r"(?<=\d)\s+and\s+(?=-?\d)", ",", s)  # "2 and 3": a list of two answers
  s = s.replace("\\$", "").replace("$", "")
  s = re.sub(r"\\[dtc]frac", r"\\frac", s)
  s = _LEFT_RIGHT.sub("", s).replace("\\{", "{").replace("\\}", "}")
  s = re.sub(r"\\(begin|end)\{(?:b|v|B|V|small)?matrix\}", r"\\\1{pmatrix}", s)
  s = re.sub(r"\\begin\{array\}\{[^{}]*\}", r"\\begin{pmatrix}", s).replace("\\end{array}", "\\end{pmatrix}")
  s = s.strip().rstrip(".").strip()
  if (m := re.fullmatch(r"\\text\{(.*)\}", s)):
    s = m.group(1)
  unitless = _TRAILING_TEXT.sub("", s).strip()
  if unitless and unitless != s:  # "10\text{ cm}^2" -> "10"; a bare \text{...} answer stays
    s = unitless
  s = _TEXT.sub(r"\1", s)
  s = _STYLE.sub("", s)
  s = _DEGREES.sub("", s)
  s = s.replace("\\%", "%").replace("\\varnothing", "\\emptyset")
  s = re.sub(r"^[a-zA-Z]\s*\\in\s*", "", s)
  s = s.replace("infinity", "\\infty")
  if "\\infty" not in s:
    s = re.sub(r"(?<![a-zA-Z\\])inf(?![a-zA-Z])", "\\\\infty", s)
  if "j" in s and "i" not in s:
    s = s.replace("j", "i")  # the imaginary unit, as DeepSeek-Math does
  if (m := _UNIT_WORDS.match(s.strip())) and not set(s.lower().split()[1:]) & _MATH_WORDS:
    s = m.group(1)  # "18 dollars" -> "18"
  s = s.replace(" .", " 0.").replace("{.", "{0.")
  s = fix_sqrt(s)
  s = re.sub(r"([_^])\s*([A-Za-z0-9])\s+(?=[A-Za-z0-9\\])", r"\1{\2}", s)  # \log_2 8: keep the 2 alone
  s = s.replace(" ", "")
  s = _TRAILING_ZEROS.sub(r"\1", s)
  if s.startswith("."):
    s = "0" + s
  if s.startswith("-."):
    s = "-0" + s[1:]
  s = fix_fracs(s)
  s = re.sub(r"^(\d+)_\{?(\d+)\}?$", r"\1_{\2}", s)  # a number in base b: 4210_5 -> 4210_{5}
  if (m := _SLASH_FRAC.match(s)):
    s = "\\frac{%s}{%s}" % m.groups()
  while s.endswith(("\\\\", ",", ".")):  # a loop: the regex `(\\\\|,|\.)+$` is quadratic on ",,,,x"
    s = s[:-2] if s.endswith("\\\\") else s[:-1]
  return s


def parse_number(text: str) -> float | None:
  """A float for plain numbers, `1,000`, `50%` (-> 0.5), `\\frac{3}{4}`, `-3/4`, `3\\frac{1}{2}`; else None."""
  s = text.strip()
  if _THOUSANDS.match(s):
    s = s.replace(",", "")
  percent = s.endswith("%")
  if percent:
    s = s[:-1].rstrip("\\")
  value = None
  if (m := _SIMPLE_FRAC.match(s)):
    if int(m.group(3)) != 0:
      value = int(m.group(2)) / int(m.group(3)) * (-1 if m.group(1) else 1)
  elif (m := _SLASH_FRAC.match(s)):
    if int(m.group(2)) != 0:
      value = int(m.group(1)) / int(m.group(2))
  elif (m := _MIXED_NUMBER.match(s)):
    if int(m.group(4)) != 0:
      value = (int(m.group(2)) + int(m.group(3)) / int(m.group(4))) * (-1 if m.group(1) else 1)
  elif re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", s):
    value = float(s)
  if value is None or not math.isfinite(value):
    return None
  return value / 100 if percent else value
