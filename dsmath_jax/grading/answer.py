"""Final-answer extraction from a model output, as the DeepSeekMath evaluation does it.

Order (DeepSeek-Math `evaluation/data_processing/answer_extraction.py`, ToRA's parser):
the last `\\boxed{...}` (or `\\fbox{...}`, or `\\boxed 5`), else the text after the last
"The answer is", else the last GSM8K "#### n", else the last ```output block of a
tool-integrated run, else the last number. Mode "program" takes only the last program
output: the "program accuracy" of tool-integrated runs (§3.2, Table 5).

The answer is returned raw (not normalized); `normalize.normalize` and `grader.is_equiv`
do the rest, so the sample file shows what the model actually wrote.
"""
import re

from dsmath_jax.grading.normalize import matching_braces

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_IS = re.compile(r"[Tt]he (?:final )?answer is[:\s]*")
_HASHES = re.compile(r"####\s*([^\n]*)")
_OUTPUT_BLOCK = re.compile(r"```output\n?(.*?)(?:```|$)", re.S)
_NUMBER = re.compile(r"-?\d*\.?\d+")


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


def _after_answer_is(text: str) -> str | None:
  matches = list(_ANSWER_IS.finditer(text))
  if not matches:
    return None
  rest = text[matches[-1].end():].strip()
  if rest.startswith("$"):  # Minerva style: "The final answer is $x$. I hope it is correct."
    closing = rest.find("$", 1)
    if closing > 0:
      return rest[1:closing].strip()
  line = rest.split("\n")[0]
  line = re.split(r"\.\s+(?=[A-Z])", line)[0]  # stop at the end of the sentence
  return line.strip().strip("$").rstrip(".").strip() or None


def last_number(text: str) -> str | None:
  numbers = _NUMBER.findall(text.replace(",", ""))
  return numbers[-1] if numbers else None


def extract_answer(text: str, *, mode: str = "auto") -> str | None:
  """The final answer in a model output, or None when there is none.

  mode "auto": boxed > "The answer is" > "#### n" > last program output > last number;
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
  answer = _after_answer_is(text)
  if answer is not None:
    return answer
  hashes = _HASHES.findall(text)
  if hashes and hashes[-1].strip():
    return hashes[-1].strip()
  output = program_output(text)
  if output:
    return output
  return last_number(text)
