"""The questions RL trains on (paper §4.2: the CoT-format GSM8K and MATH questions of the SFT
data) and their prompts: loading, the prompt-length filter, and the step batches.

Used by GRPO, by iterative RL and by the reward-model task (which labels the policy's answers
to the same prompts), so prompts are encoded one way everywhere.
"""
from collections.abc import Iterator, Sequence

import numpy as np
from absl import logging

from dsmath_jax import templates
from dsmath_jax import tokenizer as tokenizers


def load_questions(spec: str) -> list[dict]:
  """Question records from "kind:path[,kind:path...]": gsm8k (#### answers), math (\\boxed{}
  in the solution) or jsonl (fields `question` and `answer` as they are)."""
  from dsmath_jax import jsonl
  from dsmath_jax.datasets import gsm8k, hendrycks_math
  records = []
  for part in filter(None, (p.strip() for p in spec.split(","))):
    kind, _, path = part.partition(":")
    if kind == "gsm8k":
      records.extend(gsm8k.questions(path, "train"))
    elif kind == "math":
      records.extend(hendrycks_math.questions(path, "train"))
    elif kind == "jsonl":
      for row in jsonl.read_jsonl(path, {"question": "question", "answer": "answer"}):
        records.append(dict(id=f"{path}:{row['_line']}", question=str(row["question"]),
                            answer=str(row["answer"])))
    else:
      raise ValueError(f"data.questions: {part!r} is not gsm8k:PATH, math:PATH or jsonl:PATH")
  if not records:
    raise ValueError(f"data.questions={spec!r} holds no questions")
  return records


def encode_prompt(tokenizer, question: str, template: str = "cot") -> list[int]:
  """BOS (where the vocabulary has one) + the rendered prompt (templates.py).

  template "chat": the CoT instruction as one user message in the checkpoint's chat template
  (ChatML where it has none), which writes BOS itself where it wants one."""
  if template == "chat":
    message = templates.CHAT_USER.format(question=question.strip())
    return tokenizer.encode(tokenizers.render_chat(tokenizer, [{"role": "user", "content": message}]))
  ids = tokenizer.encode(templates.render(question, template))
  return ([tokenizer.bos_id] if tokenizer.bos_id is not None else []) + ids


def fit_questions(questions: Sequence[dict], tokenizer, template: str, max_prompt_len: int) -> list[dict]:
  """The questions whose prompt fits rl.max_prompt_len (the rest are skipped and counted)."""
  kept = [q for q in questions if len(encode_prompt(tokenizer, q["question"], template)) <= max_prompt_len]
  if len(kept) < len(questions):
    logging.warning("%d of %d questions skipped: prompt longer than rl.max_prompt_len=%d",
                    len(questions) - len(kept), len(questions), max_prompt_len)
  if not kept:
    raise ValueError(f"no question fits rl.max_prompt_len={max_prompt_len}")
  return kept


def fresh_questions(questions: Sequence[dict], per_step: int, seed: int, step: int, round_index: int) -> list[dict]:
  """Round `round_index` (>= 1) of dynamic sampling's resampling at step `step` (rl/dynamic_sampling.py):
  `per_step` questions drawn without replacement from all of them, a function of (seed, step,
  round_index) only, so a resumed run draws the same ones. A question may be one of the step's other
  rounds' (its G outputs are then sampled afresh)."""
  rng = np.random.default_rng([seed, step, round_index])
  return [questions[i] for i in rng.choice(len(questions), size=min(per_step, len(questions)), replace=False)]


def question_batches(questions: Sequence[dict], per_step: int, seed: int) -> Iterator[list[dict]]:
  """Endless shuffled passes over the questions; batch k depends only on (seed, k)."""
  epoch = 0
  while True:
    order = np.random.default_rng([seed, epoch]).permutation(len(questions))
    for start in range(0, len(order) - per_step + 1, per_step):
      yield [questions[i] for i in order[start:start + per_step]]
    epoch += 1
