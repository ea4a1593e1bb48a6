"""PPO in the one RL trainer (paper §5.2.1, eq. 1; issue 18): GAE against a hand-written loop, the
KL-shaped token rewards and the clipped value loss against numpy, the step's advantages against GAE
over its own batch, the (2, 2, 2) mesh against one device, and configs/ppo.py:tiny end to end."""
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rl_steps
from configs import ppo as ppo_config
from dsmath_jax.rl import ppo
from dsmath_jax.rl import rewards as rewards_lib
from dsmath_jax.rl.config import GRPOConfig, RLConfig

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _gae_loop(rewards, values, mask, gamma, lam):
  """Textbook GAE, one output at a time, over the tokens whose mask is 1 (the others are not steps)."""
  advantages = np.zeros_like(rewards, dtype=np.float64)
  for i in range(rewards.shape[0]):
    steps = [t for t in range(rewards.shape[1]) if mask[i, t]]
    running = 0.0
    for j in reversed(range(len(steps))):
      t = steps[j]
      next_value = values[i, steps[j + 1]] if j + 1 < len(steps) else 0.0
      delta = rewards[i, t] + gamma * next_value - values[i, t]
      running = delta + gamma * lam * running
      advantages[i, t] = running
  return advantages


def _handcrafted():
  rng = np.random.default_rng(0)
  rewards = rng.normal(size=(4, 6))
  values = rng.normal(size=(4, 6))
  mask = np.array([[1, 1, 1, 1, 1, 1],
                   [1, 1, 1, 0, 0, 0],         # padding after a short output
                   [1, 0, 0, 1, 1, 0],         # tool-output tokens in the middle (no loss, not steps)
                   [0, 0, 0, 0, 0, 0]], np.float32)   # an output without loss
  return rewards, values, mask


@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (1.0, 0.95), (0.9, 1.0), (0.99, 0.5), (0.5, 0.0)])
def test_gae_equals_a_hand_written_loop(gamma, lam):
  rewards, values, mask = _handcrafted()
  advantages, returns = ppo.gae(rewards, values, mask, gamma=gamma, lam=lam)
  expected = _gae_loop(rewards, values, mask, gamma, lam)
  np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(returns, np.where(mask > 0, expected + values, 0.0), rtol=1e-5, atol=1e-6)
  if gamma == lam == 1.0:                    # the paper's setting: A_t = sum of the rewards from t on - V_t
    tail = np.flip(np.cumsum(np.flip(rewards * mask, 1), 1), 1)
    np.testing.assert_allclose(advantages, np.where(mask > 0, tail - values, 0.0), rtol=1e-5, atol=1e-6)


def test_token_rewards_are_the_kl_penalty_plus_the_outcome_at_the_last_loss_token():
  rng = np.random.default_rng(1)
  _, _, mask = _handcrafted()
  old, ref = rng.normal(size=(2, 4, 6))
  outcome = np.array([1.0, 0.0, 0.5, 1.0])
  got = ppo.token_rewards(outcome, old, ref, mask, kl_coef=0.04)
  expected = -0.04 * (old - ref) * mask
  for i, last in ((0, 5), (1, 2), (2, 4)):           # output 3 has no loss token: no reward at all
    expected[i, last] += outcome[i]
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_clipped_value_loss_equals_numpy():
  rng = np.random.default_rng(2)
  _, _, mask = _handcrafted()
  values, old, returns = rng.normal(scale=0.5, size=(3, 4, 6)).astype(np.float32)
  loss_sum, weight, aux = ppo.value_terms(jnp.asarray(values), {"returns": jnp.asarray(returns),
                                                                "old_values": jnp.asarray(old),
                                                                "loss_mask": jnp.asarray(mask)}, value_clip=0.2)
  clipped = old + np.clip(values - old, -0.2, 0.2)
  per_token = 0.5 * np.maximum((values - returns) ** 2, (clipped - returns) ** 2)
  assert 0 < np.sum((np.abs(values - old) > 0.2) * mask) < mask.sum()      # both cases occur
  np.testing.assert_allclose(loss_sum, np.sum(per_token * mask), rtol=1e-5)
  assert float(weight) == mask.sum()
  np.testing.assert_allclose(aux["clip_fraction"], np.sum((np.abs(values - old) > 0.2) * mask), rtol=1e-6)
  # The clip stops the gradient where the clipped term is the larger: d loss / d V = 0 there.
  grad = jax.grad(lambda v: ppo.value_terms(v, {"returns": returns, "old_values": old, "loss_mask": mask},
                                            value_clip=0.2)[0])(jnp.asarray(values))
  outside = (np.abs(values - old) > 0.2) & ((clipped - returns) ** 2 > (values - returns) ** 2)
  expected_grad = np.where(outside, 0.0, values - returns) * mask
  np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-6)


