"""Task `dataset`: convert the configured sources and write them as TFDS ArrayRecord.

  python -m dsmath_jax.main --config=configs/dataset.py --workdir=runs/data

Writes `dsmath_questions/<source>` (benchmark and RL questions, splits as configured)
and `dsmath_sft/<source>` (SFT records, split train) under config.data_dir (default
WORKDIR/tfds), then prints and saves (WORKDIR/dataset_counts.json) the counts per source,
split and format: records read, bad lines skipped, programs dropped and why, questions
removed by decontamination (paper §2.1 rule against the benchmark test splits; applied to
every SFT record and to the `train` split of every question source), written.
"""
import collections
import dataclasses
import json
import os
import pathlib
import shutil
from collections.abc import Mapping

from absl import logging

from dsmath_jax import atomic, config_types
from dsmath_jax.benchmarks import load as benchmarks_load
from dsmath_jax.datasets import builders, decontamination, generic, gsm8k, hendrycks_math, mathcoder, pot, tora

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def resolve(path: str) -> str:
  """Config paths may be relative to the repository root ('../shared/data/...', 'dsmath_jax/assets/...')."""
  path = os.path.expanduser(path)
  return path if os.path.isabs(path) else str((REPO_ROOT / path).resolve())


@dataclasses.dataclass(frozen=True)
class QuestionSource:
  """One entry of `config.questions`: benchmark / RL questions -> dsmath_questions/<name>."""
  reader: str                    # "gsm8k" | "math" | "jsonl"
  files: Mapping[str, str]       # split -> file (absolute or relative to the repository root)
  fields: Mapping[str, str] = dataclasses.field(default_factory=dict)   # jsonl: {ours: theirs}
  answer_from: str = "field"     # jsonl: where the answer is read (generic.questions)


@dataclasses.dataclass(frozen=True)
class SftSource:
  """One entry of `config.sft`: SFT records -> dsmath_sft/<name> (split train)."""
  reader: str                    # "gsm8k_cot" | "math_cot" | "pot" | "mathcoder" | "tora" | "jsonl"
  file: str                      # absolute or relative to the repository root
  fields: Mapping[str, str] = dataclasses.field(default_factory=dict)   # jsonl: {ours: theirs}
  format: str = "cot"            # jsonl: "cot" | "program" | "tool"


@dataclasses.dataclass(frozen=True)
class DecontaminationConfig:
  """`config.decontamination` (paper §2.1 rule)."""
  benchmarks: tuple[str, ...]    # "source/split" question splits every train record is checked against
  sft_ngram: int                 # SFT: exact match + this n-gram rule (0: exact only)
  questions_ngram: int           # RL questions: same (0: exact only)
  sets: tuple[Mapping, ...] = ()  # the paper's list (§2.1) via dsmath_jax/benchmarks: name, path, optional


@dataclasses.dataclass(frozen=True)
class ExecutionConfig:
  """`config.execution`: the sandbox that runs PoT/MathCoder/ToRA programs."""
  timeout_s: float               # per program
  workers: int                   # sandbox processes


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  """configs/dataset.py, typed."""
  data_dir: str                                  # "" = WORKDIR/tfds
  skip_bad_records: bool                         # True: count and log bad JSONL lines, do not fail
  questions: Mapping[str, QuestionSource]
  sft: Mapping[str, SftSource]
  decontamination: DecontaminationConfig
  execution: ExecutionConfig

  @classmethod
  def from_config(cls, config) -> "DatasetConfig":
    fields = config_types.strict_fields(cls, config, where="config", ignore=("task",))
    return cls(
        data_dir=fields["data_dir"], skip_bad_records=fields["skip_bad_records"],
        questions={name: config_types.from_section(QuestionSource, spec, where=f"config.questions.{name}")
                   for name, spec in fields["questions"].items()},
        sft={name: config_types.from_section(SftSource, spec, where=f"config.sft.{name}")
             for name, spec in fields["sft"].items()},
        decontamination=config_types.from_section(DecontaminationConfig, fields["decontamination"],
                                                  where="config.decontamination"),
        execution=config_types.from_section(ExecutionConfig, fields["execution"], where="config.execution"))


def _question_records(spec, path, split, source, skip, report):
  if spec.reader == "gsm8k":
    return list(gsm8k.questions(path, split, source=source, skip_bad_records=skip, report=report))
  if spec.reader == "math":
    return list(hendrycks_math.questions(path, split, source=source, skip_bad_records=skip, report=report))
  if spec.reader == "jsonl":
    return list(generic.questions(path, split, source=source, fields=dict(spec.fields),
                                  answer_from=spec.answer_from,
                                  skip_bad_records=skip, report=report))
  raise ValueError(f"questions source {source!r}: unknown reader {spec.reader!r} (gsm8k, math, jsonl)")


def _sft_records(spec, path, source, execution, skip, report):
  """(records, drop counts by reason)."""
  run = dict(timeout_s=execution.timeout_s, workers=execution.workers)
  common = dict(source=source, skip_bad_records=skip, report=report)
  if spec.reader == "gsm8k_cot":
    return list(gsm8k.cot_records(path, **common)), collections.Counter()
  if spec.reader == "math_cot":
    return list(hendrycks_math.cot_records(path, **common)), collections.Counter()
  if spec.reader == "pot":
    return pot.records(path, **run, **common)
  if spec.reader == "mathcoder":
    return mathcoder.records(path, **run, **common)
  if spec.reader == "tora":
    return tora.records(path, **run, **common)
  if spec.reader == "jsonl":
    return generic.sft_records(path, fields=dict(spec.fields), format=spec.format, **run, **common)
  raise ValueError(f"sft source {source!r}: unknown reader {spec.reader!r} "
                   "(gsm8k_cot, math_cot, pot, mathcoder, tora, jsonl)")


