"""Readers of the benchmark files in their released formats -> question records.

One reader per format of DeepSeek-Math's `evaluation/datasets/` (and the MATH / GSM8K
releases), each doing what that repository's `data_processing/process_utils.py` does to show
the question to the model. A record:
  id        unique within the file (the file's own id, else "<benchmark>-<line>"; an id of 0 is an id)
  question  the text the model is asked (with the options of a multiple-choice question)
  problem   the statement alone (what decontamination matches)
  answer    gold: a number/expression, option letters ("A", "ACD"), or blanks joined by ";"
  options   {"A": text, ...} for multiple choice, else {}
  solution  reference solution where the file has one, else ""
  subject, level   for breakdowns ("" / 0 where the data have none)
A record that lacks a field, or whose gold answer cannot be read, is an error naming
file:line and field: a benchmark is never graded on fewer questions than it has.
"""
import ast
import re
from typing import Iterator

from dsmath_jax import jsonl
from dsmath_jax.grading import answer as answer_lib

_MC_PROMPT = "\nWhat of the following is the right choice? Explain your answer.\n"   # process_math_sat / mmlu


def _field(path, line, record, name):
  if name not in record or record[name] is None or not str(record[name]).strip():
    raise jsonl.BadRecordError(path, line, "missing or empty", name)
  return record[name]


def _record(id_, question, answer, *, problem=None, options=None, solution="", subject="", level=0) -> dict:
  return dict(id=str(id_), question=question.strip(), problem=(problem or question).strip(), answer=str(answer).strip(),
              options=options or {}, solution=solution or "", subject=str(subject or ""), level=int(level or 0))


def _id(record, key, name, line) -> str:
  value = record.get(key)
  return str(value) if value is not None and str(value).strip() != "" else f"{name}-{line}"


def _listish(value):
  """Options stored as a list, or as the string of a Python list (AGIEval's `None` rows too)."""
  if isinstance(value, str):
    value = value.strip()
    if value in ("", "None"):
      return None
    return ast.literal_eval(value)
  return value


def gsm8k(path: str, name: str = "gsm8k") -> Iterator[dict]:
  """GSM8K: DeepSeek-Math's copy (`question, answer, cot, id`) or the original (`answer` ends "#### n")."""
  for line, r in jsonl.json_objects(path):
    answer = str(_field(path, line, r, "answer"))
    solution = str(r.get("cot") or "")
    if "####" in answer:
      solution, answer = answer.rsplit("####", 1)
    yield _record(_id(r, "id", name, line), _field(path, line, r, "question"), answer.strip().replace(",", ""),
                  solution=re.sub(r"<<[^<>]*>>", "", solution).strip())


def hendrycks_math(path: str, name: str = "math") -> Iterator[dict]:
  """MATH (`problem, solution, level, type` [+ `answer`, `subject`, `unique_id`]): gold = `answer`,
  else the last \\boxed{} of the solution (as the MATH release defines it)."""
  for line, r in jsonl.json_objects(path):
    solution = str(r.get("solution") or "")
    answer = r.get("answer")
    if answer is None or not str(answer).strip():
      if not solution.strip():
        raise jsonl.BadRecordError(path, line, "missing or empty (and no 'answer')", "solution")
      boxed = answer_lib.boxed_answers(solution)
      if not boxed:
        raise jsonl.BadRecordError(path, line, "no \\boxed{} answer in the solution", "solution")
      answer = boxed[-1]
    level = re.sub(r"\D", "", str(r.get("level", "")))
    key = "unique_id" if r.get("unique_id") else "idx"
    yield _record(_id(r, key, name, line), _field(path, line, r, "problem"), answer, solution=solution,
                  subject=r.get("subject") or r.get("type") or "", level=level or 0)


def sat(path: str, name: str = "sat") -> Iterator[dict]:
  """SAT (`id, question, options, Answer`): options one string "A) ... B) ..." (one record "A. ... B.
  ..."), shown as "(A) ... (B) ..." (process_math_sat)."""
  for line, r in jsonl.json_objects(path):
    text = str(_field(path, line, r, "options")).strip()
    parts = re.split(r"(?:^|\s)([A-G])[).]\s", text)
    options = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if list(options)[:2] != ["A", "B"]:
      raise jsonl.BadRecordError(path, line, f"options do not read as 'A) ... B) ...': {text[:60]!r}", "options")
    shown = " ".join(f"({letter}) {option}" for letter, option in options.items())
    question = str(_field(path, line, r, "question")).strip()
    yield _record(_id(r, "id", name, line), f"{question}{_MC_PROMPT}{shown}", _field(path, line, r, "Answer"),
                  problem=question, options=options)


