"""The benchmark evaluator a trainer calls every `benchmark_eval.every_steps` (train/benchmark_eval.py).

The entry point hands `make_evaluator` to the SFT/pretrain and GRPO tasks (evaluation ranks above
training, so training never imports it). Each benchmark's subset is read once, at the start; each
call samples it greedily with the run's params under the run's mesh (the jitted sampler, compiled
once per shape), grades it (evaluate.evaluate_benchmark) and writes the graded samples to
WORKDIR/bench/<name>/step_<N>.jsonl (a gs:// WORKDIR included: dsmath_jax.paths), so a logged
accuracy can be regraded and read.
"""
import json

import jax

from dsmath_jax import atomic, paths
from dsmath_jax.benchmarks import load
from dsmath_jax.eval import evaluate
from dsmath_jax.eval.settings import GraderConfig, PromptConfig, SamplingConfig
from dsmath_jax.train.benchmark_eval import BenchmarkEvalConfig, Evaluator

PREFIX = "bench/"


def samples_path(workdir: str, name: str, step: int) -> str:
  return paths.join(workdir, "bench", name, f"step_{step}.jsonl")


def make_evaluator(config: BenchmarkEvalConfig, model_config, tokenizer, mesh, rules, workdir: str) -> Evaluator:
  """evaluate(params, step) -> {"bench/<name>/accuracy": %, "bench/<name>/accuracy_stderr": %, ...}."""
  subsets = {name: load.questions(name, config.path(name), limit=config.max_questions) for name in config.benchmarks}
  prompt = PromptConfig(template=config.template)
  sampling = SamplingConfig(greedy=True, num_samples=1, max_new_tokens=config.max_new_tokens,
                            batch_size=config.batch_size)

  def evaluate_at(params, step: int) -> dict:
    metrics = {}
    for name, subset in subsets.items():
      values, rows = evaluate.evaluate_benchmark(params, model_config, tokenizer, name, subset, mesh, rules,
                                                 prompt=prompt, sampling=sampling, grader=GraderConfig(workers=1))
      metrics.update({PREFIX + key: value for key, value in values.items() if value is not None})
      if jax.process_index() == 0:     # every host samples and grades the same subset; one writes
        _write_rows(samples_path(workdir, name, step), rows)
    return metrics

  return evaluate_at


def _write_rows(path: str, rows: list[dict]) -> None:
  """One JSON line per graded sample, written whole or not at all (atomic.write_file; `path` may be a URL)."""
  with atomic.write_file(path, encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
