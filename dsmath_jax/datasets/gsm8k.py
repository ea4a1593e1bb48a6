"""GSM8K (Cobbe et al., 2021): benchmark/RL questions and chain-of-thought SFT records.

The gold answer is the number after `####` (thousands separators removed). For SFT
(paper §3.1, the CoT part of the instruction data), the solution's calculator notes
`<<48/2=24>>` are removed and the solution ends in `\\boxed{answer}`, so SFT, RL and
evaluation all read the final answer the same way.
"""
import re

from dsmath_jax import templates
from dsmath_jax import jsonl

_ANNOTATION = re.compile(r"<<([^<>]*)>>")
# A number as GSM8K writes it right after an annotation: "$22,500", "0.2", "-3", "3/4".
_WRITTEN_NUMBER = re.compile(r"\s*\$?\s*(-?[\d,]*\.?\d+(?:/\d+)?)")


def final_answer(solution: str) -> str:
  """The number after the last `####`, without thousands separators ("1,200" -> "1200")."""
  if "####" not in solution:
    raise ValueError("GSM8K solution has no '#### <answer>' line")
  answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
  if not answer:
    raise ValueError("GSM8K solution has an empty '####' answer")
  return answer


def computed_numbers(solution: str) -> list[str]:
  """The result of every calculator note `<<expr=result>>`, in order."""
  return [inner.rsplit("=", 1)[1] for inner in _ANNOTATION.findall(solution) if "=" in inner]


def _same_number(written: str, result: str) -> bool:
  if written.replace(",", "") == result:
    return True
  try:
    return abs(float(written.replace(",", "")) - float(result)) < 1e-9
  except ValueError:
    return False


def rewrite_solution(solution: str) -> str:
  """Plain chain-of-thought: calculator notes removed, `#### n` -> `The answer is $\\boxed{n}$.`

  A note's result is nearly always written right after it ("<<48/2=24>>24"); where it
  is not, the result is put in place of the note, so no computed number is lost.
  """
  answer = final_answer(solution)
  body = solution.rsplit("####", 1)[0]

  def replace(match):
    inner = match.group(1)
    if "=" not in inner:
      return ""
    result = inner.rsplit("=", 1)[1].strip()
    written = _WRITTEN_NUMBER.match(body, match.end())
    return "" if written and _same_number(written.group(1), result) else result

  steps = [line.rstrip() for line in _ANNOTATION.sub(replace, body).strip().split("\n") if line.strip()]
  return "\n".join(steps + [f"The answer is $\\boxed{{{answer}}}$."])


def _rows(path, skip_bad_records, report):
  """(row, rewritten-or-None) for lines whose solution has a final answer; others are bad records."""
  report = report if report is not None else {}
  for row in jsonl.read_jsonl(path, {"question": "question", "solution": "answer"},
                              skip_bad_records=skip_bad_records, report=report):
    try:
      yield row, final_answer(row["solution"])
    except ValueError as error:
      jsonl.count_bad(report, jsonl.BadRecordError(path, row["_line"], str(error), "answer"), skip_bad_records)


def questions(path: str, split: str, *, source: str = "gsm8k", skip_bad_records=False, report=None):
  """Question records (docs/conventions.md, "Records"): gold = the number after ####."""
  for row, answer in _rows(path, skip_bad_records, report):
    yield dict(id=f"{source}-{split}-{row['_line']}", question=row["question"].strip(), answer=answer,
               solution=row["solution"], subject="", level=0, source=source)


def cot_records(path: str, *, source: str = "gsm8k", skip_bad_records=False, report=None):
  """SFT records: the rewritten chain of thought after the CoT prompt (response starts with a space)."""
  for row, _ in _rows(path, skip_bad_records, report):
    question = row["question"].strip()
    yield dict(id=f"{source}-train-{row['_line']}", question=question,
               prompt=templates.render(question, "cot"),
               response=" " + rewrite_solution(row["solution"]), format="cot", source=source)
