"""Learning-rate schedules against hand-computed values (paper §2.3 and §3.1)."""
import numpy as np
import pytest

from dsmath_jax.train import optim


def _schedule(**fields):
  return optim.make_schedule(optim.OptimConfig.from_config(fields))


def test_deepseek_multistep_schedule():
  # 100 steps, warmup 10, peak 4.2e-4: ramp, then x0.316 from step 80, x0.1 from step 90.
  schedule = _schedule(lr=4.2e-4, schedule="deepseek", steps=100, warmup_steps=10)
  expected = {0: 0.0, 5: 2.1e-4, 10: 4.2e-4, 79: 4.2e-4, 80: 4.2e-4 * 0.316, 89: 4.2e-4 * 0.316,
              90: 4.2e-5, 99: 4.2e-5}
  for step, value in expected.items():
    np.testing.assert_allclose(float(schedule(step)), value, rtol=1e-6, err_msg=f"step {step}")


def test_constant_schedule_is_the_paper_sft_rate():
  schedule = _schedule(lr=5e-5, schedule="constant", steps=500, warmup_steps=0)
  np.testing.assert_allclose([float(schedule(s)) for s in (0, 250, 499)], [5e-5] * 3, rtol=1e-7)


def test_warmup_cosine_schedule():
  # warmup 4 of 24 steps, then cos from 1e-3 to 1e-4 over the remaining 20.
  schedule = _schedule(lr=1e-3, schedule="cosine", steps=24, warmup_steps=4, end_lr_ratio=0.1)
  expected = {2: 0.5e-3, 4: 1e-3, 14: 1e-4 + 0.9e-3 * 0.5, 9: 1e-4 + 0.9e-3 * (1 + np.cos(np.pi / 4)) / 2,
              24: 1e-4}
  for step, value in expected.items():
    np.testing.assert_allclose(float(schedule(step)), value, rtol=1e-6, err_msg=f"step {step}")


def test_unknown_schedule_is_named():
  with pytest.raises(ValueError, match="'linear'"):
    _schedule(lr=1.0, schedule="linear", steps=1)


def test_adamw_update_matches_hand_computed():
  """One update on a matrix and a norm scale: clip, AdamW with decay on the matrix only."""
  import jax.numpy as jnp
  tx = optim.make_optimizer(optim.OptimConfig.from_config(dict(
      lr=0.1, schedule="constant", steps=10, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.1,
      clip_norm=1.0)))
  params = {"kernel": jnp.full((2, 2), 2.0), "norm": {"scale": jnp.full((2,), 2.0)}}
  grads = {"kernel": jnp.full((2, 2), 3.0), "norm": {"scale": jnp.full((2,), 4.0)}}
  updates, _ = tx.update(grads, tx.init(params), params)
  # After clipping to norm 1 every gradient entry g becomes g / ||g||; Adam's first step
  # is then g_clip / |g_clip| = 1 (bias-corrected), so update = -lr * (1 + wd * p) on decayed.
  np.testing.assert_allclose(updates["kernel"], -0.1 * (1 + 0.1 * 2.0), rtol=1e-6)
  np.testing.assert_allclose(updates["norm"]["scale"], -0.1 * 1.0, rtol=1e-6)
