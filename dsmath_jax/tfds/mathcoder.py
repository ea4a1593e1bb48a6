"""MathCoder (Wang et al., 2023) text/code/execution trajectories -> tool-integrated SFT records.

MathCoder runs its code cells in one Jupyter kernel (state carries over; the last
expression of a cell is displayed). The DeepSeekMath tool format (paper §3.1, ToRA's
protocol) runs every ```python block on its own and shows what it prints. So each cell
becomes a self-contained program: the earlier cells' code (their displayed last
expressions dropped) + this cell, its last expression wrapped in print((...)) (so a
tuple prints as Jupyter shows it). Every program is run in the sandbox; the ```output
block holds what it actually printed. A record is kept when every program runs, the last
output shows the gold number (it may print several values, as `(949, 37.96)`) and the
final \\boxed{} is the gold answer; the others are dropped and counted by reason.
"""
import ast
import collections
import re

from dsmath_jax import templates
from dsmath_jax.eval import answer as answer_lib
from dsmath_jax.tfds import execute, jsonl

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
FIELDS = {"turns": "debug_result", "gold": "ground_truth.answer"}


def _split_last_expression(code: str) -> tuple[str, str | None]:
  """(code without its last top-level expression, that expression) -- (code, None) if none."""
  try:
    tree = ast.parse(code)
  except SyntaxError:
    return code, None
  if not tree.body or not isinstance(tree.body[-1], ast.Expr):
    return code, None
  last = tree.body[-1]
  if isinstance(last.value, ast.Call) and getattr(last.value.func, "id", "") == "print":
    return code, None
  lines = code.split("\n")
  head = "\n".join(lines[:last.lineno - 1] + [lines[last.lineno - 1][:last.col_offset]]).rstrip()
  expression = ast.get_source_segment(code, last)
  return head, expression


def standalone_programs(cells: list[str]) -> list[str]:
  """One self-contained program per notebook cell (see the module docstring)."""
  programs, state = [], []
  for cell in cells:
    head, expression = _split_last_expression(cell.strip("\n"))
    shown = head if expression is None else f"{head}\nprint(({expression}))".lstrip("\n")
    programs.append("\n\n".join(state + [shown]))
    state.append(head)
  return programs


def _turns(row):
  turns = [t for t in row["turns"] if t["role"] in ("text", "code", "execution")]
  question = next(t["content"] for t in row["turns"] if t["role"] == "user")
  # The last turn repeats the final answer ("51") after the boxed sentence: not part of the solution.
  if len(turns) >= 2 and turns[-1]["role"] == "text" and "\\boxed" not in turns[-1]["content"]:
    turns = turns[:-1]
  return question.strip(), turns


def records(path: str, *, source: str = "mathcoder_svamp", timeout_s: float = 10.0, workers: int = 2,
            skip_bad_records=False, report=None):
  """(kept tool-format SFT records, drop counts by reason)."""
  rows = list(jsonl.read_jsonl(path, FIELDS, skip_bad_records=skip_bad_records, report=report))
  parsed = [_turns(row) for row in rows]
  programs = [standalone_programs([t["content"] for t in turns if t["role"] == "code"])
              for _, turns in parsed]
  flat = [program for per_row in programs for program in per_row]
  results = iter(execute.run_programs(flat, timeout_s=timeout_s, workers=workers))
  kept, dropped = [], collections.Counter()
  for row, (question, turns), row_programs in zip(rows, parsed, programs):
    row_results = [next(results) for _ in row_programs]
    reason = _check(turns, row_results, row["gold"])
    if reason:
      dropped[reason] += 1
      continue
    pieces, outputs = [], iter(zip(row_programs, row_results))
    for turn in turns:
      if turn["role"] == "text":
        pieces.append(turn["content"].strip())
      elif turn["role"] == "code":
        program, result = next(outputs)
        pieces.append(f"```python\n{program}\n```\n```output\n{execute.output_text(result)}\n```")
    kept.append(dict(id=f"{source}-train-{row['_line']}", question=question,
                     prompt=templates.render(question, "tool"), response=" " + "\n".join(pieces),
                     format="tool", source=source))
  return kept, dropped


def _check(turns, results, gold) -> str | None:
  """Why a trajectory is dropped, or None to keep it."""
  if not results:
    return "no_code"
  if any(r.status != "ok" for r in results):
    return "exec_" + next(r.status for r in results if r.status != "ok")
  if not any(execute.same_number(number, gold) for number in _NUMBER.findall(results[-1].stdout)):
    return "gold_not_in_last_output"
  boxed = answer_lib.boxed_answers("\n".join(t["content"] for t in turns if t["role"] == "text"))
  if not boxed or not execute.same_number(boxed[-1], gold):
    return "boxed_not_gold"
  return None
