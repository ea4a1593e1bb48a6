"""MATH (Hendrycks et al., 2021): benchmark/RL questions and chain-of-thought SFT records.

The gold answer is the file's `answer` field where it has one (MATH-500), else the
content of the solution's last `\\boxed{}` (the convention of the DeepSeekMath
evaluation, §3.1/§4.2); subject and level are kept for per-subject reports. Two line
layouts are read: the original release (`type`, `level`="Level 5") and MATH-500
(`subject`, `level`=5, `answer`, `unique_id`). The original train split has two problems
whose solution ends in an empty `\\boxed{}` (train/number_theory/7115.json and 7117.json):
they have no gold answer, so they are dropped (counted as 'empty_boxed').
"""
from dsmath_jax import templates
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax import jsonl


def gold_answer(solution: str) -> str | None:
  """The last \\boxed{...} of a reference solution ('' for an empty box, None when there is none)."""
  boxed = answer_lib.boxed_answers(solution)
  return boxed[-1].strip() if boxed else None


def _level(value) -> int:
  """'Level 5' or 5 -> 5; 'Level ?' (a few train problems) -> 0."""
  text = str(value).replace("Level", "").strip()
  return int(text) if text.isdigit() else 0


def _rows(path, skip_bad_records, report):
  """(row, gold answer) for usable lines; no box is a bad record, an empty box a counted drop."""
  report = report if report is not None else {}
  dropped = report.setdefault("dropped", {})
  for row in jsonl.read_jsonl(path, {"question": "problem", "solution": "solution", "raw": None},
                              skip_bad_records=skip_bad_records, report=report):
    given = row["raw"].get("answer")  # MATH-500 ships the extracted answer; the original release does not
    answer = str(given).strip() if given is not None else gold_answer(row["solution"])
    if answer is None:
      jsonl.count_bad(report, jsonl.BadRecordError(path, row["_line"], "no \\boxed{} answer", "solution"),
                      skip_bad_records)
    elif not answer:
      dropped["empty_boxed"] = dropped.get("empty_boxed", 0) + 1
    else:
      yield row, answer


def _id(row, source, split):
  return row["raw"].get("unique_id") or f"{source}-{split}-{row['_line']}"


def questions(path: str, split: str, *, source: str = "math", skip_bad_records=False, report=None):
  """Question records; `answer` is the gold final answer."""
  for row, answer in _rows(path, skip_bad_records, report):
    raw = row["raw"]
    yield dict(id=_id(row, source, split), question=row["question"].strip(), answer=answer,
               solution=row["solution"], subject=str(raw.get("subject") or raw.get("type") or ""),
               level=_level(raw.get("level", 0)), source=source)


def cot_records(path: str, *, source: str = "math", skip_bad_records=False, report=None):
  """SFT records: the reference solution (it ends in \\boxed{}) after the CoT prompt."""
  for row, _ in _rows(path, skip_bad_records, report):
    question = row["question"].strip()
    yield dict(id=_id(row, source, "train"), question=question, prompt=templates.render(question, "cot"),
               response=" " + row["solution"].strip(), format="cot", source=source)
