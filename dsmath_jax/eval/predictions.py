"""A predictions file: one line per sample, {"id": <question id>, "output": <model text>} (field
names configurable); several lines with the same id are several samples. Lines that are not
JSON, name an unknown id or carry no output are reported by line number and skipped, never
silently graded.
"""

from dsmath_jax import jsonl, paths


def read_predictions(path: str, known_ids, *, id_field: str = "id", output_field: str = "output"):
  """({id: [output, ...]} in file order, bad lines [{"line": n, "error": "..."}]); `path` may be a URL."""
  known_ids = set(known_ids)
  outputs: dict[str, list[str]] = {}
  bad = []
  with paths.path(path).open(encoding="utf-8") as f:
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
