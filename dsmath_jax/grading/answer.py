"""Final-answer extraction from a model output, as models actually write their answers.

Order: the last `\\boxed{...}` / `\\fbox{...}` (or `\\boxed 5`); else the text after the last
explicit final-answer marker, English or Chinese ("The answer is", "Final answer:", "Answer:",
"**Answer:**", "**Final Answer**" as a heading, PRM800K's "# Answer", "答案是", "所以答案为",
"答案：" ...); else the last GSM8K "#### n"; else the last ```output block of a
tool-integrated run; only then the last number of the text (thousands separators dropped only
where they are one: `1,250` -> `1250`, while `(-6, 0)` ends in `0`, never `-60`).

After a marker the answer is the math span that opens it (`$...$`, `$$...$$`, `\\(...\\)`,
`\\[...\\]`; an escaped dollar `\\$` inside math mode does not close it, and a `$` before a
number with no closing `$` is a currency sign), else the rest of the sentence.

DeepSeek-Math's extractor (`evaluation/data_processing/answer_extraction.py`) takes boxed >
"he answer is" > program output > last number with every comma removed; the markers, the
math-span reading and the comma rule here are what its 95.7% -> 99% gap was made of. Mode
"program" takes only the last program output: the "program accuracy" of tool-integrated runs
(§3.2, Table 5).

The answer is returned raw (not normalized); `normalize.normalize` and the equivalence rules
do the rest, so the sample file shows what the model actually wrote.
"""
import re

from dsmath_jax.grading.normalize import matching_braces

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_HASHES = re.compile(r"####\s*([^\n]*)")
_OUTPUT_BLOCK = re.compile(r"```output\n?(.*?)(?:```|$)", re.S)
# A plain number, or one with thousands separators (groups of exactly three digits, no space).
_NUMBER = re.compile(r"-?(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,]\d)|-?\d*\.?\d+")

# "answer" (or "final answer") as a marker: followed by "is" / ":" / "=" (markdown allowed
# around), or standing alone as a heading ("# Answer", "**Final Answer**") at the end of a line.
_EN_MARKER = re.compile(
    r"(?P<head>#+[ \t]*|\*\*[ \t]*)?\b(?:final\s+answer|answer)\b(?:[ \t]*\([^()\n]{0,20}\))?"
    r"(?P<tail>(?:[ \t]*\*\*)?[ \t]*(?:\bis\b|:|=|：)(?:[ \t]*\*\*)?[ \t]*:?|(?:[ \t]*\*\*)?[ \t]*:?[ \t]*(?=\n))",
    re.I)
_ZH_MARKER = re.compile(r"(?:最终|所以|因此|故|则)?(?:的)?答案(?:应该|应|即)?(?:是|为|：|:)\s*[:：]?")
_MATH_OPEN = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z(])|。|\.\s*$")


def boxed_answers(text: str) -> list[str]:
  """Every complete \\boxed{...}/\\fbox{...} in order (nested braces kept); `\\boxed 5` too."""
  answers = []
  matches = matching_braces(text)
  pattern = re.compile("|".join(re.escape(c) for c in _BOX_COMMANDS) + r"(?![a-zA-Z])")
  for match in pattern.finditer(text):
    i = match.end()
    while i < len(text) and text[i] == " ":
      i += 1
    if i < len(text) and text[i] == "{":
      if i not in matches:  # unbalanced: a truncated generation
        continue
      content, end = text[i + 1:matches[i]], matches[i] + 1
      if text.startswith("\\%", end) or text.startswith("%", end):
        content += "%"  # \boxed{50}\% means 50 percent
      answers.append(content)
    elif i > match.end():  # `\boxed 5`: one token, up to `$`, space or the end of the line
      token = re.match(r"[^\s$]+", text[i:])
      if token:
        answers.append(token.group(0).rstrip("."))
  return answers


def program_output(text: str) -> str | None:
  """Content of the last ```output block (closed or cut off), stripped; None if none."""
  blocks = _OUTPUT_BLOCK.findall(text)
  return blocks[-1].strip() if blocks else None


def _closing(text: str, start: int, closer: str) -> int:
  """Index of the first `closer` at or after `start` not escaped by a backslash; -1 if none."""
  i = start
  while True:
    i = text.find(closer, i)
    if i < 0:
      return -1
    backslashes = len(text[:i]) - len(text[:i].rstrip("\\"))
    if closer.startswith("\\") or backslashes % 2 == 0:
      return i
    i += 1


