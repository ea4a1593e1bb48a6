"""Scoring a step's outputs into per-token advantages (paper §4.1.2-4.1.3).

The reward is the grader's verdict (rule), an outcome reward model's score at the last token,
or a process reward model's score at the end of every reasoning step (steps.py). Outcome
rewards are normalized within each group and every token of an output gets its advantage;
process rewards are normalized over all steps of the group and a token's advantage sums the
normalized rewards of the steps ending at or after it (advantages.py).
"""
from typing import NamedTuple

import jax
import numpy as np

from dsmath_jax import sharding
from dsmath_jax.rl import advantages as advantages_lib
from dsmath_jax.rl import reward_model as rm_lib
from dsmath_jax.rl import rewards as rewards_lib
from dsmath_jax.rl import steps as steps_lib
from dsmath_jax.rl.config import RLConfig
from dsmath_jax.rl.machinery import Machinery


class Scored(NamedTuple):
  token_advantages: list        # per output: [its tokens] float32
  rewards: rewards_lib.Rewards  # what the policy is trained on (grader or reward model)
  zero_groups: np.ndarray       # [num_groups] bool: the group carries no signal
  correct: rewards_lib.Rewards  # the grader's verdict, so accuracy is measured by the grader
  trained: np.ndarray           # [num_outputs] bool: carries loss (valid, and its group kept by
                                # rl.dynamic_sampling)
  reward_parts: dict            # {name: Rewards} of each of rl.reward_functions (reward "rule")


def rm_rows(completions, seq_len: int, pad_id: int) -> dict:
  """One `prompt + response` row per output (tokens/segment_ids/positions [outputs, seq_len]),
  built as the reward model's own training rows; scores are read at prompt length + token index."""
  examples = [rm_lib.RMExample(list(c.prompt_ids), list(c.token_ids), [], []) for c in completions]
  rows = rm_lib.make_batch(examples, seq_len, pad_id)
  return {k: rows[k] for k in ("tokens", "segment_ids", "positions")}


def score_outputs(rl: RLConfig, machinery: Machinery, completions, golds, rm_params=None) -> Scored:
  """Rewards and token advantages of a step's prompt-major outputs (groups of rl.group_size)."""
  texts = [c.text for c in completions]
  parts = {}
  if rl.reward == "rule":
    parts = {name: rewards_lib.score(rewards_lib.named_reward(name), texts, golds) for name in rl.reward_functions}
  correct = parts.get("correct") or rewards_lib.score(rewards_lib.rule_reward, texts, golds)
  lengths = [len(c.token_ids) for c in completions]
  if rl.reward == "rule":
    rewards = rewards_lib.weighted_sum(parts, rl.reward_weights) if parts != {"correct": correct} else correct
  else:
    rows = rm_rows(completions, machinery.seq_len, machinery.tokenizer.pad_id)
    scores = np.asarray(sharding.to_host(machinery.rm_scores(rm_params, machinery.put(rows))))  # [outputs, seq]
    if rl.reward == "process_rm":
      rewards, token_advantages, zero = process_rm_advantages(rl, machinery, completions, scores)
      return Scored([token_advantages[i, :n] for i, n in enumerate(lengths)], rewards, zero, correct,
                    kept(rl, rewards.valid, zero), parts)
    rewards = outcome_rm_rewards(completions, scores, machinery.seq_len)
  if rl.overlong_buffer:
    shaped = rewards.values + rewards_lib.overlong_penalty(lengths, rl.max_new_tokens, rl.overlong_buffer,
                                                           rl.overlong_penalty)
    rewards = rewards_lib.Rewards(np.where(rewards.valid, shaped, 0.0).astype(np.float32), rewards.valid,
                                  rewards.errors)
  advantages, zero = advantages_lib.outcome_advantages(
      rewards.values.reshape(-1, rl.group_size), rewards.valid.reshape(-1, rl.group_size), eps=rl.adv_eps,
      scale=rl.scale_advantages)
  advantages = advantages.reshape(-1)
  if rl.gradient_coefficient == "correct_only":             # RFT: GC = 1 on correct samples (§5.2.1)
    advantages = advantages_lib.correct_only_coefficients(correct.values, correct.valid)
  return Scored([np.full(n, advantages[i], np.float32) for i, n in enumerate(lengths)], rewards, zero, correct,
                kept(rl, rewards.valid, zero), parts)


def kept(rl: RLConfig, valid, zero_groups):
  """Outputs that carry loss: valid rewards, and with rl.dynamic_sampling "drop" or "resample" (DAPO)
  only in groups whose rewards differ, so the batch average is over groups with a signal (resample's
  filler groups included: dynamic_sampling.py).  -> [outputs] bool."""
  if rl.dynamic_sampling in ("drop", "resample"):
    return np.asarray(valid, bool) & ~np.repeat(np.asarray(zero_groups, bool), rl.group_size)
  return np.asarray(valid, bool)


def outcome_rm_rewards(completions, scores, seq_len: int) -> rewards_lib.Rewards:
  """Outcome supervision (§4.1.2): the reward model's sigmoid score at each response's last token."""
  prompt_lengths = np.array([len(c.prompt_ids) for c in completions])
  lengths = np.array([len(c.token_ids) for c in completions])
  last = np.minimum(prompt_lengths + np.maximum(lengths - 1, 0), seq_len - 1)
  return rewards_lib.check_scores(rm_lib.scores_at(scores, last[:, None])[:, 0])


def process_rm_advantages(rl: RLConfig, machinery: Machinery, completions, scores):
  """Process supervision (§4.1.3) -> (Rewards: each output's mean step score, token advantages
  [outputs, max_len], zero_groups). Steps whose end falls past the reward model's rows, and
  outputs with a non-finite score or no step, carry no loss."""
  seq_len = machinery.seq_len
  prompt_lengths = np.array([len(c.prompt_ids) for c in completions])
  ends = [steps_lib.step_end_tokens(c.token_ids, machinery.tokenizer, rl.step_delimiter) for c in completions]
  width = max([len(e) for e in ends] + [1])
  step_ends = np.zeros((len(completions), width), np.int64)                # [outputs, steps]
  step_valid = np.zeros((len(completions), width), bool)
  for i, e in enumerate(ends):
    e = [t for t in e if prompt_lengths[i] + t < seq_len]
    step_ends[i, :len(e)], step_valid[i, :len(e)] = e, True
  positions = np.minimum(prompt_lengths[:, None] + step_ends, seq_len - 1)
  step_scores = rm_lib.scores_at(scores, positions)                       # [outputs, steps] sigmoid
  finite = (np.isfinite(step_scores) | ~step_valid).all(axis=1)
  has_steps = step_valid.any(axis=1)
  mean_score = np.where(has_steps, np.where(step_valid, step_scores, 0).sum(1) / np.maximum(step_valid.sum(1), 1), 0)
  rewards = rewards_lib.Rewards(
      np.where(finite, mean_score, 0.0).astype(np.float32), finite & has_steps,
      [f"sample {i}: process reward model score is not finite" for i in np.flatnonzero(~finite)] +
      [f"sample {i}: no step to score (empty response)" for i in np.flatnonzero(~has_steps)])
  step_valid &= rewards.valid[:, None]
  max_len = max([len(c.token_ids) for c in completions] + [1])
  token_advantages, zero = advantages_lib.process_advantages(
      np.where(step_valid, step_scores, 0.0), step_ends, step_valid, rl.group_size, max_len, eps=rl.adv_eps,
      scale=rl.scale_advantages)
  return rewards, token_advantages, zero
