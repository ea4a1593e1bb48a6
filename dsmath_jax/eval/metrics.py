"""Sampling metrics of the paper's tables: greedy accuracy, maj@k (self-consistency) and pass@k.

pass@k uses the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models
Trained on Code", eq. 1) from n >= k samples with c correct: 1 - C(n-c, k) / C(n, k).
maj@k (Wang et al. 2022; DeepSeekMath §4.2 / Fig. 5 "Maj@K") takes the first k samples of a
question, groups their final answers into equivalence classes, and is correct when the largest
class is correct. Answers graded correct are all equal to the gold answer, hence to each other;
the incorrect ones are grouped by `equiv` (normalized-string equality by default).
"""
from typing import Callable, Sequence

import numpy as np

from dsmath_jax.grading.normalize import normalize


def pass_at_k(n: int, c: int, k: int) -> float:
  """Probability that at least one of k samples drawn without replacement from n is correct."""
  if not 0 <= c <= n or not 1 <= k <= n:
    raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
  if n - c < k:
    return 1.0
  # 1 - prod_{i=n-c+1}^{n} (1 - k/i): the ratio of binomials without overflowing
  return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _normalized_equal(a: str, b: str) -> bool:
  return normalize(a) == normalize(b)


def majority_answer(answers: Sequence[str | None], correct_flags: Sequence[bool],
                    equiv: Callable[[str, str], bool] | None = None) -> int | None:
  """Index of the first member of the largest answer class (ties: the class seen first);
  None when no sample has an answer."""
  equiv = equiv or _normalized_equal
  classes: list[list[int]] = []   # member indices; classes[i][0] is the representative
  for index, answer in enumerate(answers):
    if answer is None:
      continue
    for members in classes:
      first = members[0]
      same = (correct_flags[first] and correct_flags[index]) or (
          not correct_flags[first] and not correct_flags[index] and equiv(answer, answers[first]))
      if same:
        members.append(index)
        break
    else:
      classes.append([index])
  if not classes:
    return None
  return max(classes, key=len)[0]  # max keeps the first of equal-sized classes


def maj_at_k(answers: Sequence[str | None], correct_flags: Sequence[bool], k: int,
             equiv: Callable[[str, str], bool] | None = None) -> bool:
  """Whether the majority answer among the first k samples of one question is correct."""
  if not 1 <= k <= len(answers) or len(answers) != len(correct_flags):
    raise ValueError(f"maj_at_k needs 1 <= k <= {len(answers)} answers with as many flags, got k={k}, "
                     f"{len(correct_flags)} flags")
  winner = majority_answer(answers[:k], correct_flags[:k], equiv)
  return winner is not None and bool(correct_flags[winner])


def ks_up_to(n: int) -> list[int]:
  """1, 2, 4, ... up to n, plus n itself: the k of the accuracy-vs-k curve."""
  ks, k = [], 1
  while k < n:
    ks.append(k)
    k *= 2
  return ks + [n]


def standard_error(values: Sequence[float]) -> float:
  """Standard error of the mean over questions: sample std (ddof=1) / sqrt(n); 0 for n < 2.
  For one greedy sample per question it is sqrt(p (1 - p) / (n - 1)), the binomial error."""
  if len(values) < 2:
    return 0.0
  return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def summarize(per_question: list[dict], ks: Sequence[int] | None = None) -> dict:
  """Benchmark-level metrics (percent) from per-question records with `answers` and `correct` lists.

  accuracy: mean over questions of each one's fraction of correct samples (pass@1; with one
  greedy sample, the greedy accuracy). pass@k from each question's own n and c; maj@k from each
  question's first k samples; k runs over 1, 2, 4, ... up to the smallest n.
  """
  if not per_question:
    return {"questions": 0, "samples_per_question": 0, "accuracy": 0.0, "accuracy_stderr": 0.0, "pass@k": {},
            "maj@k": {}}
  n_min = min(len(q["correct"]) for q in per_question)
  ks = [k for k in (ks or ks_up_to(n_min)) if 1 <= k <= n_min]
  per_question_accuracy = [np.mean(q["correct"]) for q in per_question]
  result = {"questions": len(per_question), "samples_per_question": n_min,
            "accuracy": 100.0 * float(np.mean(per_question_accuracy)),
            "accuracy_stderr": 100.0 * standard_error(per_question_accuracy), "pass@k": {}, "maj@k": {}}
  for k in ks:
    result["pass@k"][str(k)] = 100.0 * float(np.mean(
        [pass_at_k(len(q["correct"]), int(sum(q["correct"])), k) for q in per_question]))
    result["maj@k"][str(k)] = 100.0 * float(np.mean(
        [maj_at_k(q["answers"], q["correct"], k) for q in per_question]))
  return result
