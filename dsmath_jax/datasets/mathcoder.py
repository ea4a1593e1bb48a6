"""MathCoder (Wang et al., 2023) text/code/execution trajectories -> tool-integrated SFT records.

MathCoder runs its code cells in one Jupyter kernel (state carries over; the last
expression of a cell is displayed). The DeepSeekMath tool format (paper §3.1, ToRA's
protocol) runs every ```python block on its own and shows what it prints. So each cell
becomes a self-contained program: the earlier cells' code (their displayed last
expressions dropped) + this cell, its last expression wrapped in print() (a tuple in
parentheses, as Jupyter shows it). Every program is run in the sandbox; the ```output
block holds what it actually printed. A record is kept when every program runs as it did
in the recorded run (a cell that raised there raises here and is then left out of later
programs: MathCoder trajectories correct their own errors), the last output shows the
gold number (it may print several values, as `(949, 37.96)`) and the final \\boxed{} is
the gold answer; the others are dropped and counted by reason.
"""
import ast
import collections
import re

from dsmath_jax import templates
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading import grader
from dsmath_jax import jsonl
from dsmath_jax.datasets import execute

_TRACEBACK = re.compile(r"Traceback|\b\w*(?:Error|Exception)\b:?")
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
  if isinstance(last.value, ast.Tuple):  # `a, b` is shown as Jupyter shows it: (1, 2)
    expression = f"({expression})"
  return head, expression


def standalone_programs(cells: list[str], failed: list[bool] | None = None) -> list[str]:
  """One self-contained program per notebook cell (see the module docstring). A cell that
  failed in the recorded run (`failed[i]`) is not carried into later programs: the
  trajectory's later cells correct it, and re-running it would fail them too."""
  failed = failed or [False] * len(cells)
  programs, state = [], []
  for cell, cell_failed in zip(cells, failed):
    head, expression = _split_last_expression(cell.strip("\n"))
    shown = head if expression is None else f"{head}\nprint({expression})".lstrip("\n")
    programs.append("\n\n".join(state + [shown]))
    if not cell_failed:
      state.append(head)
  return programs


def _code_cells(turns) -> tuple[list[str], list[bool]]:
  """The code cells and whether each failed in the recorded run (its execution shows a traceback)."""
  cells, failed = [], []
  for i, turn in enumerate(turns):
    if turn["role"] == "code":
      following = turns[i + 1] if i + 1 < len(turns) else {"role": "", "content": ""}
      cells.append(turn["content"])
      failed.append(following["role"] == "execution" and bool(_TRACEBACK.search(following["content"])))
  return cells, failed


def _turns(row):
  turns = [t for t in row["turns"] if t["role"] in ("text", "code", "execution")]
  question = next(t["content"] for t in row["turns"] if t["role"] == "user")
  # The last turn repeats the final answer ("51") after the boxed sentence: not part of the solution.
  if len(turns) >= 2 and turns[-1]["role"] == "text" and "\\boxed" not in turns[-1]["content"]:
    turns = turns[:-1]
  return question.strip(), turns


def records(path: str, *, source: str = "mathcoder_svamp", timeout_s: float = 30.0, workers: int = 2,
            skip_bad_records=False, report=None):
  """(kept tool-format SFT records, drop counts by reason)."""
  rows = list(jsonl.read_jsonl(path, FIELDS, skip_bad_records=skip_bad_records, report=report))
  parsed = [_turns(row) for row in rows]
  cells = [_code_cells(turns) for _, turns in parsed]
  programs = [standalone_programs(*row_cells) for row_cells in cells]
  flat = [program for per_row in programs for program in per_row]
  results = iter(execute.run_programs(flat, timeout_s=timeout_s, workers=workers))
  kept, dropped = [], collections.Counter()
  for row, (question, turns), row_programs, (_, failed) in zip(rows, parsed, programs, cells):
    row_results = [next(results) for _ in row_programs]
    reason = _check(turns, row_results, failed, row["gold"])
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


def _check(turns, results, failed, gold) -> str | None:
  """Why a trajectory is dropped, or None to keep it."""
  if not results:
    return "no_code"
  for result, cell_failed in zip(results, failed):
    if (result.status == "error") != cell_failed or result.status not in ("ok", "error"):
      return "exec_" + (result.status if result.status != "ok" else "no_longer_fails")
  if not any(execute.same_number(number, gold) for number in _NUMBER.findall(results[-1].stdout)):
    return "gold_not_in_last_output"
  boxed = answer_lib.boxed_answers("\n".join(t["content"] for t in turns if t["role"] == "text"))
  if not boxed or not grader.is_equiv(boxed[-1], execute.format_number(gold)):
    return "boxed_not_gold"
  return None