def _whitened(advantages, mask):
  """numpy: (A - mean) / sqrt(var + 1e-8) over the entries where mask is 1, 0 elsewhere."""
  picked = advantages[mask > 0]
  return np.where(mask > 0, (advantages - picked.mean()) / np.sqrt(picked.var() + 1e-8), 0.0)


def test_whitened_advantages_equal_numpy_over_the_loss_tokens():
  _, _, mask = _handcrafted()
  advantages = np.random.default_rng(3).normal(loc=2.0, scale=5.0, size=mask.shape)
  got = ppo.whiten(advantages, mask)
  np.testing.assert_allclose(got, _whitened(advantages, mask), rtol=1e-5, atol=1e-6)
  assert abs(got[mask > 0].mean()) < 1e-6 and abs(got[mask > 0].std() - 1.0) < 1e-5
  np.testing.assert_array_equal(got[mask == 0], 0.0)
  np.testing.assert_array_equal(ppo.whiten(advantages, np.zeros_like(mask)), 0.0)      # no loss token


@pytest.mark.parametrize("whiten", [False, True])
def test_fill_advantages_whitens_gae_over_the_batch_and_keeps_the_raw_returns(whiten):
  rng = np.random.default_rng(4)
  _, values, mask = _handcrafted()                                  # 4 outputs, as 2 rows of k = 2
  old, ref = rng.normal(size=(2, 4, 6))
  rows = {"loss_mask": mask.reshape(2, 2, 6), "old_logprobs": old.reshape(2, 2, 6), "ref_logprobs": ref.reshape(2, 2, 6)}
  outcome = np.array([1.0, 0.0, 1.0])                               # the 3 packed outputs; the 4th is padding
  rl = RLConfig(objective="ppo", gae_lambda=0.9, whiten_advantages=whiten)
  ppo.fill_advantages(rl, values.reshape(2, 2, 6), rows, outcome)
  token_rewards = -0.04 * (old - ref) * mask
  for i, last in ((0, 5), (1, 2), (2, 4)):
    token_rewards[i, last] += outcome[i]
  raw = _gae_loop(token_rewards, values, mask, 1.0, 0.9)
  expected = _whitened(raw, mask) if whiten else raw
  np.testing.assert_allclose(rows["advantages"].reshape(4, 6), expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(rows["returns"].reshape(4, 6), (raw + values) * mask, rtol=1e-4, atol=1e-5)


def test_ppo_steps_use_gae_over_the_value_model_and_sharded_equals_one_device(tmp_path, monkeypatch):
  monkeypatch.setattr(rewards_lib, "rule_reward", rl_steps.parity_reward)
  config = ppo_config.get_config("tiny")
  config.data.questions = rl_steps.write_questions(tmp_path)
  config.rl.update(max_prompt_len=96, max_new_tokens=8, gae_lambda=0.9)
  # Adam divides by sqrt(v) + eps: at eps = 1e-8 an element whose gradient is ~0 turns the float noise
  # of the sharded reductions into a full-size update; eps = 1e-4 compares the step, not that noise.
  config.optim.eps = 1e-4
  one, state_one = rl_steps.recorded_steps(config, steps=2)
  k = config.rl.outputs_per_row
  for step, (metrics, completions, [batch]) in enumerate(one):
    rows, _, n = batch["loss_mask"].shape
    flat = {name: np.asarray(batch[name]).reshape(rows * k, n) for name in
            ("loss_mask", "old_logprobs", "ref_logprobs", "old_values", "advantages", "returns")}
    outcome = np.zeros(rows * k)
    outcome[:len(completions)] = [rl_steps.parity_reward(c.text, "") for c in completions]
    assert 0 < outcome.sum() < len(completions)                   # both rewards present
    if step == 0:                                                 # the value head starts at zero
      np.testing.assert_array_equal(flat["old_values"], 0.0)
    else:                                                         # ... and moved after one update
      assert np.abs(flat["old_values"]).max() > 1e-6
    token_rewards = -0.04 * (flat["old_logprobs"] - flat["ref_logprobs"]) * flat["loss_mask"]
    for i in range(len(completions)):
      last = np.flatnonzero(flat["loss_mask"][i])[-1]
      token_rewards[i, last] += outcome[i]
    expected = _gae_loop(token_rewards, flat["old_values"], flat["loss_mask"], 1.0, 0.9)
    np.testing.assert_allclose(flat["advantages"], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(flat["returns"], (expected + flat["old_values"]) * flat["loss_mask"],
                               rtol=1e-4, atol=1e-5)
    assert metrics["value_loss"] > 0 and np.isfinite(metrics["loss"])
  eight, state_eight = rl_steps.recorded_steps(config, mesh_shape=(2, 2, 2), steps=2)
  for (m1, *_), (m8, *_) in zip(one, eight):
    for key in ("loss", "grad_norm", "value_loss", "value_grad_norm", "value_mean", "reward_mean"):
      np.testing.assert_allclose(m8[key], m1[key], rtol=2e-4, atol=1e-6, err_msg=key)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6),
               (state_eight.policy.params, state_eight.value.params),
               (state_one.policy.params, state_one.value.params))


