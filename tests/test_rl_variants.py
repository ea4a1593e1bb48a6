"""Issue 18's variant switches and gradient coefficients, each against hand-derived numpy:
Dr. GRPO (no std scaling), clip-higher, dual-clip, GSPO sequence ratios, truncated IS
weights, temperature-consistent log-probs, overlong shaping, weighted rewards, dynamic
sampling (drop), RFT's coefficient, and GC = 1 on SFT data giving SFT's gradient."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from configs import grpo as grpo_config
from dsmath_jax.model import llama
from dsmath_jax.rl import advantages, packing, rewards, scoring
from dsmath_jax.rl import loss as loss_lib
from dsmath_jax.rl.config import RLConfig
from dsmath_jax.sample.sampler import Completion
from dsmath_jax.train import loss as sft_loss
from dsmath_jax.train import step as step_lib


def test_advantages_without_std_scaling_are_reward_minus_group_mean():
  rewards_ = [[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5], [2.0, 0.0, 1.0, 1.0]]
  adv, zero = advantages.outcome_advantages(rewards_, scale=False)
  np.testing.assert_allclose(adv, [[0.5, -0.5, -0.5, 0.5], [0, 0, 0, 0], [1.0, -1.0, 0, 0]], atol=1e-7)
  np.testing.assert_array_equal(zero, [False, True, False])
  scaled, _ = advantages.outcome_advantages(rewards_, eps=0.0)
  np.testing.assert_allclose(scaled[0], [1, -1, -1, 1], atol=1e-6)          # std 0.5: the default divides
  normalized, _ = advantages.normalize_step_rewards([[1.0, 3.0], [2.0, 0.0]], [[True, True], [True, False]],
                                                    scale=False)
  np.testing.assert_allclose(normalized, [[-1.0, 1.0], [0.0, 0.0]])           # mean 2 of the 3 valid steps


def _numpy_policy_loss(ratio, adv, low, high, dual):
  """Per token, by the textbook case split rather than min/clip algebra."""
  out = np.empty_like(ratio)
  for index in np.ndindex(ratio.shape):
    r, a = ratio[index], adv[index]
    if a >= 0:
      value = -a * min(r, 1 + high)
    else:
      value = -a * max(r, 1 - low)
      if dual:
        value = min(value, -dual * a)
    out[index] = value
  return out


@pytest.mark.parametrize("high,dual", [(0.2, 0.0), (0.28, 0.0), (0.28, 3.0)])
def test_clip_higher_and_dual_clip_match_case_split(high, dual):
  rng = np.random.default_rng(0)
  ratio = np.exp(rng.normal(scale=1.0, size=(6, 7))).astype(np.float32)
  adv = rng.normal(size=(6, 7)).astype(np.float32)
  got = loss_lib.clipped_policy_loss(jnp.asarray(ratio), jnp.asarray(adv), clip_eps=0.2, clip_eps_high=high,
                                     dual_clip=dual)
  np.testing.assert_allclose(got, _numpy_policy_loss(ratio, adv, 0.2, high, dual), rtol=1e-6, atol=1e-6)
  if dual:   # the cap is reached somewhere, else the test would not test it
    assert np.any((adv < 0) & (ratio > dual))


def _batch(seed=0, batch=4, seq=6):
  rng = np.random.default_rng(seed)
  mask = (rng.uniform(size=(batch, seq)) < 0.8).astype(np.float32)
  mask[0] = 0.0
  mask[0, :2] = 1.0
  return dict(old_logprobs=-rng.uniform(0.2, 2, (batch, seq)).astype(np.float32),
              ref_logprobs=-rng.uniform(0.2, 2, (batch, seq)).astype(np.float32),
              advantages=np.repeat(rng.normal(size=(batch, 1)), seq, 1).astype(np.float32),
              loss_mask=mask), -rng.uniform(0.2, 2, (batch, seq)).astype(np.float32)


def test_gspo_sequence_ratio_loss_and_gradient():
  """GSPO: s_i = exp(mean_t log r_it); loss_i = -min(s_i A_i, clip(s_i) A_i); with sequence_mean
  and an unclipped s_i, d loss / d logp_it = -A_i s_i / |o_i| / num_outputs."""
  batch, logp = _batch()
  mask = batch["loss_mask"]
  count = mask.sum(1)
  s = np.exp(((logp - batch["old_logprobs"]) * mask).sum(1) / count)                 # [batch]
  adv = batch["advantages"][:, 0]
  expected = np.mean(_numpy_policy_loss(s, adv, 10.0, 10.0, 0.0))                     # eps 10: never clipped
  def loss(lp):
    loss_sum, weight, _ = loss_lib.grpo_terms(lp, jax.tree.map(jnp.asarray, batch), clip_eps=10.0, kl_coef=0.0,
                                              ratio_level="sequence")
    return loss_sum / weight
  np.testing.assert_allclose(loss(jnp.asarray(logp)), expected, rtol=1e-5)
  grad = np.asarray(jax.grad(loss)(jnp.asarray(logp)))
  np.testing.assert_allclose(grad, (-adv * s / count / len(adv))[:, None] * mask, rtol=1e-5, atol=1e-7)


def test_truncated_importance_weights_scale_each_tokens_policy_loss():
  trainer = np.log([[0.5, 0.2, 0.9]])
  sampler = np.log([[0.25, 0.4, 0.1]])
  weights = advantages.truncated_importance_weights(trainer, sampler, [[1, 1, 0]], cap=2.0)
  np.testing.assert_allclose(weights, [[2.0, 0.5, 1.0]], rtol=1e-6)      # 2, 0.5, masked (9 would be capped)
  np.testing.assert_allclose(advantages.truncated_importance_weights(trainer, sampler, [[1, 1, 1]], 3.0),
                             [[2.0, 0.5, 3.0]], rtol=1e-6)
  batch, logp = _batch(1)
  is_weights = np.random.default_rng(2).uniform(0, 2, logp.shape).astype(np.float32)
  plain = loss_lib.grpo_terms(jnp.asarray(logp), jax.tree.map(jnp.asarray, batch), kl_coef=0.0,
                              aggregation="token_mean")
  weighted = loss_lib.grpo_terms(jnp.asarray(logp), jax.tree.map(jnp.asarray, dict(batch, is_weights=is_weights)),
                                 kl_coef=0.0, aggregation="token_mean")
  ratio = np.exp(logp - batch["old_logprobs"])
  per_token = _numpy_policy_loss(ratio, batch["advantages"], 0.2, 0.2, 0.0)
  np.testing.assert_allclose(weighted[0], np.sum(per_token * is_weights * batch["loss_mask"]), rtol=1e-5)
  np.testing.assert_allclose(plain[0], np.sum(per_token * batch["loss_mask"]), rtol=1e-5)


def test_temperature_consistent_logprobs():
  logits = np.random.default_rng(3).normal(size=(2, 5, 11)).astype(np.float32)
  targets = np.random.default_rng(4).integers(0, 11, (2, 5))
  for temperature in (1.0, 0.6):
    scaled = logits / temperature
    expected = scaled - np.log(np.exp(scaled).sum(-1, keepdims=True))
    expected = np.take_along_axis(expected, targets[..., None], -1)[..., 0]
    got = loss_lib.target_logprobs(loss_lib.scale_logits(jnp.asarray(logits), temperature), jnp.asarray(targets))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  rl = RLConfig(temperature=0.6, temperature_logprobs=True)
  assert rl.logprob_temperature == 0.6 and rl.recompute_old_logprobs
  assert RLConfig(temperature=0.6).logprob_temperature == 1.0


def test_overlong_penalty_dapo_shape():
  got = rewards.overlong_penalty([10, 12, 13, 14, 16], max_new_tokens=16, buffer=4, penalty=1.0)
  np.testing.assert_allclose(got, [0, 0, -0.25, -0.5, -1.0])


def test_weighted_reward_functions_and_format_reward():
  outputs = ["so \\boxed{4}", "The answer is 5", "I think 4"]
  correct = rewards.Rewards(np.array([1, 0, 1], np.float32), np.array([True, True, False]), ["sample 2: x"])
  formatted = rewards.score(rewards.named_reward("format"), outputs, ["4"] * 3)
  np.testing.assert_array_equal(formatted.values, [1, 1, 0])
  total = rewards.weighted_sum({"correct": correct, "format": formatted}, (1.0, 0.25))
  np.testing.assert_allclose(total.values, [1.25, 0.25, 0.0])
  np.testing.assert_array_equal(total.valid, [True, True, False])
  with pytest.raises(ValueError, match="reward_functions"):
    rewards.named_reward("length")
  with pytest.raises(ValueError, match="reward_weights"):
    RLConfig(reward_functions=("correct", "format"), reward_weights=(1.0,))


def test_dynamic_sampling_drops_zero_signal_groups_and_rft_coefficient():
  rl = RLConfig(group_size=2, dynamic_sampling="drop")
  valid = np.array([True, True, True, False, True, True])
  np.testing.assert_array_equal(scoring.kept(rl, valid, np.array([False, True, True])),
                                [True, True, False, False, False, False])
  np.testing.assert_array_equal(scoring.kept(RLConfig(group_size=2), valid, np.array([False, True, True])), valid)
  np.testing.assert_array_equal(advantages.correct_only_coefficients([1, 0, 1, 1], [True, True, True, False]),
                                [1, 0, 1, 0])
  with pytest.raises(ValueError, match="config.rl.ratio_level"):
    RLConfig(ratio_level="sentence")


def test_gc_one_on_sft_data_gives_the_sft_gradient():
  """The unified gradient (§5.2.1) with GC = 1 (RFT's coefficient on correct samples), on-policy
  (ratio 1), no KL, token_mean: the RL loss's gradient equals the SFT cross-entropy's on the
  same prompt + response tokens."""
  config = llama.LlamaConfig.from_config(common.model("tiny"))
  params = jax.device_get(jax.tree.map(lambda x: x.value if hasattr(x, "value") else x,
                                       llama.init_params(config, jax.random.key(0))))
  apply_fn = step_lib.make_apply_fn(config)
  rng = np.random.default_rng(0)
  prompts = [[1] + rng.integers(3, config.vocab_size, 4).tolist(), [1] + rng.integers(3, config.vocab_size, 6).tolist()]
  responses = [rng.integers(3, config.vocab_size, n).tolist() for n in (5, 3)]
  outputs = [Completion(0, p, r, [0.0] * len(r), [0] * len(r), "eos", "") for p, r in zip(prompts, responses)]
  gc = [np.ones(len(r), np.float32) for r in responses]
  rows = packing.pack_outputs(outputs, gc, np.ones(2, bool), outputs_per_row=1, max_new_tokens=8, pad_id=0)
  rows = jax.tree.map(jnp.asarray, rows)
  rows["old_logprobs"] = loss_lib.response_logprobs(apply_fn, params, rows)        # on-policy: ratio 1
  rows["ref_logprobs"] = rows["old_logprobs"]
  rl_loss = loss_lib.make_loss_fn(kl_coef=0.0, aggregation="token_mean")

  sft = {name: np.zeros((2, 16), np.int32) for name in ("tokens", "segment_ids", "positions", "loss_mask")}
  for i, (p, r) in enumerate(zip(prompts, responses)):
    n = len(p) + len(r)
    sft["tokens"][i, :n] = p + r
    sft["segment_ids"][i, :n] = 1
    sft["positions"][i, :n] = np.arange(n)
    sft["loss_mask"][i, len(p):n] = 1                                          # targets: the response
  sft = jax.tree.map(jnp.asarray, sft)

  def mean_of(loss_fn, batch):
    return lambda p: (lambda out: out[0] / out[1])(loss_fn(p, batch, apply_fn))
  grads_rl = jax.grad(mean_of(rl_loss, rows))(params)
  grads_sft = jax.grad(mean_of(sft_loss.cross_entropy_loss, sft))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads_rl, grads_sft)
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_rl)) > 1e-4


def test_grpo_config_holds_every_variant_at_the_paper_default():
  rl = RLConfig.from_config(grpo_config.get_config("tiny").rl)
  assert rl.scale_advantages and rl.dual_clip == 0 and rl.ratio_level == "token" and rl.tis_cap == 0
  assert not rl.recompute_old_logprobs and rl.dynamic_sampling == "off"


def test_dpo_pairs_best_with_worst_and_loss_matches_closed_form():
  from dsmath_jax.rl import dpo
  order, live = dpo.pair_order([0.0, 1.0, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0], [True, True, True, False] + [True] * 4, 4)
  np.testing.assert_array_equal(order, [1, 3, 2, 0, 4, 7, 5, 6])     # invalid sample 3 ranks last
  np.testing.assert_array_equal(live, [False, True, True, True])     # a pair with an invalid sample is dead

  rng = np.random.default_rng(5)
  logp, ref = (-rng.uniform(0.1, 2, (3, 2, 5)).astype(np.float32) for _ in range(2))
  mask = np.ones((3, 2, 5), np.float32)
  mask[0, 1, 3:] = 0
  mask[2, 1] = 0                                                        # an empty rejected: no loss
  beta = 0.3
  margin = ((logp - ref) * mask).sum(-1)
  z = beta * (margin[:, 0] - margin[:, 1])
  expected = np.log1p(np.exp(-z[:2])).sum()                             # -log sigmoid(z), live pairs
  loss_sum, weight, _ = dpo.dpo_terms(jnp.asarray(logp), jnp.asarray(ref), jnp.asarray(mask), beta=beta)
  np.testing.assert_allclose(loss_sum, expected, rtol=1e-5)
  assert float(weight) == 2.0
  # The gradient coefficient (§5.2.1): +beta sigmoid(-z) on chosen tokens, -beta sigmoid(-z) on rejected.
  grad = np.asarray(jax.grad(lambda lp: dpo.dpo_terms(lp, jnp.asarray(ref), jnp.asarray(mask), beta=beta)[0])(
      jnp.asarray(logp)))
  coefficient = beta / (1 + np.exp(z))
  expected_grad = -np.stack([coefficient, -coefficient], 1)[..., None] * mask
  expected_grad[2] = 0
  np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-7)
  with pytest.raises(ValueError, match="outputs_per_row"):
    RLConfig(objective="dpo", outputs_per_row=1)
