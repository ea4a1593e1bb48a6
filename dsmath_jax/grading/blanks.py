"""Fill-in-the-blank answers with several blanks (Gaokao-MathCloze, paper Table 2).

The gold answer lists its blanks separated by ";" ("$5$;$10$"). A model writes them as several
\\boxed{} (one per blank), or in one box or one answer line separated by ";", ",", "和", "and".
Blanks are compared in order, each by the math rules, as DeepSeek-Math's
`eval_agieval_gaokao_math_cloze` does (it splits on ";" and top-level "," and keeps the last
n parts). A one-blank answer is never split, so "(0,1)" stays an interval.
"""
import re

from dsmath_jax.grading import answer as answer_lib

_WORD_SEPARATORS = re.compile(r"\s*(?:\\text\{\s*(?:and|和)\s*\}|和|与|及|\band\b)\s*")


def gold_blanks(gold: str) -> tuple[str, ...]:
  """The blanks of a gold answer: "$5$;$10$" -> ("5", "10")."""
  return tuple(part.strip().strip("$").strip() for part in gold.split(";") if part.strip())


def split_top_level(text: str, separators: str = ";；，,") -> list[str]:
  """Parts of `text` between `separators` outside (), [], {}; words like "和"/"and" separate too."""
  text = _WORD_SEPARATORS.sub(";", text)
  parts, depth, start = [], 0, 0
  for i, char in enumerate(text):
    if char in "([{":
      depth += 1
    elif char in ")]}":
      depth -= 1
    elif depth <= 0 and char in separators and not _thousands_comma(text, i):
      parts.append(text[start:i])
      start = i + 1
  parts.append(text[start:])
  return [p.strip().strip("$").strip() for p in parts if p.strip().strip("$").strip()]


def _thousands_comma(text: str, i: int) -> bool:
  return text[i] == "," and bool(re.match(r"\d{3}(?!\d)", text[i + 1:])) and i > 0 and text[i - 1].isdigit()


def extract_blanks(text: str, blanks: int) -> tuple[str, ...] | None:
  """`blanks` answers from a model output, in order; None when it does not give that many."""
  if text is None:
    return None
  if blanks <= 1:
    single = answer_lib.extract_answer(text)
    return None if single is None else (single,)
  boxed = answer_lib.boxed_answers(text)
  if len(boxed) >= blanks:
    tail = [b.strip() for b in boxed[-blanks:]]
    if len(set(tail)) == blanks or len(boxed) == blanks:
      return tuple(tail)
  span = boxed[-1] if boxed else answer_lib.marker_answer(text)
  if span is None:
    return None
  parts = split_top_level(span, ";；")   # semicolons first: a blank may be a phrase with commas
  if len(parts) != blanks:
    parts = split_top_level(span)
  return tuple(parts[-blanks:]) if len(parts) >= blanks else None
