"""Benchmark accuracy during training (`config.benchmark_eval`): when, on what, and the callback's contract.

SFT, pretraining and GRPO can grade a held-out benchmark subset every N steps (greedy, the
paper's zero-shot prompts of §3.2) and log `bench/<name>/accuracy` beside the training metrics,
so metrics.jsonl, TensorBoard and the curves hold both. The evaluation itself (prompts, sampler,
grader) is the `eval` stage, which ranks above training (tests/test_architecture.py): the entry
point hands the task an `EvaluatorFactory` (dsmath_jax/eval/during_training.py make_evaluator),
and the loops below call the `Evaluator` it builds. Off by default (every_steps = 0).
"""
import dataclasses
import os
from collections.abc import Callable

from dsmath_jax import config_types
from dsmath_jax.benchmarks import catalog

TEMPLATES = ("cot", "tool")

# (params, step) -> {"bench/<name>/accuracy": %, ...}; writes the graded samples of that step.
Evaluator = Callable[[object, int], dict]


@dataclasses.dataclass(frozen=True)
class BenchmarkEvalConfig:
  """config.benchmark_eval: a held-out benchmark subset graded during training (not the `eval` task)."""
  every_steps: int = 0                   # steps between evaluations (and at the last step); 0 = off
  benchmarks: tuple[str, ...] = ("gsm8k",)   # names in benchmarks/catalog.py
  root: str = ""                         # data root: a benchmark's file is root/<its catalog path>
  paths: dict = dataclasses.field(default_factory=dict)   # {name: file} overrides of root
  max_questions: int = 64                # the first N questions of each benchmark (a fixed subset)
  max_new_tokens: int = 512              # greedy response budget
  batch_size: int = 64                   # prompts per sampler call
  template: str = "cot"                  # cot | tool: the zero-shot prompt (§3.2); tool runs programs

  @classmethod
  def from_config(cls, section, where: str = "config.benchmark_eval") -> "BenchmarkEvalConfig":
    """`section` may be None (a config without the section): the defaults, i.e. off."""
    bench = config_types.from_section(cls, section, where=where)
    config_types.require(bench, where, positive=("max_questions", "max_new_tokens", "batch_size"),
                         non_negative=("every_steps",))
    if bench.template not in TEMPLATES:
      raise ValueError(f"{where}.template={bench.template!r}; choose one of {TEMPLATES}")
    unknown = [name for name in bench.benchmarks if name not in catalog.BENCHMARKS]   # checked even when off
    if unknown:
      raise ValueError(f"{where}.benchmarks: unknown benchmark(s) {unknown}; known: {sorted(catalog.BENCHMARKS)}")
    unknown = set(bench.paths) - set(bench.benchmarks)
    if unknown:
      raise ValueError(f"{where}.paths names benchmarks that are not run: {sorted(unknown)}")
    if bench.every_steps:
      if not bench.benchmarks:
        raise ValueError(f"{where}.benchmarks is empty: name at least one benchmark (or every_steps=0)")
      missing = [name for name in bench.benchmarks if not bench.paths.get(name) and not bench.root]
      if missing:
        raise ValueError(f"{where}: no file for {missing}: set {where}.root or {where}.paths.<name>")
    return bench

  def path(self, name: str) -> str:
    return self.paths.get(name) or os.path.join(self.root, catalog.get(name).path)

  def input_paths(self, where: str = "config.benchmark_eval") -> list[tuple[str, str]]:
    """(config key, path) of the benchmark files read when on (config_types.check_paths)."""
    if not self.every_steps:
      return []
    return [(f"{where}.paths.{name}" if self.paths.get(name) else f"{where}.root", self.path(name))
            for name in self.benchmarks]

  def due(self, done: int, last_step: int) -> bool:
    """Is an evaluation due after `done` (>= 1) steps: every `every_steps`, and at the last step."""
    return bool(self.every_steps) and (done % self.every_steps == 0 or done == last_step)

  def metric_keys(self) -> tuple[str, ...]:
    """The accuracy keys the evaluations log (for the console line and the curves)."""
    return tuple(f"bench/{name}/accuracy" for name in self.benchmarks) if self.every_steps else ()


# (config, model config, tokenizer, mesh, rules, workdir) -> Evaluator.
EvaluatorFactory = Callable[..., Evaluator]


def check_factory(config: BenchmarkEvalConfig, factory: EvaluatorFactory | None) -> None:
  """At the door: an evaluation that is on needs the factory the entry point hands the task."""
  if config.every_steps and factory is None:
    raise ValueError(f"config.benchmark_eval.every_steps={config.every_steps} needs a benchmark evaluator: run "
                     "the task through dsmath_jax.main, or pass benchmark_evaluator="
                     "dsmath_jax.eval.during_training.make_evaluator to its run()")


def make_evaluator(config: BenchmarkEvalConfig, factory: EvaluatorFactory | None, model_config, tokenizer, mesh,
                   rules, workdir: str) -> Evaluator | None:
  """The run's Evaluator, or None when off."""
  if not config.every_steps:
    return None
  check_factory(config, factory)
  return factory(config, model_config, tokenizer, mesh, rules, workdir)
