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
import json
import os
import pathlib

from absl import logging

from dsmath_jax.benchmarks import load as benchmarks_load
from dsmath_jax.datasets import builders, decontamination, generic, gsm8k, hendrycks_math, mathcoder, pot, tora

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def resolve(path: str) -> str:
  """Config paths may be relative to the repository root ('../shared/data/...', 'dsmath_jax/assets/...')."""
  path = os.path.expanduser(path)
  return path if os.path.isabs(path) else str((REPO_ROOT / path).resolve())


def _question_records(spec, path, split, source, skip, report):
  if spec.reader == "gsm8k":
    return list(gsm8k.questions(path, split, source=source, skip_bad_records=skip, report=report))
  if spec.reader == "math":
    return list(hendrycks_math.questions(path, split, source=source, skip_bad_records=skip, report=report))
  if spec.reader == "jsonl":
    return list(generic.questions(path, split, source=source, fields=dict(spec.fields),
                                  answer_from=spec.get("answer_from", "field"),
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
    return generic.sft_records(path, fields=dict(spec.fields), format=spec.get("format", "cot"), **run, **common)
  raise ValueError(f"sft source {source!r}: unknown reader {spec.reader!r} "
                   "(gsm8k_cot, math_cot, pot, mathcoder, tora, jsonl)")


def run(config, workdir: str) -> list[dict]:
  """Builds every configured source; returns the count rows it printed."""
  data_dir = resolve(config.data_dir) if config.data_dir else os.path.join(workdir, "tfds")
  skip = config.skip_bad_records
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
  paper_texts, paper_sets = benchmarks_load.decontamination_set(config.decontamination.get("sets", ()))
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
    builders.write(builders.DsmathQuestions, source, splits, data_dir,
                   description=f"{source}: {dict(config.questions[source].files)}")

  for source, spec in config.sft.items():
    report = {}
    records, dropped = _sft_records(spec, resolve(spec.file), source, config.execution, skip, report)
    dropped.update(report.get("dropped", {}))
    kept, removed = decontamination.decontaminate(records, sft_index)
    builders.write(builders.DsmathSft, source, {"train": kept}, data_dir,
                   description=f"{source}: {spec.file} ({spec.reader})")
    formats = collections.Counter(record["format"] for record in kept)
    rows.append(dict(dataset=f"dsmath_sft/{source}", split="train", format="/".join(sorted(formats)) or "-",
                     file=resolve(spec.file), read=report["read"], bad=report["bad"],
                     bad_examples=report["bad_examples"], dropped=dict(dropped), removed=removed,
                     written=len(kept)))

  with open(os.path.join(workdir, "dataset_counts.json"), "w") as f:
    json.dump(dict(data_dir=data_dir, rows=rows, decontamination_sets=paper_sets), f, indent=1)
  print(format_table(rows))
  logging.info("datasets written under %s", data_dir)
  return rows


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
