"""Record sources for the loaders: a TFDS dataset, a JSONL file, or generated arithmetic.

A source spec is a small ConfigDict (one entry of `config.data.sources`):
  tfds="dsmath_sft/gsm8k_cot", split="train", data_dir=".../tfds"   records built by the
                                           `dataset` or `corpus` task (dsmath_jax.datasets)
  jsonl="/path/train.jsonl"                                  any JSONL file
  generated="arithmetic", size=2000                          needs no files: `:tiny` configs
plus `fields`: {our field: record field}, e.g. {"question": "question", "response": "answer"}
for GSM8K's JSONL. Every source yields dicts of python values with our field names.
"""
import os
import random

import grain


def _rename(record: dict, fields: dict, where: str) -> dict:
  out = dict(record)
  for ours, theirs in fields.items():
    if theirs not in record:
      raise KeyError(f"{where}: record has no field {theirs!r} (wanted as {ours!r}); "
                     f"fields present: {sorted(record)}")
    out[ours] = record[theirs]
  return out


def read_jsonl(path: str, fields: dict) -> list[dict]:
  """All records of a JSONL file, renamed by `fields` (other fields kept); errors name the
  file, line and field (dsmath_jax.jsonl, the one JSONL reader)."""
  from dsmath_jax import jsonl
  rows = jsonl.read_jsonl(path, {"_record": None, **fields})
  return [{**row.pop("_record"), **{k: v for k, v in row.items() if k != "_line"}} for row in rows]


def arithmetic_records(size: int, seed: int = 0) -> list[dict]:
  """Synthetic two-operand problems with worked answers: `text`, `question`, `response`.

  Learnable structure for CPU smoke runs and tests (the loss visibly drops in a few steps)."""
  rng = random.Random(seed)
  records = []
  for index in range(size):
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    op = rng.choice("+-*")
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    question = f"What is {a} {op} {b}?"
    response = f" {a} {op} {b} = {result}. The answer is \\boxed{{{result}}}."
    records.append(dict(id=f"arith-{seed}-{index}", question=question, response=response,
                        text=f"Question: {question}\nAnswer:{response}\n", source="arithmetic"))
  return records


def open_source(spec) -> grain.MapDataset:
  """grain.MapDataset of records (dicts with our field names) for one source spec."""
  fields = dict(spec.get("fields", None) or {})
  if spec.get("tfds", None):
    from dsmath_jax import datasets as datasets_lib   # the data engineer's builders
    data_dir = spec.get("data_dir", None)
    source = datasets_lib.load_source(spec.tfds, spec.get("split", "train"),
                                  os.path.expanduser(data_dir) if data_dir else None)
    dataset = grain.MapDataset.source(source)
    if fields:
      where = f"tfds {spec.tfds}/{spec.get('split', 'train')}"
      dataset = dataset.map(lambda record: _rename(record, fields, where))
    return dataset
  if spec.get("jsonl", None):
    return grain.MapDataset.source(read_jsonl(spec.jsonl, fields))
  if spec.get("generated", None) == "arithmetic":
    return grain.MapDataset.source(arithmetic_records(int(spec.get("size", 2000)),
                                                      int(spec.get("seed", 0))))
  raise ValueError(f"data source {dict(spec)} names no tfds=, jsonl= or generated='arithmetic'")