def mmlu_stem(path: str, name: str = "mmlu_stem") -> Iterator[dict]:
  """MMLU-STEM (`question, options, answer, topic, id`): 4 options as a list (process_mmlu_stem)."""
  for line, r in jsonl.json_objects(path):
    options = dict(zip("ABCD", (str(o).strip() for o in _listish(_field(path, line, r, "options")))))
    shown = ", ".join(f"({letter}) {option}" for letter, option in options.items())
    question = str(_field(path, line, r, "question")).strip()
    yield _record(_id(r, "id", name, line), f"{question}{_MC_PROMPT}{shown}", _field(path, line, r, "answer"),
                  problem=question, options=options, subject=r.get("topic", ""))


def ocw(path: str, name: str = "ocw") -> Iterator[dict]:
  """OCW Courses (`problem, solution, answer, id`)."""
  for line, r in jsonl.json_objects(path):
    yield _record(_id(r, "id", name, line), _field(path, line, r, "problem"), _field(path, line, r, "answer"),
                  solution=str(r.get("solution") or ""))


def cmath(path: str, name: str = "cmath") -> Iterator[dict]:
  """CMATH (`grade, question, golden, ...`; no id): by grade (process_cmath)."""
  for line, r in jsonl.json_objects(path):
    yield _record(_id(r, "id", name, line), _field(path, line, r, "question"),
                  str(_field(path, line, r, "golden")).replace(",", ""), subject=f"grade {r.get('grade', '?')}")


def mgsm(path: str, name: str = "mgsm_zh") -> Iterator[dict]:
  """MGSM-zh (`id, messages, answer`): the question is the user message."""
  for line, r in jsonl.json_objects(path):
    messages = _listish(_field(path, line, r, "messages"))
    users = [m["content"] for m in messages if m.get("role") == "user"]
    if not users:
      raise jsonl.BadRecordError(path, line, "no user message", "messages")
    yield _record(_id(r, "id", name, line), users[-1], str(_field(path, line, r, "answer")).replace(",", ""))


def gaokao_cloze(path: str, name: str = "gaokao_mathcloze") -> Iterator[dict]:
  """AGIEval Gaokao-MathCloze (`question, answer`): blanks separated by ";" in `answer`."""
  for line, r in jsonl.json_objects(path):
    yield _record(_id(r, "id", name, line), _field(path, line, r, "question"), _field(path, line, r, "answer"),
                  subject=_source(r))


def gaokao_choice(path: str, name: str = "gaokao_mathqa") -> Iterator[dict]:
  """AGIEval Gaokao-MathQA (`question, options ["(A)…"], label`): shown as DeepSeek-Math's few-shot
  prompt shows it (`process_agieval_gaokao_mathqa_few_shot_cot_test`)."""
  for line, r in jsonl.json_objects(path):
    raw = [str(o).strip() for o in _listish(_field(path, line, r, "options"))]
    if not all(re.match(r"\([A-Z]\)", o) for o in raw):
      raise jsonl.BadRecordError(path, line, f"options must start '(A)': {raw[:1]}", "options")
    options = {o[1]: o[3:].strip() for o in raw}
    question = str(_field(path, line, r, "question")).strip().rstrip("\\").strip()
    yield _record(_id(r, "id", name, line), f"{question}\n从以下选项中选择:    {' '.join(raw)}",
                  _field(path, line, r, "label"), problem=question, options=options, subject=_source(r))


def _source(record) -> str:
  other = _listish(record.get("other")) or {}
  return str(other.get("source", "")) if isinstance(other, dict) else ""


def question_answer(path: str, name: str = "jsonl") -> Iterator[dict]:
  """A file of your own: `question` (or `problem`), `answer` (or a `solution` ending in \\boxed{}),
  optional `id` (or `unique_id`), `subject`, `level`."""
  for line, r in jsonl.json_objects(path):
    question = r.get("question") if r.get("question") is not None else r.get("problem")
    if question is None or not str(question).strip():
      raise jsonl.BadRecordError(path, line, "missing or empty (nor 'problem')", "question")
    answer, solution = r.get("answer"), str(r.get("solution") or "")
    if answer is None or not str(answer).strip():
      boxed = answer_lib.boxed_answers(solution)
      if not boxed:
        raise jsonl.BadRecordError(path, line, "missing or empty (nor a \\boxed{} solution)", "answer")
      answer = boxed[-1]
    level = re.sub(r"\D", "", str(r.get("level", "")))
    yield _record(_id(r, "id" if r.get("id") is not None else "unique_id", name, line), str(question), answer,
                  solution=solution, subject=r.get("subject") or r.get("type") or "", level=level or 0)
