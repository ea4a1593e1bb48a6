"""The ToRA tool-output protocol: program extraction and the ```output block (no processes)."""
import json

from dsmath_jax.sandbox.sandbox import ExecResult
from dsmath_jax.sandbox.tool_protocol import STOP, format_output, last_program


def test_last_program_takes_the_last_closed_block():
  text = ("Let us compute.\n```python\nprint(1)\n```\n```output\n1\n```\n"
          "Now the second one:\n```python\nx = 2\nprint(x ** 2)\n```\n")
  assert last_program(text) == "x = 2\nprint(x ** 2)"
  assert last_program(text + "```output\n4\n```\n") == "x = 2\nprint(x ** 2)"


def test_last_program_at_the_start_of_a_response():
  """A response follows "Assistant:" with a space, so it may open with " ```python"."""
  assert last_program(" ```python\nprint(1)\n```\n") == "print(1)"


def test_last_program_none_without_a_finished_block():
  assert last_program("The answer is $\\boxed{3}$.") is None
  assert last_program("```python\nprint(1)\n```\nthen\n```python\nprint(") is None
  assert last_program("```py\nprint(1)\n```") is None  # only ```python fences, as in ToRA


def test_format_output_shows_stdout_or_the_error():
  assert STOP == "```output"
  printed = ExecResult("ok", "21.0000000000000\n", "", 0.1)
  assert format_output(printed) == "```output\n21.0000000000000\n```\n"
  error = ExecResult("error", "", "NameError: name 'x' is not defined", 0.1)
  assert format_output(error) == "```output\nNameError: name 'x' is not defined\n```\n"
  timeout = ExecResult("timeout", "", "Timeout Error", 10.0)
  assert format_output(timeout) == "```output\nTimeout Error\n```\n"
  printed_then_failed = ExecResult("error", "partial\n", "ZeroDivisionError: division by zero", 0.1)
  assert format_output(printed_then_failed) == "```output\nZeroDivisionError: division by zero\n```\n"
  assert format_output(ExecResult("ok", "", "", 0.1)) == "```output\n\n```\n"


def test_format_output_keeps_head_and_tail_of_long_text():
  digits = "".join(str(i % 10) for i in range(150))  # 0123456789... (150 chars)
  block = format_output(ExecResult("ok", digits + "\n", "", 0.1))
  assert block == "```output\n" + digits[:50] + "..." + digits[100:] + "\n```\n"
  assert format_output(ExecResult("ok", digits, "", 0.1), max_chars=None) == f"```output\n{digits}\n```\n"


def test_protocol_rebuilds_tora_trajectories(shared_data):
  """Cutting each real ToRA trajectory at its last STOP and appending format_output of the
  recorded output gives back the trajectory up to the text after the block."""
  count = 0
  for line in open(shared_data / "tora" / "examples.jsonl"):
    text = json.loads(line)["messages"][-1]["content"]
    if STOP not in text:
      continue
    before, after = text.rsplit(STOP, 1)
    output = after[1:].split("\n```\n", 1)[0]
    rebuilt = before + format_output(ExecResult("ok", output, "", 0.0), max_chars=None)
    assert text.startswith(rebuilt) and last_program(before) is not None
    count += 1
  assert count == 25
