"""The benchmarks of the paper's Tables 2, 3 and 5, one definition each.

A definition names the released file (relative to the data root, ../shared/data), its reader,
its language, the kind of answer (grading/kinds.py), the paper's fixed few-shot exemplars and
the numbers DeepSeek-Math published for it (`evaluation/evaluation_results.json`, percent).
Adding a benchmark is one more entry here; the eval task, the reports, the dataset builders and
the corpus decontamination read these definitions and need no change. miniF2F (formal Isabelle
proofs, Table 4) needs a proof checker and is out of scope.
"""
import dataclasses
import importlib.resources
from typing import Callable, Iterator

from dsmath_jax.benchmarks import readers


@dataclasses.dataclass(frozen=True)
class FewShot:
  """A fixed few-shot prompt (DeepSeek-Math `evaluation/few_shot_prompts/*.py`)."""
  exemplars: str               # asset file with the exemplar text (assets/benchmarks/)
  template: str                # what follows the exemplars: "{exemplars}" ... "{question}" ...
  stop: tuple[str, ...]        # generation stops at the next exemplar header

  def text(self) -> str:
    return importlib.resources.files("dsmath_jax").joinpath("assets", "benchmarks", self.exemplars).read_text("utf-8")


@dataclasses.dataclass(frozen=True)
class Benchmark:
  name: str                                    # configs/eval.py:<name>
  title: str                                   # the paper's column header
  path: str                                    # released file, relative to the data root
  read: Callable[..., Iterator[dict]]          # readers.<format>(path, name) -> question records
  answer: str = "math"                         # grading kind: math | choice | cloze | ocw
  language: str = "en"                         # en | zh: the zero-shot instruction's language
  fewshot: FewShot | None = None               # the paper's exemplars for base models
  decontaminate: bool = False                  # on the paper's decontamination list (§2.1)
  reported: dict = dataclasses.field(default_factory=dict)   # published accuracy (%) by model/prompt


_PROBLEM = "{exemplars}\n\nProblem:\n{question}\nSolution:"
_ZH_QUESTION = "{exemplars}\n\n\n问题 6.   {question}\n问题 6的解析:"

BENCHMARKS = {b.name: b for b in (
    Benchmark("gsm8k", "GSM8K", "deepseek_math_eval/gsm8k/test.jsonl", readers.gsm8k, decontaminate=True,
              fewshot=FewShot("fewshot_gsm8k.txt", "{exemplars}\n\n\nQ: {question}\nA:", ("\nQ:",)),
              reported={"DeepSeekMath-Base 7B (8-shot CoT)": 64.2, "DeepSeekMath-Instruct 7B (CoT)": 82.9,
                        "DeepSeekMath-RL 7B (CoT)": 88.2, "DeepSeekMath-RL 7B (tool)": 86.7}),
    Benchmark("math", "MATH", "math/test.jsonl", readers.hendrycks_math, decontaminate=True,
              fewshot=FewShot("fewshot_math.txt", "{exemplars}\n\nProblem:\n{question}\n\nSolution:", ("\nProblem:",)),
              reported={"DeepSeekMath-Base 7B (4-shot CoT)": 36.2, "DeepSeekMath-Instruct 7B (CoT)": 46.8,
                        "DeepSeekMath-RL 7B (CoT)": 51.7, "DeepSeekMath-RL 7B (tool)": 58.8}),
    Benchmark("math500", "MATH-500", "math/math500_test.jsonl", readers.hendrycks_math,
              fewshot=FewShot("fewshot_math.txt", "{exemplars}\n\nProblem:\n{question}\n\nSolution:", ("\nProblem:",))),
    Benchmark("sat", "SAT", "deepseek_math_eval/sat/test.jsonl", readers.sat, answer="choice",
              fewshot=FewShot("fewshot_sat.txt", _PROBLEM, ("\nProblem:",)),
              reported={"DeepSeekMath-Base 7B (4-shot CoT)": 84.4}),
    Benchmark("ocw", "OCW Courses", "deepseek_math_eval/ocw/test.jsonl", readers.ocw, answer="ocw",
              fewshot=FewShot("fewshot_ocw.txt", _PROBLEM, ("\nProblem:",)),
              reported={"DeepSeekMath-Base 7B (4-shot CoT)": 15.4}),
    Benchmark("mmlu_stem", "MMLU-STEM", "deepseek_math_eval/mmlu_stem/test.jsonl", readers.mmlu_stem, answer="choice",
              fewshot=FewShot("fewshot_mmlu_stem.txt", _PROBLEM, ("\nProblem:",)),
              reported={"DeepSeekMath-Base 7B (4-shot CoT)": 56.5}),
    Benchmark("cmath", "CMATH", "deepseek_math_eval/cmath/test.jsonl", readers.cmath, language="zh", decontaminate=True,
              fewshot=FewShot("fewshot_cmath.txt", "{exemplars}\n\n\n问题：{question}\n答案：", ("\n问题：",)),
              reported={"DeepSeekMath-Base 7B (6-shot CoT)": 71.7, "DeepSeekMath-Instruct 7B (CoT)": 84.6,
                        "DeepSeekMath-RL 7B (CoT)": 88.8, "DeepSeekMath-RL 7B (tool)": 87.6}),
    Benchmark("gaokao_mathcloze", "Gaokao-MathCloze", "deepseek_math_eval/agieval/gaokao-mathcloze.jsonl",
              readers.gaokao_cloze, answer="cloze", language="zh", decontaminate=True,
              fewshot=FewShot("fewshot_gaokao_mathcloze.txt", _ZH_QUESTION, ("\n问题 ",)),
              reported={"DeepSeekMath-Base 7B (5-shot CoT)": 20.3}),
    Benchmark("gaokao_mathqa", "Gaokao-MathQA", "deepseek_math_eval/agieval/gaokao-mathqa.jsonl",
              readers.gaokao_choice, answer="choice", language="zh", decontaminate=True,
              fewshot=FewShot("fewshot_gaokao_mathqa.txt", "{exemplars}\n\n\n问题 6.    {question}\n问题 6的解析:", ("\n问题 ",)),
              reported={"DeepSeekMath-Base 7B (5-shot CoT)": 35.3}),
    Benchmark("mgsm_zh", "MGSM-zh", "deepseek_math_eval/mgsm_zh/mgsm_zh.jsonl", readers.mgsm, language="zh",
              reported={"DeepSeekMath-Instruct 7B (CoT)": 73.2, "DeepSeekMath-RL 7B (CoT)": 79.6,
                        "DeepSeekMath-RL 7B (tool)": 78.4}),
    # A file of your own (question/answer fields); its path comes from the config.
    Benchmark("jsonl", "JSONL", "", readers.question_answer),
)}

# The table of configs/eval.py:paper, in the paper's order (MATH-500 is a subset of MATH).
PAPER_TABLE = ("gsm8k", "math", "sat", "ocw", "mmlu_stem", "cmath", "gaokao_mathcloze", "gaokao_mathqa", "mgsm_zh")
# The paper's decontamination list (§2.1): GSM8K, MATH, CMATH and the Gaokao/AGIEval math sets.
DECONTAMINATION = tuple(name for name, b in BENCHMARKS.items() if b.decontaminate)


def get(name: str) -> Benchmark:
  if name not in BENCHMARKS:
    raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
  return BENCHMARKS[name]
