"""One benchmark, end to end on values: prompts, outputs, grades, summary (paper §2.2.1, §3.2, §4.2).

`evaluate_benchmark` is what a trainer calls every N steps on a held-out subset (greedy by
default); the eval task calls `score_benchmark` for each benchmark of its table.
"""
from dsmath_jax.benchmarks import catalog
from dsmath_jax.benchmarks.catalog import Benchmark
from dsmath_jax.eval import generate, scoring
from dsmath_jax.eval.settings import GraderConfig, PromptConfig, SamplingConfig
from dsmath_jax.grading.grader import Grader
from dsmath_jax.sample.tool_loop import SandboxConfig, ToolConfig


def score_benchmark(benchmark: Benchmark, questions: list[dict], outputs: dict[str, list[str]], grader: Grader, *,
                    prompts: dict[str, str] | None = None, tool_run: bool = False,
                    progress=None) -> tuple[list[dict], dict]:
  """(sample rows, summary) of one benchmark's outputs; an error when no question has an output."""
  if not any(outputs.get(q["id"]) for q in questions):
    raise ValueError(f"benchmark {benchmark.name!r}: none of its {len(questions)} questions has an output to grade")
  return scoring.score(questions, outputs, grader, kind=benchmark.answer, language=benchmark.language,
                       program_accuracy=True if tool_run else None, progress=progress, prompts=prompts)


def evaluate_benchmark(params, model_config, tokenizer, benchmark: Benchmark | str, subset: list[dict], mesh, rules,
                       *, prompt: PromptConfig = PromptConfig(),
                       sampling: SamplingConfig = SamplingConfig(max_new_tokens=512),
                       grader: GraderConfig = GraderConfig(workers=1), tool: ToolConfig = ToolConfig(),
                       sandbox: SandboxConfig = SandboxConfig(), seed: int = 0) -> tuple[dict, list[dict]]:
  """(metrics, graded sample rows) of `params` on `subset` (question records of `benchmark`, from
  benchmarks.load.questions). Metrics: {"<name>/accuracy": %, "<name>/accuracy_stderr": %,
  "<name>/no_answer": fraction, ...}, flat for a trainer's metrics log; rows as scoring.score
  writes them (prompt, prediction, extracted, gold, correct). Greedy unless `sampling` says otherwise."""
  benchmark = catalog.get(benchmark) if isinstance(benchmark, str) else benchmark
  texts = generate.prompt_texts(benchmark, subset, prompt, tokenizer)
  outputs, stats = generate.generate_outputs(
      params, model_config, tokenizer, benchmark, subset, texts, prompt=prompt, sampling=sampling, tool=tool,
      sandbox=sandbox, seed=seed, mesh=mesh, rules=rules)
  with Grader(workers=grader.workers, timeout_s=grader.timeout_s, memory_mb=grader.memory_mb,
              paper_compat=grader.paper_compat) as pool:
    rows, summary = score_benchmark(benchmark, subset, outputs, pool, prompts=dict(zip([q["id"] for q in subset], texts)),
                                    tool_run=prompt.tool)
  name = benchmark.name
  metrics = {f"{name}/accuracy": summary["accuracy"], f"{name}/accuracy_stderr": summary["accuracy_stderr"],
             f"{name}/no_answer": summary["no_answer_samples"] / max(summary["samples"], 1),
             f"{name}/questions": summary["questions"], f"{name}/tokens_per_second": stats["tokens_per_second"]}
  if "program_accuracy" in summary:
    metrics[f"{name}/program_accuracy"] = summary["program_accuracy"]
  return metrics, rows

