"""The tool-integrated output protocol of DeepSeekMath-Instruct (§3.1), which follows ToRA.

A response interleaves reasoning with programs; generation stops at STOP, the last program is
run, and its result is appended as an output block, after which generation continues:

  ```python
  print(2 + 3)
  ```
  ```output
  5
  ```
  The answer is $\\boxed{5}$.

The tool loop cuts the text at STOP (the model's own "```output" is replaced) and appends
`format_output(result)`. As in ToRA's and DeepSeekMath's evaluation code, the block holds the
stripped stdout of a program that finished, or else the last line of its error (what it
printed before failing is dropped, as their executors drop it), and text longer than 100
characters keeps its first and last 50 around "...". A program that finished without
printing gives an empty block, as in DeepSeekMath's evaluation.
"""
from dsmath_jax.sandbox.sandbox import ExecResult

STOP = "```output"
_OPEN, _CLOSE = "```python", "```"


def last_program(text: str) -> str | None:
  """The code of the last ```python block, or None if there is none or it is not closed.

  Fences are recognized at the start of a line, as ToRA's extract_program does; an unclosed
  final block (the model stopped mid-program) is not a program to run.
  """
  program, inside = None, False
  lines: list[str] = []
  # A response starts with a space after "Assistant:" (" ```python\n..." when it opens with code).
  for line in text.lstrip(" ").split("\n"):
    if line.startswith(_OPEN):
      inside, lines = True, []
    elif inside and line.startswith(_CLOSE):
      inside, program = False, "\n".join(lines)
    elif inside:
      lines.append(line)
  return None if inside else program


def _shorten(text: str, max_chars: int | None) -> str:
  if max_chars is None or len(text) <= max_chars:
    return text
  half = max_chars // 2
  return text[:half] + "..." + text[-half:]


def format_output(result: ExecResult, *, max_chars: int | None = 100) -> str:
  """'```output\\n<stdout or last error line>\\n```\\n' (ToRA / DeepSeekMath truncation)."""
  finished = result.status in ("ok", "output_limit")  # output_limit: the head of its stdout
  shown = (result.stdout if finished else result.error).strip()
  return f"{STOP}\n{_shorten(shown, max_chars)}\n```\n"
