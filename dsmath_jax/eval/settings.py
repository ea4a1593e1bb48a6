"""The eval task's typed config: what `run` reads from its ConfigDict, once, at the door.

configs/eval.py is the full description of a run; each field here has the same default as
there (or none: required) and says what it means.
"""
import dataclasses
import os

from dsmath_jax import config_types
from dsmath_jax.benchmarks import catalog


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """config.data: which benchmarks, read from where."""
  benchmarks: tuple[str, ...]                 # names in benchmarks/catalog.py ("jsonl": a file of your own)
  root: str                                   # data root; a benchmark's file is root/<definition.path>
  paths: dict = dataclasses.field(default_factory=dict)   # {name: file} overrides (required for "jsonl")
  limit: int = 0                              # first N questions of each benchmark (0 = all)
  name: str = ""                              # output folder of a single benchmark ("" = its name)
  predictions_id_field: str = "id"            # predictions mode: the question id field of a line
  predictions_output_field: str = "output"    # predictions mode: the model output field of a line

  @classmethod
  def from_config(cls, section) -> "DataConfig":
    data = config_types.from_section(cls, section, where="config.data")
    for name in data.benchmarks:
      catalog.get(name)
    if not data.benchmarks:
      raise ValueError("config.data.benchmarks is empty: name at least one benchmark")
    if data.name and len(data.benchmarks) > 1:
      raise ValueError("config.data.name names the folder of a single benchmark; several are given")
    if "jsonl" in data.benchmarks and "jsonl" not in data.paths:
      raise ValueError("benchmark 'jsonl' needs its file: --config.data.paths.jsonl=FILE")
    unknown = set(data.paths) - set(data.benchmarks)
    if unknown:
      raise ValueError(f"config.data.paths names benchmarks that are not run: {sorted(unknown)}")
    return data

  def path(self, name: str) -> str:
    return self.paths.get(name) or os.path.join(self.root, catalog.get(name).path)

  def folder(self, name: str) -> str:
    return self.name or name


@dataclasses.dataclass(frozen=True)
class PromptConfig:
  """config.prompt: how each question is asked (benchmarks/prompts.py)."""
  template: str = "cot"          # cot | tool: zero-shot instruction; "tool" runs programs (the tool loop)
  fewshot: bool = False          # the paper's fixed few-shot CoT prompt instead (base models, Tables 2-3)
  chat: bool = False             # zero-shot only: the user turn through the checkpoint's chat template

  @classmethod
  def from_config(cls, section) -> "PromptConfig":
    prompt = config_types.from_section(cls, section, where="config.prompt")
    if prompt.template not in ("cot", "tool"):
      raise ValueError(f"config.prompt.template must be 'cot' or 'tool', got {prompt.template!r}")
    if prompt.fewshot and (prompt.chat or prompt.template == "tool"):
      raise ValueError("config.prompt.fewshot is plain-text chain of thought: it takes neither chat nor 'tool'")
    return prompt

  @property
  def tool(self) -> bool:
    return self.template == "tool" and not self.fewshot


@dataclasses.dataclass(frozen=True)
class GraderConfig:
  """config.grader: how answers are judged (grading/)."""
  workers: int = 2               # grading processes (sympy under a time limit)
  timeout_s: float = 5.0         # per comparison; over = incorrect, listed in the report
  second_opinion: bool = False   # also ask math-verify; the report lists where it disagrees
  memory_mb: int = 4096          # per grading process
  paper_compat: bool = False     # DeepSeek-Math's own rules (to compare with its published numbers)

  @classmethod
  def from_config(cls, section) -> "GraderConfig":
    return config_types.from_section(cls, section, where="config.grader")


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  """config.sampling: how outputs are drawn (paper: greedy; Fig. 7: 64 samples at T=0.7)."""
  num_samples: int = 1           # outputs per question (maj@k, pass@k for k up to it)
  greedy: bool = True            # argmax; ignores temperature/top_p/top_k
  temperature: float = 0.7
  top_p: float = 1.0
  top_k: int = 0                 # 0 = no top-k
  max_new_tokens: int = 1024
  batch_size: int = 64           # rows per sampler call

  @classmethod
  def from_config(cls, section) -> "SamplingConfig":
    return config_types.from_section(cls, section, where="config.sampling")


