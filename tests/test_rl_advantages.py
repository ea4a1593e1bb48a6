"""Group-relative advantages (paper §4.1.2-4.1.3) against hand-derived values."""
import numpy as np
import pytest

from dsmath_jax.rl import advantages


def test_outcome_advantages_hand_values():
  rewards = np.array([[1.0, 0.0, 0.0, 1.0],      # mean .5, std .5 -> +-1
                      [1.0, 1.0, 1.0, 1.0],      # all equal -> zero group
                      [0.0, 0.0, 0.0, 1.0]])     # mean .25, std sqrt(3)/4
  adv, zero = advantages.outcome_advantages(rewards, eps=0.0)
  s = np.sqrt(3) / 4
  expected = np.array([[1, -1, -1, 1], [0, 0, 0, 0],
                       [-0.25 / s, -0.25 / s, -0.25 / s, 0.75 / s]])
  np.testing.assert_allclose(adv, expected, rtol=1e-6)
  np.testing.assert_array_equal(zero, [False, True, False])


def test_outcome_advantages_eps_and_invalid_samples():
  rewards = np.array([[2.0, 0.0, 7.0, 1.0]])
  valid = np.array([[True, True, False, True]])       # sample 2 failed to score: excluded
  adv, zero = advantages.outcome_advantages(rewards, valid, eps=0.1)
  values = np.array([2.0, 0.0, 1.0])
  mean, std = 1.0, np.sqrt(((values - 1.0) ** 2).mean())
  np.testing.assert_allclose(adv[0], [(2 - mean) / (std + 0.1), (0 - mean) / (std + 0.1), 0.0,
                                      (1 - mean) / (std + 0.1)], rtol=1e-6)
  assert not zero[0]
  # One valid sample left: no baseline, no signal, counted as a zero group.
  adv, zero = advantages.outcome_advantages([[1.0, 5.0]], [[True, False]])
  np.testing.assert_array_equal(adv, [[0.0, 0.0]])
  assert zero[0]


def test_process_advantages_hand_values():
  # Group of 2 outputs; output 0 has steps ending at tokens 1 and 4, output 1 at 2, 3 and 5.
  step_rewards = np.array([[0.9, 0.2, 0.0], [0.4, 1.0, 0.1]])
  step_ends = np.array([[1, 4, 0], [2, 3, 5]])
  step_valid = np.array([[True, True, False], [True, True, True]])
  adv, zero = advantages.process_advantages(step_rewards, step_ends, step_valid, group_size=2,
                                            num_tokens=7, eps=0.0)
  pooled = np.array([0.9, 0.2, 0.4, 1.0, 0.1])
  n = (step_rewards - pooled.mean()) / pooled.std()
  expected = np.zeros((2, 7))
  for t in range(7):                                   # sum of rewards of steps ending at or after t
    expected[0, t] = (n[0, 0] if t <= 1 else 0) + (n[0, 1] if t <= 4 else 0)
    expected[1, t] = (n[1, 0] if t <= 2 else 0) + (n[1, 1] if t <= 3 else 0) + (n[1, 2] if t <= 5 else 0)
  np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-6)
  assert not zero.any()


def test_process_advantages_groups_are_separate_and_equal_group_is_zero():
  step_rewards = np.array([[1.0], [0.0], [0.5], [0.5]])
  adv, zero = advantages.process_advantages(step_rewards, np.array([[0], [1], [0], [0]]),
                                            np.ones((4, 1), bool), group_size=2, num_tokens=3, eps=0.0)
  np.testing.assert_allclose(adv, [[1, 0, 0], [-1, -1, 0], [0, 0, 0], [0, 0, 0]], atol=1e-6)
  np.testing.assert_array_equal(zero, [False, True])
  with pytest.raises(ValueError, match="groups of 3"):
    advantages.process_advantages(step_rewards, np.zeros((4, 1), int), np.ones((4, 1), bool), 3, 2)
