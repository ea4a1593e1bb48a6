"""ToRA (Gou et al., 2023) tool-integrated trajectories -> tool SFT records.

This is the tool-integrated format DeepSeekMath-Instruct is trained on (paper §3.1):
text, ```python blocks, ```output blocks, a final \\boxed{} answer. Every ```python
block is self-contained (ToRA runs only the last block), so each is run again in the
sandbox. A trajectory is kept when every block reproduces its recorded ```output
(whitespace-normalized; a recorded error is reproduced by the same error line) and its
\\boxed{} answer is the gold answer; the others are dropped and counted by reason.
"""
import collections
import re

from dsmath_jax import templates
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading import grader
from dsmath_jax import jsonl
from dsmath_jax.datasets import execute

FIELDS = {"question": "messages.0.content", "trajectory": "messages.1.content", "gold": "gt", "id": "id"}
# A ```python block and the ```output block right after it.
STEP = re.compile(r"```python\n(.*?)```\s*```output\n(.*?)```", re.S)


def last_python_block(text: str) -> str | None:
  """The code of the last ```python block (ToRA and the DeepSeekMath tool loop run only that)."""
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  return blocks[-1] if blocks else None


def same_output(recorded: str, actual: str) -> bool:
  return " ".join(recorded.split()) == " ".join(actual.split())


def records(path: str, *, source: str = "tora", timeout_s: float = 30.0, workers: int = 2,
            skip_bad_records=False, report=None):
  """(kept tool-format SFT records, drop counts by reason)."""
  rows = list(jsonl.read_jsonl(path, FIELDS, skip_bad_records=skip_bad_records, report=report))
  steps = [STEP.findall(row["trajectory"]) for row in rows]
  results = iter(execute.run_programs([code for row_steps in steps for code, _ in row_steps],
                                      timeout_s=timeout_s, workers=workers))
  kept, dropped = [], collections.Counter()
  for row, row_steps in zip(rows, steps):
    outputs = [execute.output_text(next(results)) for _ in row_steps]
    boxed = answer_lib.boxed_answers(row["trajectory"])
    if not row_steps:
      dropped["no_code"] += 1
    elif not all(same_output(recorded, actual) for (_, recorded), actual in zip(row_steps, outputs)):
      dropped["output_differs"] += 1
    elif not boxed or not grader.is_equiv(boxed[-1], str(row["gold"])):
      dropped["boxed_not_gold"] += 1
    else:
      question = row["question"].strip()
      kept.append(dict(id=f"{source}-{row['id']}", question=question, prompt=templates.render(question, "tool"),
                       response=" " + row["trajectory"].strip(), format="tool", source=source))
  return kept, dropped
