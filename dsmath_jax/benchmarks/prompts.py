"""The prompt a benchmark question is asked with (paper §2.2.1, §3.2, §4.2).

Base models: the paper's fixed few-shot chain-of-thought prompt of the benchmark (catalog.FewShot,
DeepSeek-Math's `few_shot_prompts/*.py`: exemplars, then the question under the same header).
Instruct/RL models: zero-shot, "User: {question}\\n<instruction>\\n\\nAssistant:", where the
instruction asks for step-by-step reasoning ("cot") or for reasoning with programs ("tool"), in
English or Chinese as the benchmark is (templates.py, shared with SFT and RL).
"""
from dsmath_jax import templates
from dsmath_jax.benchmarks.catalog import Benchmark


def fewshot_prompt(benchmark: Benchmark, question: str) -> str:
  """format_prompt(question, "").rstrip() of the benchmark's few-shot class."""
  if benchmark.fewshot is None:
    raise ValueError(f"benchmark {benchmark.name!r} has no few-shot prompt (the paper evaluates it zero-shot)")
  shot = benchmark.fewshot
  return shot.template.format(exemplars=shot.text(), question=question.strip()).rstrip()


def render(benchmark: Benchmark, record: dict, *, template: str = "cot", fewshot: bool = False) -> str:
  """The prompt text of one question record."""
  if fewshot:
    return fewshot_prompt(benchmark, record["question"])
  return templates.render(record["question"], template, benchmark.language)


def stop_strings(benchmark: Benchmark, fewshot: bool) -> tuple[str, ...]:
  return benchmark.fewshot.stop if fewshot and benchmark.fewshot else ()


def truncate(text: str, stops: tuple[str, ...]) -> str:
  """A continuation up to its first stop string (the start of a next exemplar)."""
  cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
  return text[:cut]
