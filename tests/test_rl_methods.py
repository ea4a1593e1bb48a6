"""Methods of the one RL trainer (issue 18) through the real step on the tiny model: Online RFT's
coefficient reaches the update, RFT samples from the fixed model, and the variant switches
(truncated IS, dynamic sampling, weighted rewards, overlong shaping, GSPO, dual-clip, Dr. GRPO)
reach the update's batch."""
import jax
import numpy as np

import rl_steps
from configs import grpo as grpo_config
from configs import online_rft, rft
from dsmath_jax.rl import grpo_step
from dsmath_jax.rl import rewards as rewards_lib


def _run(config, tmp_path, steps=1):
  """(per step: metrics, completions, the host batches of its updates), the final host state."""
  config.data.questions = rl_steps.write_questions(tmp_path)
  config.rl.update(max_prompt_len=96, max_new_tokens=8)
  return rl_steps.recorded_steps(config, steps=steps)


def _per_output(batch, name, completions, k):
  """batch[name] of output i over its own tokens (rows hold k outputs each)."""
  return [batch[name][i // k, i % k, :len(c.token_ids)] for i, c in enumerate(completions)]


def test_online_rft_trains_on_correct_samples_with_coefficient_one(tmp_path, monkeypatch):
  monkeypatch.setattr(rewards_lib, "rule_reward", rl_steps.parity_reward)
  config = online_rft.get_config("tiny")
  [(metrics, completions, [batch])], _ = _run(config, tmp_path)
  k = config.rl.outputs_per_row
  correct = [rl_steps.parity_reward(c.text, "") for c in completions]
  assert 0 < sum(correct) < len(correct)                          # both kinds present
  for coefficient, advantage in zip(correct, _per_output(batch, "advantages", completions, k)):
    np.testing.assert_array_equal(advantage, coefficient)
  assert metrics["reward_correct"] == np.mean(correct) and np.isfinite(metrics["loss"])


def test_rft_samples_from_the_fixed_initial_policy(tmp_path, monkeypatch):
  monkeypatch.setattr(rewards_lib, "rule_reward", rl_steps.parity_reward)
  sampled_with, sample = [], grpo_step.sample

  def recording_sample(machinery, params, questions, rng):
    sampled_with.append(jax.device_get(params))
    return sample(machinery, params, questions, rng)

  monkeypatch.setattr(grpo_step, "sample", recording_sample)
  history, _ = _run(rft.get_config("tiny"), tmp_path, steps=2)
  assert history[0][0]["grad_norm"] > 0                            # the policy did move
  jax.tree.map(np.testing.assert_array_equal, sampled_with[0], sampled_with[1])


def test_variant_switches_reach_the_update(tmp_path, monkeypatch):
  """Sampler log-probs shifted by -0.3 (a sampler/trainer mismatch): the trainer's pi_old replaces
  them and every loss token is weighted by min(e^0.3, cap); groups with equal rewards carry no
  loss (dynamic sampling); the reward is correct + 0.5 format + overlong shaping, advantages
  unscaled."""
  from dsmath_jax.sample import sampler
  monkeypatch.setattr(rewards_lib, "rule_reward", rl_steps.parity_reward)
  generate = sampler.generate
  monkeypatch.setattr(sampler, "generate", lambda *a, **kw: [
      c._replace(logprobs=[lp - 0.3 for lp in c.logprobs]) for c in generate(*a, **kw)])
  config = grpo_config.get_config("tiny")
  config.rl.update(tis_cap=2.0, temperature_logprobs=True, dual_clip=3.0, ratio_level="sequence",
                   dynamic_sampling="drop", scale_advantages=False, reward_functions=("correct", "format"),
                   reward_weights=(1.0, 0.5), overlong_buffer=4, overlong_penalty=0.5)
  [(metrics, completions, [batch])], _ = _run(config, tmp_path)
  k, group = config.rl.outputs_per_row, config.rl.group_size
  assert abs(metrics["max_logprob_gap"] - 0.3) < 1e-4
  masks = _per_output(batch, "loss_mask", completions, k)
  for mask, weights, old, sampled in zip(masks, _per_output(batch, "is_weights", completions, k),
                                         _per_output(batch, "old_logprobs", completions, k), completions):
    np.testing.assert_allclose(weights[mask > 0], np.exp(0.3), rtol=1e-4)
    np.testing.assert_allclose(old, np.asarray(sampled.logprobs) + 0.3, atol=1e-4)   # the trainer's pi_old
  lengths = np.array([len(c.token_ids) for c in completions])
  reward = (np.array([rl_steps.parity_reward(c.text, "") for c in completions])
            + 0.5 * np.array([rewards_lib.format_reward(c.text, "") for c in completions])
            + rewards_lib.overlong_penalty(lengths, 8, 4, 0.5)).reshape(-1, group)
  advantage = (reward - reward.mean(1, keepdims=True)).reshape(-1)                 # Dr. GRPO: no std
  signal = np.repeat(reward.std(1) > 0, group)
  assert 0 < signal.sum()
  for i, (mask, adv) in enumerate(zip(masks, _per_output(batch, "advantages", completions, k))):
    assert mask.any() == (signal[i] and lengths[i] > 0), i
    np.testing.assert_allclose(adv, advantage[i], atol=1e-6)
  assert metrics["trained_outputs"] == signal.mean() and "reward_format" in metrics


def test_dpo_step_trains_on_chosen_rejected_pairs_and_sharded_equals_one_device(tmp_path, monkeypatch):
  from configs import dpo as dpo_config
  from dsmath_jax.rl import dpo
  monkeypatch.setattr(rewards_lib, "rule_reward", rl_steps.parity_reward)
  config = dpo_config.get_config("tiny")
  [(metrics, completions, [batch])], _ = _run(config, tmp_path)
  rewards = np.array([rl_steps.parity_reward(c.text, "") for c in completions])
  order, live = dpo.pair_order(rewards, np.ones(len(rewards), bool), config.rl.group_size)
  assert live.any()
  for pair, (chosen, rejected) in enumerate(order.reshape(-1, 2)):
    assert rewards[chosen] >= rewards[rejected]
    np.testing.assert_array_equal(batch["target_tokens"][pair, 0, :len(completions[chosen].token_ids)],
                                  completions[chosen].token_ids)
    assert batch["loss_mask"][pair].any() == live[pair]
  assert abs(metrics["pair_margin"]) < 1e-5                          # first update: policy = reference,
  assert abs(metrics["loss"] - np.log(2.0)) < 1e-5                   # so every live pair costs log 2
  # (2, 2, 2) mesh = one device, the same two DPO steps.
  results = []
  for shape in ((1, 1, 1), (2, 2, 2)):
    history, state = rl_steps.recorded_steps(dpo_config.get_config("tiny"), mesh_shape=shape, steps=2)
    results.append((state.params, [step_metrics for step_metrics, _, _ in history]))
  (params_one, history_one), (params_eight, history_eight) = results
  for m1, m8 in zip(history_one, history_eight):
    for key in ("loss", "pair_margin", "grad_norm", "reward_mean"):
      np.testing.assert_allclose(m8[key], m1[key], rtol=2e-4, atol=1e-6, err_msg=key)
  assert abs(history_one[1]["pair_margin"]) > 1e-4                    # the second step saw a moved policy
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6), params_eight, params_one)
