"""JSONL reading with errors that name the file, the line and the field.

Every dataset we convert (GSM8K, MATH, ToRA, PoT, MathCoder, MathInstruct, a user's
own file) is one JSON object per line; a broken line must point at itself.

Python's json module has no limits of its own: an integer of more than 4300 digits raises a bare
ValueError (int max str digits, and below that limit parsing is quadratic in the digits), and deep
nesting raises RecursionError, or parses just under the interpreter's limit and then crashes whatever
recurses over the object next (repr, json.dumps). `parse_line` turns both into a BadRecordError with
a `reason` ('bad_json', 'not_a_json_object', 'json_number_too_long', 'json_too_deep'), so one line of
a web crawl cannot stop a run. Lines within the limits parse exactly as `json.loads` parses them.
"""
import json
from typing import Callable, Iterator

from absl import logging

MAX_NUMBER_DIGITS = 4300      # longest integer literal accepted (Python's default int max str digits)
MAX_DEPTH = 128               # deepest nesting of arrays/objects accepted (real records: under 10)


class BadRecordError(ValueError):
  """A JSONL line that is not JSON, or lacks a configured field; `reason` names the kind of fault."""

  def __init__(self, path: str, line: int, message: str, field: str | None = None, reason: str = "bad_record"):
    where = f"{path}:{line}" + (f" field {field!r}" if field else "")
    super().__init__(f"{where}: {message}")
    self.path, self.line, self.field, self.reason, self.message = path, line, field, reason, message


def get_field(obj, path: str):
  """obj['a']['b'][1] for path 'a.b.1'; KeyError(path) when any step is missing."""
  value = obj
  for key in path.split("."):
    if isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
      value = value[int(key)]
    elif isinstance(value, dict) and key in value:
      value = value[key]
    else:
      raise KeyError(path)
  return value


def read_jsonl(path, fields: dict, *, skip_bad_records: bool = False, keep: Callable | None = None,
               report: dict | None = None) -> Iterator[dict]:
  """Yields {name: obj[field]} for each line of `path`, plus `_line` (1-based line number).

  Args:
    fields: our name -> the file's field (dotted paths reach into nested objects:
      'ground_truth.answer', 'messages.1.content'). A value of None means "keep the
      whole object" under that name.
    skip_bad_records: count and log bad lines instead of raising BadRecordError.
    keep: optional predicate on the raw object; lines it rejects are skipped and
      counted as 'filtered' (e.g. PoT's few-shot 'demonstration' lines).
    report: a dict that receives counts 'read', 'bad', 'filtered', the first bad
      lines' messages under 'bad_examples' and bad lines per reason under 'bad_reasons'.
  """
  report = report if report is not None else {}
  for key in ("read", "bad", "filtered"):
    report.setdefault(key, 0)
  report.setdefault("bad_examples", [])
  path = str(path)
  with open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        obj = parse_line(path, line_number, line)
        if keep is not None and not keep(obj):
          report["filtered"] += 1
          continue
        record = {name: obj if field is None else _field(path, line_number, obj, field)
                  for name, field in fields.items()}
      except BadRecordError as error:
        count_bad(report, error, skip_bad_records)
        continue
      report["read"] += 1
      record["_line"] = line_number
      yield record


def count_bad(report: dict, error: BadRecordError, skip_bad_records: bool) -> None:
  """Raises `error`, or (skip_bad_records) counts and logs it in `report`. Converters call this
  for records that parse but make no sense (a GSM8K solution without '####')."""
  if not skip_bad_records:
    raise error
  report["bad"] = report.get("bad", 0) + 1
  reasons = report.setdefault("bad_reasons", {})
  reasons[error.reason] = reasons.get(error.reason, 0) + 1
  examples = report.setdefault("bad_examples", [])
  if len(examples) < 10:
    examples.append(str(error))
  logging.warning("skipping bad record: %s", error)


def json_objects(path, lines=None) -> Iterator[tuple[int, dict]]:
  """(line number, object) for each non-blank line of the JSONL file `path` (or of `lines`,
  read from it), BadRecordError naming path:line for a line that is not a JSON object. The
  one JSONL line parser; `read_jsonl` adds field selection and skipping on top."""
  if lines is None:
    with open(path, encoding="utf-8") as f:
      yield from json_objects(path, f)
    return
  for line_number, line in enumerate(lines, start=1):
    if line.strip():
      yield line_number, parse_line(path, line_number, line)


def parse_line(path, line_number, line: str, *, max_depth: int = MAX_DEPTH,
               max_number_digits: int = MAX_NUMBER_DIGITS) -> dict:
  """One JSONL line -> dict, or BadRecordError naming path:line and the reason (see the module doc)."""
  try:
    obj = _decoder(max_number_digits).decode(line)
  except json.JSONDecodeError as error:
    raise BadRecordError(path, line_number, f"not JSON ({error.msg} at column {error.colno})",
                         reason="bad_json") from None
  except _NumberTooLong as error:
    raise BadRecordError(path, line_number, f"a number of {error.args[0]} digits (limit {max_number_digits})",
                         reason="json_number_too_long") from None
  except RecursionError:
    raise BadRecordError(path, line_number, "nested deeper than Python's recursion limit",
                         reason="json_too_deep") from None
  if not isinstance(obj, dict):
    raise BadRecordError(path, line_number, f"expected a JSON object, got {type(obj).__name__}",
                         reason="not_a_json_object")
  # Depth can exceed max_depth only if the line has more than max_depth brackets: a C-speed count first.
  if line.count("[") + line.count("{") > max_depth and _depth_exceeds(obj, max_depth):
    raise BadRecordError(path, line_number, f"nested deeper than {max_depth} levels", reason="json_too_deep")
  return obj


class _NumberTooLong(ValueError):
  pass


_DECODERS = {}


def _decoder(max_number_digits: int) -> json.JSONDecoder:
  """json.loads's decoder with an integer hook that refuses long literals before int() sees them."""
  if max_number_digits not in _DECODERS:
    def parse_int(literal: str) -> int:
      if len(literal.lstrip("-")) > max_number_digits:
        raise _NumberTooLong(len(literal.lstrip("-")))
      return int(literal)
    _DECODERS[max_number_digits] = _Decoder(parse_int=parse_int)
  return _DECODERS[max_number_digits]


class _Decoder(json.JSONDecoder):
  def decode(self, s):
    if s.startswith("\ufeff"):                           # as json.loads
      raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", s, 0)
    return super().decode(s)


def _depth_exceeds(obj, max_depth: int) -> bool:
  """Whether lists/dicts nest more than max_depth levels (iterative: the object may be ~1000 deep)."""
  stack = [(obj, 1)]
  while stack:
    value, depth = stack.pop()
    if depth > max_depth:
      return True
    children = value.values() if isinstance(value, dict) else value
    stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
  return False


def _field(path, line_number, obj, field):
  try:
    return get_field(obj, field)
  except KeyError:
    raise BadRecordError(path, line_number, f"missing (keys: {sorted(obj)})", field) from None
