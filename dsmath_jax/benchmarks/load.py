"""Reading a benchmark's questions through its definition, and its texts for decontamination.

An empty, missing or unreadable benchmark file is an error, never a benchmark of 0 questions;
so is an id that appears twice (two samples would be merged into one question).
"""
import os

from dsmath_jax.benchmarks.catalog import Benchmark, get


def questions(benchmark: Benchmark | str, path: str, *, limit: int = 0) -> list[dict]:
  """The question records of `benchmark` read from `path` (its released file), at most `limit`
  (the first ones in file order; 0 = all)."""
  benchmark = get(benchmark) if isinstance(benchmark, str) else benchmark
  if not os.path.isfile(path):
    raise FileNotFoundError(f"benchmark {benchmark.name!r}: {path} not found (the released file "
                            f"{benchmark.path} under the data root)")
  records, seen = [], {}
  for record in benchmark.read(path, benchmark.name):
    if record["id"] in seen:
      raise ValueError(f"{path}: benchmark {benchmark.name!r} question id {record['id']!r} appears twice "
                       f"(records {seen[record['id']]} and {len(records) + 1})")
    seen[record["id"]] = len(records) + 1
    records.append(record)
    if limit and len(records) >= limit:
      break
  if not records:
    raise ValueError(f"{path}: benchmark {benchmark.name!r} has no questions")
  return records


def decontamination_texts(benchmark: Benchmark | str, path: str) -> list[tuple[str, str]]:
  """(benchmark name, text) pairs a training text must not share a 10-gram with (§2.1): each
  problem statement, each option text of multiple choice, and each reference solution."""
  benchmark = get(benchmark) if isinstance(benchmark, str) else benchmark
  return _texts(benchmark.name, questions(benchmark, path))


def _texts(name: str, records: list[dict]) -> list[tuple[str, str]]:
  texts = []
  for record in records:
    texts.append((name, record["problem"]))
    texts += [(name, option) for option in record["options"].values()]
    if record["solution"]:
      texts.append((name, record["solution"]))
  return texts


def decontamination_set(specs) -> tuple[list[tuple[str, str]], dict]:
  """(benchmark name, text) pairs of every benchmark in `specs`, and what was used.

  specs: [{"name": a benchmark of catalog.py, "path": its file, "optional": bool}, ...]. A
  missing file is an error unless the spec is optional; the status lists each benchmark's path,
  questions and texts, or `missing` (so a report says what the data were checked against).
  """
  texts, status = [], {}
  for spec in specs:
    name, path, optional = spec["name"], spec["path"], bool(spec.get("optional", False))
    unknown = set(spec) - {"name", "path", "optional"}
    if unknown:
      raise ValueError(f"decontamination benchmark {name!r}: unknown keys {sorted(unknown)} (name, path, optional)")
    if not os.path.isfile(path):
      if not optional:
        raise FileNotFoundError(f"decontamination benchmark {name!r}: {path} not found (mark it optional to skip it)")
      status[name] = dict(path=path, questions=0, texts=0, missing=True)
      continue
    records = questions(name, path)
    found = _texts(name, records)
    texts += found
    status[name] = dict(path=path, questions=len(records), texts=len(found))
  return texts, status
