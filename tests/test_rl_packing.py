"""Shared-prompt GRPO rows (dsmath_jax/rl/packing.py): layout by hand, and every response's
log-probs, loss and gradient equal those of its own plain `prompt + response` row."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from dsmath_jax.model import llama
from dsmath_jax.rl import loss as loss_lib
from dsmath_jax.rl import packing
from dsmath_jax.sample.sampler import Completion
from dsmath_jax.train import step as step_lib


def _completion(prompt, response, tool=None):
  return Completion(0, list(prompt), list(response), [-0.1 * (i + 1) for i in range(len(response))],
                    list(tool or [0] * len(response)), "eos", "")


def test_layout_by_hand():
  outputs = [_completion([1, 5, 6], [7, 8]), _completion([1, 5, 6], [9], tool=[1])]
  rows = packing.pack_outputs(outputs, [np.array([0.5, 0.5]), np.array([-2.0])], np.array([True, True]),
                              outputs_per_row=2, max_new_tokens=3, pad_id=0, seq_multiple=8, row_multiple=2)
  np.testing.assert_array_equal(rows["tokens"], [[1, 5, 6, 7, 8, 9, 0, 0], [0] * 8])
  np.testing.assert_array_equal(rows["segment_ids"], [[1, 1, 1, 2, 2, 3, 0, 0], [0] * 8])
  np.testing.assert_array_equal(rows["prefix_segment_ids"], [[0, 0, 0, 1, 1, 1, 0, 0], [0] * 8])
  np.testing.assert_array_equal(rows["positions"], [[0, 1, 2, 3, 4, 3, 0, 0], [0] * 8])
  # 7 is predicted at slot 2 (the prompt's end), 8 at slot 3; 9 also at slot 2, not at 4.
  np.testing.assert_array_equal(rows["target_slots"][0], [[2, 3, 0], [2, 0, 0]])
  np.testing.assert_array_equal(rows["target_tokens"][0], [[7, 8, 0], [9, 0, 0]])
  np.testing.assert_array_equal(rows["loss_mask"][0], [[1, 1, 0], [0, 0, 0]])    # 9 is tool output
  np.testing.assert_allclose(rows["advantages"][0], [[0.5, 0.5, 0], [-2, 0, 0]])
  np.testing.assert_allclose(rows["old_logprobs"][0], [[-0.1, -0.2, 0], [-0.1, 0, 0]])
  assert rows["loss_mask"][1].sum() == 0                                          # the padding row


def test_outputs_of_different_prompts_in_one_row_fail_clearly():
  outputs = [_completion([1, 5], [7]), _completion([1, 6], [7])]
  with pytest.raises(ValueError, match="outputs_per_row"):
    packing.pack_outputs(outputs, [np.zeros(1)] * 2, np.ones(2, bool), outputs_per_row=2,
                         max_new_tokens=2, pad_id=0)


def _groups(rng, vocab, group=3):
  """Two groups of `group` outputs with ragged prompts and responses (one response empty)."""
  outputs, advantages = [], []
  for prompt_len in (5, 9):
    prompt = [1] + rng.integers(3, vocab, prompt_len - 1).tolist()
    for j in range(group):
      length = [6, 0, 3][j] if prompt_len == 5 else [2, 7, 4][j]
      outputs.append(Completion(0, prompt, rng.integers(3, vocab, length).tolist(),
                                (-rng.uniform(0.5, 3, length)).tolist(), [0] * length, "eos", ""))
      advantages.append(np.full(length, rng.normal(), np.float32))
  return outputs, advantages


def test_shared_prompt_rows_equal_one_row_per_output():
  config = llama.LlamaConfig.from_config(common.model("tiny"))
  params = jax.device_get(jax.tree.map(lambda x: x.value if hasattr(x, "value") else x,
                                       llama.init_params(config, jax.random.key(0))))
  apply_fn = step_lib.make_apply_fn(config)
  rng = np.random.default_rng(0)
  outputs, advantages = _groups(rng, config.vocab_size)
  valid = np.ones(len(outputs), bool)
  shared = packing.pack_outputs(outputs, advantages, valid, outputs_per_row=3, max_new_tokens=8, pad_id=0)
  single = packing.pack_outputs(outputs, advantages, valid, outputs_per_row=1, max_new_tokens=8, pad_id=0)
  assert shared["tokens"].shape == (2, 64) and single["tokens"].shape == (6, 64)

  # The reference: each output alone, the plain causal forward pass over prompt + response.
  got = np.asarray(loss_lib.response_logprobs(apply_fn, params, jax.tree.map(jnp.asarray, shared)))
  for index, output in enumerate(outputs):
    ids = jnp.asarray([output.prompt_ids + output.token_ids])
    plain = np.asarray(loss_lib.token_logprobs(apply_fn(params, ids), ids))[0, len(output.prompt_ids):]
    np.testing.assert_allclose(got[index // 3, index % 3, :len(plain)], plain, atol=2e-5)

  for aggregation in loss_lib.AGGREGATIONS:
    loss_fn = loss_lib.make_loss_fn(aggregation=aggregation, normalizer=8.0, kl_coef=0.04)
    results = []
    for rows in (shared, single):
      batch = dict(rows, ref_logprobs=rows["old_logprobs"] - 0.05 * rows["loss_mask"])
      batch = jax.tree.map(jnp.asarray, batch)
      (loss_sum, (weight, aux)), grads = jax.value_and_grad(
          lambda p: (lambda out: (out[0], out[1:]))(loss_fn(p, batch, apply_fn)), has_aux=True)(params)
      results.append((float(loss_sum / weight), {k: float(v / weight) for k, v in aux.items()}, grads))
    (loss_a, aux_a, grads_a), (loss_b, aux_b, grads_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5, abs=1e-6), aggregation
    for name in aux_a:
      assert aux_a[name] == pytest.approx(aux_b[name], rel=1e-4, abs=1e-6), (aggregation, name)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads_a, grads_b)
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_a)) > 1e-4
