"""Program-of-Thoughts (Chen et al., 2022) programs -> program-of-thought SFT records.

The PoT release holds Codex's programs for SVAMP with the value of `ans` after running
them; these are model outputs, not gold programs. Each program is run again (with
`print(ans)` appended, in the sandbox) and kept only when its output equals the gold
answer (|diff| < 1e-4, PoT's own check). The response is the DeepSeekMath tool format
(paper §3.1): the program, its output, and the boxed answer.
"""
import collections

from dsmath_jax import templates
from dsmath_jax import jsonl
from dsmath_jax.datasets import execute

FIELDS = {"question": "question", "passage": "passage", "programs": "generated", "answer": "answer"}


def program_response(code: str, output: str, answer: str) -> str:
  """' ```python ...``` ```output ...``` The answer is $\\boxed{..}$.' (leading space: after 'Assistant:')."""
  return (f" ```python\n{code.strip()}\n```\n```output\n{output}\n```\n"
          f"The answer is $\\boxed{{{answer}}}$.")


def records(path: str, *, source: str = "pot_svamp", timeout_s: float = 30.0, workers: int = 2,
            skip_bad_records=False, report=None):
  """(kept SFT records, drop counts by reason). Lines without `question` (few-shot demos) are skipped."""
  rows = list(jsonl.read_jsonl(path, FIELDS, skip_bad_records=skip_bad_records, report=report,
                               keep=lambda obj: "question" in obj))
  codes = [row["programs"][0].rstrip() + "\nprint(ans)\n" if row["programs"] else "" for row in rows]
  results = execute.run_programs(codes, timeout_s=timeout_s, workers=workers)
  kept, dropped = [], collections.Counter()
  for row, code, result in zip(rows, codes, results):
    output = execute.output_text(result)
    if not code.strip():
      dropped["no_program"] += 1
    elif result.status != "ok":
      dropped[f"exec_{result.status}"] += 1
    elif not execute.same_number(output, row["answer"]):
      dropped["wrong_answer"] += 1
    else:
      question = f"{row['passage'].strip()} {row['question'].strip()}".strip()
      kept.append(dict(id=f"{source}-train-{row['_line']}", question=question,
                       prompt=templates.render(question, "program"),
                       response=program_response(code, output, execute.format_number(row["answer"])),
                       format="program", source=source))
  return kept, dropped
