"""Record sources for the loaders: a TFDS dataset, a JSONL file, or generated arithmetic.

A source spec (`SourceSpec`, one entry of `config.data.sources`) names one of:
  tfds="dsmath_sft/gsm8k_cot", split="train", data_dir=".../tfds"   records built by the
                                           `dataset` or `corpus` task (dsmath_jax.datasets)
  jsonl="/path/train.jsonl"                                  any JSONL file
  generated="arithmetic", size=2000                          needs no files: `:tiny` configs
plus `fields`: {our field: record field}, e.g. {"question": "question", "response": "answer"}
for GSM8K's JSONL. Every source yields dicts of python values with our field names.
"""
import dataclasses
import os
import random
from collections.abc import Mapping

import grain

from dsmath_jax import config_types


@dataclasses.dataclass(frozen=True)
class SourceSpec:
  """One entry of `config.data.sources` (or `config.eval.sources`): where records come from."""
  tfds: str = ""                 # TFDS name, e.g. "dsmath_sft/gsm8k_cot"
  split: str = "train"           # its split
  data_dir: str = ""             # its data_dir ("" = TFDS's default); "~" expanded
  jsonl: str = ""                # a JSONL file instead
  generated: str = ""            # "arithmetic": generated records, no files
  size: int = 2000               # generated: number of records
  seed: int = 0                  # generated: generator seed
  weight: float | None = None    # mixture weight; None = by number of records; 0 drops the source
  fields: Mapping[str, str] = dataclasses.field(default_factory=dict)   # {our field: record field}

  @classmethod
  def from_config(cls, section, where: str) -> "SourceSpec":
    return config_types.from_section(cls, section, where=where)


def source_specs(section, where: str) -> dict[str, SourceSpec]:
  """{name: SourceSpec} of a `sources` section (ConfigDict or dict of dicts)."""
  return {name: SourceSpec.from_config(spec, where=f"{where}.{name}")
          for name, spec in config_types.plain(section or {}).items()}


def source_paths(specs: Mapping[str, SourceSpec], where: str) -> list[tuple[str, str]]:
  """(config key, path) of the files and TFDS folders `specs` read (config_types.check_paths)."""
  return [(f"{where}.{name}.{field}", getattr(spec, field))
          for name, spec in sorted(specs.items()) for field in ("jsonl", "data_dir")]


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


def open_source(spec: SourceSpec) -> grain.MapDataset:
  """grain.MapDataset of records (dicts with our field names) for one source spec."""
  fields = dict(spec.fields)
  if spec.tfds:
    from dsmath_jax import datasets as datasets_lib   # the data engineer's builders
    source = datasets_lib.load_source(spec.tfds, spec.split,
                                      os.path.expanduser(spec.data_dir) if spec.data_dir else None)
    dataset = grain.MapDataset.source(source)
    if fields:
      where = f"tfds {spec.tfds}/{spec.split}"
      dataset = dataset.map(lambda record: _rename(record, fields, where))
    return dataset
  if spec.jsonl:
    return grain.MapDataset.source(read_jsonl(spec.jsonl, fields))
  if spec.generated == "arithmetic":
    return grain.MapDataset.source(arithmetic_records(spec.size, spec.seed))
  raise ValueError(f"data source {spec} names no tfds=, jsonl= or generated='arithmetic'")
