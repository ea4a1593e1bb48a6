"""MATH (Hendrycks et al., 2021): benchmark/RL questions and chain-of-thought SFT records.

The gold answer is the file's `answer` field where it has one (MATH-500), else the
content of the solution's last `\\boxed{}` (the convention of the
DeepSeekMath evaluation, §3.1/§4.2); subject and level are kept for per-subject
reports. Two line layouts are read: the original release (`type`, `level`="Level 5")
and MATH-500 (`subject`, `level`=5, `answer`, `unique_id`).
"""
from dsmath_jax import templates
from dsmath_jax.eval import answer as answer_lib
from dsmath_jax.tfds import jsonl


def gold_answer(solution: str, where: str = "") -> str:
  """The last \\boxed{...} of a reference solution."""
  boxed = answer_lib.boxed_answers(solution)
  if not boxed:
    raise ValueError(f"{where}: MATH solution has no \\boxed{{}} answer")
  return boxed[-1].strip()


def _level(value) -> int:
  """'Level 5' or 5 -> 5; 'Level ?' (a few train problems) -> 0."""
  text = str(value).replace("Level", "").strip()
  return int(text) if text.isdigit() else 0


def _rows(path, skip_bad_records, report):
  return jsonl.read_jsonl(path, {"question": "problem", "solution": "solution", "raw": None},
                          skip_bad_records=skip_bad_records, report=report)


def _id(row, source, split):
  return row["raw"].get("unique_id") or f"{source}-{split}-{row['_line']}"


def questions(path: str, split: str, *, source: str = "math", skip_bad_records=False, report=None):
  """Question records; `answer` is the last \\boxed{} of the solution."""
  for row in _rows(path, skip_bad_records, report):
    raw = row["raw"]
    where = f"{path}:{row['_line']} field 'solution'"
    answer = raw.get("answer")  # MATH-500 ships the extracted answer; the original release does not
    answer = str(answer).strip() if answer is not None else gold_answer(row["solution"], where)
    yield dict(id=_id(row, source, split), question=row["question"].strip(),
               answer=answer, solution=row["solution"],
               subject=str(raw.get("subject") or raw.get("type") or ""),
               level=_level(raw.get("level", 0)), source=source)


def cot_records(path: str, *, source: str = "math", skip_bad_records=False, report=None):
  """SFT records: the reference solution (it already ends in \\boxed{}) after the CoT prompt."""
  for row in _rows(path, skip_bad_records, report):
    gold_answer(row["solution"], f"{path}:{row['_line']} field 'solution'")  # fails on unboxed lines
    question = row["question"].strip()
    yield dict(id=_id(row, source, "train"), question=question, prompt=templates.render(question, "cot"),
               response=" " + row["solution"].strip(), format="cot", source=source)
