"""Group-relative advantages (paper §4.1.2, §4.1.3): no value model, the group is the baseline.

Everything here runs on the host between scoring and training (numpy, a few thousand
numbers per step). A sample whose reward could not be computed (`valid=False`, see
rewards.py) is left out of its group's statistics and gets no loss at all; the step
reports how many there were.
"""
import numpy as np


def outcome_advantages(rewards, valid=None, *, eps: float = 1e-6, scale: bool = True):
  """Outcome supervision (§4.1.2): A_i = (r_i - mean(r)) / (std(r) + eps) within each group;
  with `scale=False`, A_i = r_i - mean(r) (Dr. GRPO: dividing by the std weighs near-uniform
  groups, too easy or too hard, more than the others).

  Args:
    rewards: [num_groups, group_size] one scalar reward per output.
    valid: [num_groups, group_size] bool; invalid samples are excluded from mean/std and get 0.
    eps: added to the (population) std, so a group of equal rewards gives exactly 0.
  Returns:
    advantages [num_groups, group_size] float32 (every token of output i gets A_i), and
    zero_group [num_groups] bool: the group carries no signal (all valid rewards equal, or
    fewer than two valid samples). Such groups still count in the batch (paper-faithful);
    the fraction is the `zero_advantage_groups` metric.
  """
  rewards = np.asarray(rewards, np.float64)
  valid = np.ones(rewards.shape, bool) if valid is None else np.asarray(valid, bool)
  safe = np.where(valid, rewards, 0.0)
  count = valid.sum(axis=1, keepdims=True)                               # [num_groups, 1]
  mean = safe.sum(axis=1, keepdims=True) / np.maximum(count, 1)
  var = (np.where(valid, (safe - mean) ** 2, 0.0)).sum(axis=1, keepdims=True) / np.maximum(count, 1)
  std = np.sqrt(var)
  with np.errstate(divide="ignore", invalid="ignore"):               # eps=0 on equal groups: zeroed below
    advantages = np.where(valid, (safe - mean) / (std + eps if scale else 1.0), 0.0)
  zero_group = (std[:, 0] == 0.0) | (count[:, 0] < 2)
  advantages[zero_group] = 0.0
  return advantages.astype(np.float32), zero_group


def normalize_step_rewards(step_rewards, step_valid, *, eps: float = 1e-6, scale: bool = True):
  """Process supervision (§4.1.3): r~ = (r - mean(R)) / (std(R) + eps) over ALL steps of ALL
  outputs in one group (`scale=False`: r - mean(R), Dr. GRPO).

  Args:
    step_rewards: [group_size, max_steps] per-step reward of each output (padding anywhere
      `step_valid` is False).
    step_valid: [group_size, max_steps] bool.
  Returns: ([group_size, max_steps] float32 normalized rewards, 0 at padding; zero_group bool).
  """
  step_rewards = np.asarray(step_rewards, np.float64)
  step_valid = np.asarray(step_valid, bool)
  values = step_rewards[step_valid]
  if values.size < 2 or values.std() == 0.0:
    return np.zeros(step_rewards.shape, np.float32), True
  normalized = (step_rewards - values.mean()) / (values.std() + eps if scale else 1.0)
  return np.where(step_valid, normalized, 0.0).astype(np.float32), False


def process_token_advantages(normalized_step_rewards, step_ends, step_valid, num_tokens: int):
  """A_t = sum of the normalized rewards of the steps that end at or after token t (§4.1.3).

  Args:
    normalized_step_rewards: [num_outputs, max_steps] from `normalize_step_rewards`.
    step_ends: [num_outputs, max_steps] int: index (in the response, inclusive) of each
      step's last token.
    step_valid: [num_outputs, max_steps] bool.
    num_tokens: length of the response axis of the result.
  Returns: [num_outputs, num_tokens] float32 per-token advantages (0 after the last step).
  """
  normalized = np.asarray(normalized_step_rewards, np.float64)
  ends = np.asarray(step_ends, np.int64)
  valid = np.asarray(step_valid, bool)
  num_outputs = normalized.shape[0]
  at_end = np.zeros((num_outputs, num_tokens + 1), np.float64)            # a reward lands on its step's last token
  rows = np.broadcast_to(np.arange(num_outputs)[:, None], ends.shape)
  np.add.at(at_end, (rows[valid], np.clip(ends[valid], 0, num_tokens)), normalized[valid])
  # Reverse cumulative sum: token t collects every step ending at t or later.
  advantages = np.cumsum(at_end[:, ::-1], axis=1)[:, ::-1]
  return advantages[:, :num_tokens].astype(np.float32)


def process_advantages(step_rewards, step_ends, step_valid, group_size: int, num_tokens: int,
                       *, eps: float = 1e-6, scale: bool = True):
  """Per-token advantages for a prompt-major batch of groups (output i*G + j = group i, sample j).

  Returns ([num_outputs, num_tokens] float32, zero_group [num_groups] bool).
  """
  step_rewards = np.asarray(step_rewards, np.float64)
  step_valid = np.asarray(step_valid, bool)
  num_outputs = step_rewards.shape[0]
  if num_outputs % group_size:
    raise ValueError(f"{num_outputs} outputs do not split into groups of {group_size}")
  normalized = np.zeros(step_rewards.shape, np.float32)
  zero_group = np.zeros(num_outputs // group_size, bool)
  for g in range(num_outputs // group_size):
    rows = slice(g * group_size, (g + 1) * group_size)
    normalized[rows], zero_group[g] = normalize_step_rewards(step_rewards[rows], step_valid[rows], eps=eps,
                                                                scale=scale)
  return process_token_advantages(normalized, step_ends, step_valid, num_tokens), zero_group


def correct_only_coefficients(correct, valid=None):
  """RFT and Online RFT (§5.2.1): gradient coefficient 1 for a correct output, 0 otherwise.

  correct: [num_outputs] the grader's 0/1 verdict -> [num_outputs] float32 (0 where invalid).
  """
  correct = np.asarray(correct, np.float64)
  valid = np.ones(correct.shape, bool) if valid is None else np.asarray(valid, bool)
  return np.where(valid & (correct > 0), 1.0, 0.0).astype(np.float32)


def truncated_importance_weights(trainer_logprobs, sampler_logprobs, mask, cap: float):
  """Truncated importance sampling for the sampler/trainer mismatch: the sampler (its own
  kernels, precision, top-p) is not exactly pi_old as the trainer computes it, so each token's
  loss is weighted by min(pi_old_trainer / pi_sampler, cap) (Yao et al., 2025, "off-policy RL
  from an efficient RL framework"). Arrays of one shape; 1 outside `mask`.
  """
  log_ratio = np.asarray(trainer_logprobs, np.float64) - np.asarray(sampler_logprobs, np.float64)
  weights = np.minimum(np.exp(np.minimum(log_ratio, 50.0)), cap)
  return np.where(np.asarray(mask) > 0, weights, 1.0).astype(np.float32)
