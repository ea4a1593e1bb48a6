"""Scoring sampled outputs: the rule-based reward (paper §4.1, the grader's verdict) or any
reward function, with failures marked instead of hidden.

A reward function that raises, or returns NaN/inf or a non-number, for one sample marks
THAT sample invalid: it is left out of its group's statistics and carries no loss
(advantages.py), and the step reports the count and the first messages. Treating a failure
as reward 0 would silently teach the policy that the sample was wrong.
"""
import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

RewardFn = Callable[[str, str], float]      # (model output text, gold answer) -> reward


@dataclasses.dataclass
class Rewards:
  values: np.ndarray        # [num_outputs] float32 (0.0 where invalid: never read there)
  valid: np.ndarray         # [num_outputs] bool
  errors: list[str]         # "sample 7: ValueError: ..." for every invalid sample

  @property
  def num_invalid(self) -> int:
    return int((~self.valid).sum())


def rule_reward(output: str, gold: str) -> float:
  """1.0 if the grader finds the output's final answer equal to the gold answer, else 0.0."""
  from dsmath_jax.grading.grader import grade_output
  return 1.0 if grade_output(output, gold) else 0.0


def format_reward(output: str, gold: str) -> float:
  """1.0 if an answer can be read from the output (a \\boxed{} or "The answer is" line), else
  0.0: rewards the answer format separately from its correctness (DeepSeek-R1's format reward)."""
  from dsmath_jax.grading import answer
  return 1.0 if answer.boxed_answers(output) or answer.marker_answer(output) is not None else 0.0


def named_reward(name: str) -> RewardFn:
  """The reward function called `name` in config.rl.reward_functions, looked up when called
  (tests replace rule_reward)."""
  if name == "correct":
    return lambda output, gold: rule_reward(output, gold)
  if name == "format":
    return lambda output, gold: format_reward(output, gold)
  raise ValueError(f"config.rl.reward_functions: unknown reward {name!r}; choose from ('correct', 'format')")


def weighted_sum(parts: dict, weights: Sequence[float]) -> Rewards:
  """sum_k w_k r_k of several scored reward functions ({name: Rewards}); a sample is valid only
  where every part is."""
  parts = list(parts.values())
  valid = np.logical_and.reduce([p.valid for p in parts])
  values = sum(np.float32(w) * p.values for w, p in zip(weights, parts))
  return Rewards(np.where(valid, values, 0.0).astype(np.float32), valid, [e for p in parts for e in p.errors])


def overlong_penalty(lengths, max_new_tokens: int, buffer: int, penalty: float = 1.0):
  """DAPO's soft overlong punishment (Yu et al., 2025, eq. 13): 0 up to max_new_tokens - buffer,
  then falling linearly to -penalty at max_new_tokens (a truncated response).
  lengths [num_outputs] -> [num_outputs] float32."""
  lengths = np.asarray(lengths, np.float64)
  start = max_new_tokens - buffer
  return (-penalty * np.clip((lengths - start) / max(buffer, 1), 0.0, 1.0)).astype(np.float32)


def score(reward_fn: RewardFn, outputs: Sequence[str], golds: Sequence[str]) -> Rewards:
  """Applies reward_fn to each (output, gold); failures are marked per sample, never zeroed."""
  if len(outputs) != len(golds):
    raise ValueError(f"{len(outputs)} outputs but {len(golds)} gold answers")
  values = np.zeros(len(outputs), np.float32)
  valid = np.zeros(len(outputs), bool)
  errors = []
  for index, (output, gold) in enumerate(zip(outputs, golds)):
    try:
      value = reward_fn(output, gold)
    except Exception as error:  # noqa: BLE001 -- any failure of a user reward is reported per sample
      errors.append(f"sample {index}: {type(error).__name__}: {error}")
      continue
    try:
      value = float(value)
    except (TypeError, ValueError):
      errors.append(f"sample {index}: reward is not a number: {value!r}")
      continue
    if not math.isfinite(value):
      errors.append(f"sample {index}: reward is {value}")
      continue
    values[index], valid[index] = value, True
  return Rewards(values, valid, errors)


def check_scores(scores, what: str = "reward model") -> Rewards:
  """Marks non-finite model scores [num_outputs] (e.g. from a diverged reward model) invalid."""
  scores = np.asarray(scores, np.float32)
  valid = np.isfinite(scores)
  errors = [f"sample {i}: {what} score is {scores[i]}" for i in np.flatnonzero(~valid)]
  return Rewards(np.where(valid, scores, 0.0).astype(np.float32), valid, errors)
