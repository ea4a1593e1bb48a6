"""Few-shot chain-of-thought prompts for base checkpoints (paper §2.2.1 / §2.3, Table 3).

Base models are evaluated with few-shot CoT prompting: 8-shot on GSM8K (Wei et al. 2022)
and 4-shot on MATH (Lewkowycz et al. 2022, Minerva). The DeepSeekMath evaluation ships fixed
exemplars; ours are drawn from the *training* splits (GSM8K train, MATH train), reproducibly
from a seed, so they never overlap the test questions and the choice can be varied.

Each exemplar's solution ends with its final answer in \\boxed{}, so the model imitates the
format that `answer.extract_answer` reads. Generation stops at the start of the next exemplar
header (`stop_strings`); `truncate` cuts a continuation there.
"""
import random

from dsmath_jax.datasets import gsm8k, hendrycks_math

STYLES = {
    # style: (question header, answer header, default shots)
    "gsm8k": ("Question: ", "\nAnswer:", 8),
    "math": ("Problem:\n", "\n\nSolution:", 4),
}
MAX_SOLUTION_CHARS = 700   # short exemplars keep a 4-shot MATH prompt near 1.5K tokens


def stop_strings(style: str) -> tuple[str, ...]:
  header = STYLES[style][0].strip()
  return (f"\n\n{header}", f"\n{header}")


def truncate(text: str, style: str) -> str:
  """The continuation up to the next exemplar header (the model often starts one)."""
  cut = len(text)
  for stop in stop_strings(style):
    at = text.find(stop)
    if at >= 0:
      cut = min(cut, at)
  return text[:cut]


def select_exemplars(train_path: str, style: str, shots: int | None = None, seed: int = 0) -> list[dict]:
  """`shots` (question, solution) pairs from a training file, drawn with `seed`.

  GSM8K: solutions rewritten without calculator notes, ending "The answer is $\\boxed{n}$."
  MATH: solutions without [asy] figures, at most MAX_SOLUTION_CHARS, one per subject first.
  """
  shots = STYLES[style][2] if shots is None else shots
  if style == "gsm8k":
    pool = [dict(question=q["question"], solution=gsm8k.rewrite_solution(q["solution"]))
            for q in gsm8k.questions(train_path, "train")]
  elif style == "math":
    pool = [dict(question=q["question"], solution=q["solution"].strip(), subject=q["subject"])
            for q in hendrycks_math.questions(train_path, "train")
            if "[asy]" not in q["solution"] and len(q["solution"]) <= MAX_SOLUTION_CHARS
            and "\\boxed" in q["solution"]]
  else:
    raise ValueError(f"few-shot style must be one of {sorted(STYLES)}, got {style!r}")
  if len(pool) < shots:
    raise ValueError(f"{train_path}: only {len(pool)} usable exemplars for {shots}-shot {style}")
  order = list(range(len(pool)))
  random.Random(seed).shuffle(order)
  if style == "math":  # spread over subjects: the first pick of each subject, then the rest
    seen, firsts, rest = set(), [], []
    for i in order:
      (rest if pool[i]["subject"] in seen else firsts).append(i)
      seen.add(pool[i]["subject"])
    order = firsts + rest
  return [dict(question=pool[i]["question"], solution=pool[i]["solution"]) for i in order[:shots]]


def render(question: str, exemplars: list[dict], style: str) -> str:
  """The few-shot prompt: exemplars, then the question and an open answer header."""
  q_header, a_header, _ = STYLES[style]
  blocks = [f"{q_header}{e['question'].strip()}{a_header} {e['solution'].strip()}" for e in exemplars]
  blocks.append(f"{q_header}{question.strip()}{a_header}")
  return "\n\n".join(blocks)