def typed_config(config) -> DatasetConfig:
  """The door: every key of the config read once, unknown or missing keys refused by name."""
  return DatasetConfig.from_config(config)


def run(config, workdir: str) -> list[dict]:
  """Task `dataset`: typed values (typed_config), then `build`."""
  config_types.write_config(config, workdir)
  return build(typed_config(config), workdir)


def build(config: DatasetConfig, workdir: str) -> list[dict]:
  """Builds every configured source; returns the count rows it printed.

  Nothing half-built looks finished (issue 16): every source is built under a staging folder
  beside data_dir; only when all are complete does the old dataset_counts.json go, each
  source's folder replace its previous version, and the new counts get written, last. A run
  that fails leaves the previous datasets and their counts as they were; one killed during
  the final moves leaves no dataset_counts.json.
  """
  data_dir = resolve(config.data_dir) if config.data_dir else os.path.join(workdir, "tfds")
  staging = os.path.join(os.path.dirname(data_dir), f".{os.path.basename(data_dir)}.tmp-{os.getpid()}")
  counts = os.path.join(workdir, "dataset_counts.json")
  shutil.rmtree(staging, ignore_errors=True)
  try:
    rows, built, paper_sets = _build_into(config, staging)
    if os.path.exists(counts):
      os.remove(counts)
    for folder in built:                           # dsmath_*/<source>/<version>, complete
      final = os.path.join(data_dir, os.path.relpath(folder, staging))
      os.makedirs(os.path.dirname(final), exist_ok=True)
      atomic.replace_dir(folder, final)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  with atomic.write_file(counts) as f:
    json.dump(dict(data_dir=data_dir, rows=rows, decontamination_sets=paper_sets), f, indent=1)
  print(format_table(rows))
  logging.info("datasets written under %s", data_dir)
  return rows


def _build_into(config: DatasetConfig, data_dir: str) -> tuple[list[dict], list[str], list]:
  """Builds every source under `data_dir`: (count rows, the folders written, the paper's sets)."""
  skip = config.skip_bad_records
  built = []
  rows = []

  questions = {}                                   # source -> {split: [record]}
  for source, spec in config.questions.items():
    questions[source] = {}
    for split, path in spec.files.items():
      report = {}
      questions[source][split] = _question_records(spec, resolve(path), split, source, skip, report)
      rows.append(dict(dataset=f"dsmath_questions/{source}", split=split, format="question",
                       file=resolve(path), read=report["read"], bad=report["bad"],
                       bad_examples=report["bad_examples"], dropped=report.get("dropped", {})))

  benchmark = [(name, record["question"]) for name in config.decontamination.benchmarks
               for record in _benchmark_split(questions, name)]
  paper_texts, paper_sets = benchmarks_load.decontamination_set([dict(b) for b in config.decontamination.sets])
  benchmark += paper_texts
  rules = config.decontamination
  question_index = (decontamination.BenchmarkIndex(benchmark, ngram=rules.questions_ngram)
                    if benchmark else None)
  sft_index = decontamination.BenchmarkIndex(benchmark, ngram=rules.sft_ngram) if benchmark else None

  for row in rows:
    source, split = row["dataset"].split("/")[1], row["split"]
    if split != "train" or f"{source}/{split}" in config.decontamination.benchmarks:
      row["removed"] = {"exact": 0, "ngram": 0, "examples": []}      # evaluation splits stay whole
    else:                                          # RL questions: keep them off the benchmarks
      kept, removed = decontamination.decontaminate(questions[source][split], question_index)
      questions[source][split] = kept
      row["removed"] = removed
    row["written"] = len(questions[source][split])
  for source, splits in questions.items():
    built.append(builders.write(builders.DsmathQuestions, source, splits, data_dir,
                                description=f"{source}: {dict(config.questions[source].files)}"))

  for source, spec in config.sft.items():
    report = {}
    records, dropped = _sft_records(spec, resolve(spec.file), source, config.execution, skip, report)
    dropped.update(report.get("dropped", {}))
    kept, removed = decontamination.decontaminate(records, sft_index)
    built.append(builders.write(builders.DsmathSft, source, {"train": kept}, data_dir,
                                description=f"{source}: {spec.file} ({spec.reader})"))
    formats = collections.Counter(record["format"] for record in kept)
    rows.append(dict(dataset=f"dsmath_sft/{source}", split="train", format="/".join(sorted(formats)) or "-",
                     file=resolve(spec.file), read=report["read"], bad=report["bad"],
                     bad_examples=report["bad_examples"], dropped=dict(dropped), removed=removed,
                     written=len(kept)))
  return rows, built, paper_sets


def _benchmark_split(questions, name):
  source, _, split = name.partition("/")
  if source not in questions or split not in questions[source]:
    raise ValueError(f"decontamination benchmark {name!r} is not a configured question split; "
                     f"have {[f'{s}/{p}' for s in questions for p in questions[s]]}")
  return questions[source][split]


def format_table(rows: list[dict]) -> str:
  header = ("dataset", "split", "format", "read", "bad", "dropped", "decontam exact/ngram", "written")
  lines = [header]
  for row in rows:
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(row["dropped"].items())) or "-"
    removed = f"{row['removed']['exact']}/{row['removed']['ngram']}"
    lines.append((row["dataset"], row["split"], row["format"], str(row["read"]), str(row["bad"]),
                  dropped, removed, str(row["written"])))
  widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
  return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in lines)
