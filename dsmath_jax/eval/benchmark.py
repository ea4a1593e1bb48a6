"""Benchmark questions and predictions files, read straight from JSONL.

Questions come as the question records of docs/conventions.md (id, question, answer, solution,
subject, level, source), built by the data engineer's converters: GSM8K (`question`,
`answer` with "#### n"), MATH / MATH-500 (`problem`, `solution`, `answer` where present,
`subject` or `type`, `level`, `unique_id`), or any JSONL with configurable fields.

A predictions file has one line per sample: {"id": <question id>, "output": <model text>}
(the output field name is configurable); several lines with the same id are several samples.
Lines that are not JSON, name an unknown id or carry no output are reported by line
number and skipped, never silently graded.
"""

from dsmath_jax import jsonl
from dsmath_jax.datasets import generic, gsm8k, hendrycks_math


def detect_format(path: str) -> str:
  """'gsm8k' | 'math' | 'jsonl' from the first record's fields."""
  first = next((record for _, record in jsonl.json_objects(path)), None)
  if first is None:
    raise ValueError(f"{path}: no records")
  if "problem" in first and ("solution" in first or "answer" in first):
    return "math"
  if "####" in str(first.get("answer", "")):
    return "gsm8k"
  return "jsonl"


def load_questions(path: str, *, fmt: str = "auto", split: str = "test", question_field: str = "question",
                   answer_field: str = "answer", answer_from: str = "field", id_field: str = "",
                   subject_field: str = "", level_field: str = "", limit: int = 0) -> list[dict]:
  """Question records of a benchmark file; ids must be unique (a duplicate is an error)."""
  fmt = detect_format(path) if fmt == "auto" else fmt
  if fmt == "gsm8k":
    records = gsm8k.questions(path, split)
  elif fmt == "math":
    records = hendrycks_math.questions(path, split)
  elif fmt == "jsonl":
    fields = dict(question=question_field, answer=answer_field, id=id_field, subject=subject_field,
                  level=level_field)
    records = generic.questions(path, split, source="jsonl", fields=fields, answer_from=answer_from)
  else:
    raise ValueError(f"benchmark format must be auto|gsm8k|math|jsonl, got {fmt!r}")
  questions, seen = [], {}
  for record in records:
    if record["id"] in seen:
      raise ValueError(f"{path}: question id {record['id']!r} appears twice (records {seen[record['id']]} "
                       f"and {len(questions) + 1}); set id_field to a unique field")
    seen[record["id"]] = len(questions) + 1
    questions.append(record)
    if limit and len(questions) >= limit:
      break
  return questions


def read_predictions(path: str, known_ids, *, id_field: str = "id", output_field: str = "output"):
  """({id: [output, ...]} in file order, bad lines [{"line": n, "error": "..."}])."""
  known_ids = set(known_ids)
  outputs: dict[str, list[str]] = {}
  bad = []
  with open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        record = jsonl.parse_line(path, line_number, line)
      except jsonl.BadRecordError as error:
        bad.append(dict(line=line_number, error=str(error)))
        continue
      if id_field not in record:
        bad.append(dict(line=line_number, error=f"{path}:{line_number} field {id_field!r}: missing"))
        continue
      question_id = str(record[id_field])
      if question_id not in known_ids:
        bad.append(dict(line=line_number, error=f"{path}:{line_number} field {id_field!r}: unknown id "
                        f"{question_id!r} (not in the benchmark)"))
        continue
      output = record.get(output_field)
      if not isinstance(output, str) or not output.strip():
        what = "missing" if output_field not in record else f"empty or not a string ({output!r:.40})"
        bad.append(dict(line=line_number, error=f"{path}:{line_number} field {output_field!r}: {what}"))
        continue
      outputs.setdefault(question_id, []).append(output)
  return outputs, bad