def math_span(text: str) -> tuple[str, int] | None:
  """(content, end) of the math span that opens `text`, or None (no span, or `$` as currency)."""
  for opener, closer in _MATH_OPEN:
    if text.startswith(opener):
      end = _closing(text, len(opener), closer)
      if end < 0:
        return None
      content = text[len(opener):end]
      if opener == "$" and re.match(r"\d", content) and "\n" in content:
        return None  # "$18 and ... $": a currency sign, not math
      return content.strip(), end + len(closer)
  return None


def _span_after(text: str, start: int) -> str | None:
  """The answer written after a marker that ends at `start`."""
  rest = text[start:]
  stripped = rest.lstrip(" \t*:：")
  if not stripped.strip():
    return None
  if stripped.startswith("\n"):  # a heading ("**Final Answer**\n\n$5$"): the next non-empty line
    stripped = stripped.strip()
  span = math_span(stripped)
  if span is not None:
    content, end = span
    while (more := re.match(r"[ \t]+(?=\$)", stripped[end:])) and (nxt := math_span(stripped[end + more.end():])):
      content, end = f"{content} {nxt[0]}", end + more.end() + nxt[1]   # "$a+$ $b$": one formula in two spans
    tail = stripped[end:].split("\n")[0]
    # "$18$ dollars." / "$5$." : the math; "$x = 5$ and $y = 6$", "$5$；$10$": the whole line
    if not re.match(r"\s*(?:,|，|;|；|、|and\b|和|与|或)\s*\$", tail):
      return content or None
  line = stripped.split("\n")[0]
  cut = _SENTENCE_END.search(line)
  if cut and cut.start() > 0:
    line = line[:cut.start()]
  line = line.strip().strip("*").strip()
  line = line.rstrip(".。").strip()
  if line.startswith("$") and line.endswith("$") and line.count("$") == 2:
    line = line[1:-1].strip()
  return line or None


def marker_line(text: str) -> str | None:
  """The whole rest of the line after the last final-answer marker (no sentence cut): where a
  multiple-choice answer quotes an option's text, which may hold sentences and formulas."""
  ends = _marker_ends(text)
  for end in ends:
    rest = text[end:].lstrip(" \t*:：")
    line = (rest.strip() if rest.startswith("\n") else rest).split("\n")[0].strip().strip("*").strip()
    line = line.rstrip("。").strip()
    if line:
      return line[:-1].strip() if line.endswith(".") else line
  return None


def _marker_ends(text: str) -> list[int]:
  """End offsets of every final-answer marker, last first."""
  candidates = []
  for match in _EN_MARKER.finditer(text):
    tail = match.group("tail")
    if not tail.strip(" \t*") and not match.group("head"):  # "answer" alone, not a heading
      continue
    candidates.append(match.end())
  candidates += [match.end() for match in _ZH_MARKER.finditer(text)]
  return sorted(candidates, reverse=True)


def marker_answer(text: str) -> str | None:
  """The answer after the last explicit final-answer marker (English or Chinese), or None."""
  for end in _marker_ends(text):
    answer = _span_after(text, end)
    if answer is not None:
      return answer
  return None


def last_number(text: str) -> str | None:
  """The last number in the text; `1,250` reads as 1250, a comma with a space or not followed by
  three digits separates two numbers."""
  numbers = _NUMBER.findall(text)
  return numbers[-1].replace(",", "") if numbers else None


def extract_answer(text: str, *, mode: str = "auto") -> str | None:
  """The final answer in a model output, or None when there is none.

  mode "auto": boxed > final-answer marker > "#### n" > last program output > last number;
  "program": the last ```output block only (tool-integrated program accuracy).
  """
  if text is None:
    return None
  if mode == "program":
    return program_output(text) or None
  if mode != "auto":
    raise ValueError(f"extract_answer mode must be 'auto' or 'program', got {mode!r}")
  boxed = boxed_answers(text)
  if boxed:
    return boxed[-1].strip()
  answer = marker_answer(text)
  if answer is not None:
    return answer
  hashes = _HASHES.findall(text)
  if hashes and hashes[-1].strip():
    return hashes[-1].strip()
  output = program_output(text)
  if output:
    return output
  return last_number(text)
