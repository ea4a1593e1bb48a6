"""Any JSONL with configurable field names -> question records or SFT records.

For benchmark/RL files that look alike (DeepSeek-Math's evaluation files, CMATH,
MGSM-zh, SAT, OCW, MMLU-STEM: a question field and an answer field) and for SFT sets
(MathInstruct, Lila, a user's own file). Field names are dotted paths (jsonl.get_field).
"""
import collections

from dsmath_jax import templates
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax import jsonl
from dsmath_jax.datasets import execute, gsm8k, pot, tora

# How the gold answer is read from the answer field.
ANSWER_FROM = ("field", "boxed", "gsm8k")


def _gold(text, answer_from) -> str:
  """The gold answer from the answer field; ValueError when it has none."""
  text = str(text)
  if answer_from == "gsm8k":
    return gsm8k.final_answer(text)
  if answer_from == "boxed":
    boxed = answer_lib.boxed_answers(text)
    if not boxed:
      raise ValueError("no \\boxed{} answer")
    text = boxed[-1]
  if not text.strip():
    raise ValueError("empty answer")
  return text.strip()


def questions(path: str, split: str, *, source: str, fields: dict, answer_from: str = "field",
              skip_bad_records=False, report=None):
  """Question records. `fields` maps question/answer (required) and optionally
  solution/subject/level/id to the file's field names."""
  if answer_from not in ANSWER_FROM:
    raise ValueError(f"answer_from must be one of {ANSWER_FROM}, got {answer_from!r}")
  required = {"question": fields["question"], "answer": fields["answer"]}
  optional = {k: v for k, v in fields.items() if k not in required and v}
  raw_fields = dict(required, raw=None)
  report = report if report is not None else {}
  for row in jsonl.read_jsonl(path, raw_fields, skip_bad_records=skip_bad_records, report=report):
    extra = {}
    for name, field in optional.items():
      try:
        extra[name] = jsonl.get_field(row["raw"], field)
      except KeyError:
        extra[name] = None
    try:
      answer = _gold(row["answer"], answer_from)
    except ValueError as error:
      jsonl.count_bad(report, jsonl.BadRecordError(path, row["_line"], str(error), fields["answer"]),
                      skip_bad_records)
      continue
    level = extra.get("level")
    yield dict(id=str(extra.get("id") or f"{source}-{split}-{row['_line']}"),
               question=str(row["question"]).strip(), answer=answer,
               solution=str(extra.get("solution") or row["answer"]),
               subject=str(extra.get("subject") or ""),
               level=int(level) if str(level or "").strip().isdigit() else 0, source=source)


def sft_records(path: str, *, source: str, fields: dict, format: str = "cot", timeout_s: float = 30.0,
                workers: int = 2, skip_bad_records=False, report=None):
  """(kept SFT records, drop counts by reason).

  `fields`: question and response (required), answer (optional: the gold answer,
  checked against program output). format 'cot': kept as is. 'program': a response
  without a ```python fence is taken as a whole program (MathInstruct/Lila PoT); it is
  run, and kept when it runs (and prints the gold answer, where one is configured); the
  response becomes program, output, boxed answer. 'tool': kept when every ```python
  block reproduces its ```output (as ToRA).
  """
  if format not in templates.TEMPLATES:
    raise ValueError(f"format must be one of {sorted(templates.TEMPLATES)}, got {format!r}")
  wanted = {k: v for k, v in fields.items() if k in ("question", "response", "answer") and v}
  rows = list(jsonl.read_jsonl(path, wanted, skip_bad_records=skip_bad_records, report=report))
  dropped = collections.Counter()
  if format == "cot":
    responses = [str(row["response"]).strip() for row in rows]
  elif format == "program":
    responses = _programs(rows, timeout_s, workers, dropped)
  else:
    responses = _tool(rows, timeout_s, workers, dropped)
  kept = []
  for row, response in zip(rows, responses):
    if response is None:
      continue
    question = str(row["question"]).strip()
    kept.append(dict(id=f"{source}-train-{row['_line']}", question=question,
                     prompt=templates.render(question, format), response=" " + response,
                     format=format, source=source))
  return kept, dropped


def _programs(rows, timeout_s, workers, dropped):
  codes = []
  for row in rows:
    response = str(row["response"])
    fenced = tora.last_python_block(response)
    codes.append(fenced if fenced is not None else response.strip())
  results = execute.run_programs(codes, timeout_s=timeout_s, workers=workers)
  responses = []
  for row, code, result in zip(rows, codes, results):
    output = execute.output_text(result)
    gold = row.get("answer")
    if result.status != "ok":
      dropped[f"exec_{result.status}"] += 1
      responses.append(None)
    elif not output:
      dropped["no_output"] += 1
      responses.append(None)
    elif gold is not None and not (execute.same_number(output, gold) or output == str(gold).strip()):
      dropped["wrong_answer"] += 1
      responses.append(None)
    else:
      answer = execute.format_number(execute.as_number(output)) if execute.as_number(output) is not None else output
      responses.append(pot.program_response(code, output, answer).lstrip(" "))
  return responses


def _tool(rows, timeout_s, workers, dropped):
  steps = [tora.STEP.findall(str(row["response"])) for row in rows]
  results = iter(execute.run_programs([c for s in steps for c, _ in s], timeout_s=timeout_s, workers=workers))
  responses = []
  for row, row_steps in zip(rows, steps):
    outputs = [execute.output_text(next(results)) for _ in row_steps]
    if not row_steps:
      dropped["no_code"] += 1
    elif not all(tora.same_output(recorded, actual) for (_, recorded), actual in zip(row_steps, outputs)):
      dropped["output_differs"] += 1
    else:
      responses.append(str(row["response"]).strip())
      continue
    responses.append(None)
  return responses