def test_ppo_tiny_config_runs_end_to_end_and_saves_policy_and_value_model(tmp_path):
  from dsmath_jax.model import loading
  from dsmath_jax.rl import reward_model as rm_lib
  result = subprocess.run([sys.executable, "-m", "dsmath_jax.main", "--config=configs/ppo.py:tiny",
                           f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [m["step"] for m in metrics] == [1, 2]
  assert all(np.isfinite(m["value_loss"]) and np.isfinite(m["loss"]) for m in metrics)
  policy = loading.load_pretrained(str(tmp_path / "model"))
  value_config, value_params, _ = rm_lib.load_reward_model(str(tmp_path / "value_model"))
  assert value_config.hidden_size == policy.config.hidden_size
  assert value_params["score_head"]["kernel"].shape == (policy.config.hidden_size, 1)
  assert "lm_head" not in value_params["base"]


@pytest.mark.parametrize("override,message", [
    (dict(reward="process_rm"), "outcome reward"), (dict(iterations=2, steps_per_iteration=1), "iterative"),
    (dict(gae_lambda=1.5), "gae_lambda=1.5"), (dict(value_clip=-0.1), "value_clip")])
def test_ppo_config_refuses_what_it_cannot_train(override, message):
  config = ppo_config.get_config("tiny")
  config.rl.update(override)
  with pytest.raises(ValueError, match=message):
    GRPOConfig.from_config(config)


def test_advantage_whitening_is_off_by_default_and_only_for_ppo():
  from configs import grpo as grpo_config
  assert not GRPOConfig.from_config(ppo_config.get_config("tiny")).rl.whiten_advantages
  config = ppo_config.get_config("tiny")
  config.rl.whiten_advantages = True
  assert GRPOConfig.from_config(config).rl.whiten_advantages
  config = grpo_config.get_config("tiny")
  config.rl.whiten_advantages = True
  with pytest.raises(ValueError, match="whiten_advantages.*objective='ppo'"):
    GRPOConfig.from_config(config)
