"""The sharded, micro-batched step equals the one-device step; the CE loss equals numpy's."""

import jax
import ml_collections
import numpy as np
import pytest

from configs import common
from dsmath_jax import sharding
from dsmath_jax.model import llama
from dsmath_jax.train import loss as loss_lib
from dsmath_jax.train import optim
from dsmath_jax.train import state as state_lib
from dsmath_jax.train import step as step_lib


def _config():
  c = ml_collections.ConfigDict()
  c.seed = 3
  c.model = common.model("tiny")
  # eps=1e-3 keeps Adam's g / (sqrt(v) + eps) smooth in g: with the usual 1e-8, a gradient
  # entry near 1e-9 turns float32 summation-order noise into update noise of order lr.
  c.optim = dict(lr=1e-2, schedule="constant", steps=10, warmup_steps=0, clip_norm=1.0,
                 weight_decay=0.1, eps=1e-3)
  return c


def _batch(rows=8, seq=24, vocab=320, seed=0):
  """Packed rows: two documents then padding; the first 5 tokens of each document are prompt."""
  rng = np.random.default_rng(seed)
  tokens = rng.integers(3, vocab, size=(rows, seq)).astype(np.int32)
  segment_ids = np.zeros((rows, seq), np.int32)
  loss_mask = np.zeros((rows, seq), np.float32)
  for r in range(rows):
    cut, end = rng.integers(7, seq // 2 + 1), rng.integers(seq // 2 + 7, seq + 1)
    segment_ids[r, :cut], segment_ids[r, cut:end] = 1, 2
    loss_mask[r, 5:cut], loss_mask[r, cut + 5:end] = 1, 1
    tokens[r, end:] = 0
  positions = np.asarray(llama.segment_positions(segment_ids))
  return dict(tokens=tokens, segment_ids=segment_ids, positions=positions, loss_mask=loss_mask)


def _run(mesh_shape, num_microbatches, steps=2):
  config = _config()
  devices = jax.devices()[:int(np.prod(mesh_shape))]
  mesh = sharding.make_mesh(dict(zip(sharding.MESH_AXES, mesh_shape)), devices)
  rules = common.LOGICAL_AXIS_RULES
  model_config = llama.LlamaConfig.from_config(config.model)
  state, shardings = state_lib.create_train_state(optim.OptimConfig.from_config(config.optim), model_config, mesh,
                                                   rules, seed=config.seed)
  batch = _batch()
  step = step_lib.compile_train_step(
      shardings, mesh, rules, {k: v.shape for k, v in batch.items()},
      loss_fn=loss_lib.cross_entropy_loss, apply_fn=step_lib.make_apply_fn(model_config),
      num_microbatches=num_microbatches)
  losses = []
  for _ in range(steps):
    global_batch = sharding.put_global(_batch(), sharding.batch_sharding(mesh, rules, 2))
    state, metrics = step(state, global_batch)
    losses.append(float(metrics["loss"]))
  return losses, jax.device_get(state.params), metrics


@pytest.fixture(scope="module")
def one_device():
  return _run((1, 1, 1), 1)


@pytest.mark.parametrize("mesh_shape,micro", [((2, 2, 2), 1), ((1, 1, 1), 4)])
def test_sharded_and_microbatched_step_match_one_device(one_device, mesh_shape, micro):
  losses, params, metrics = _run(mesh_shape, micro)
  np.testing.assert_allclose(losses, one_device[0], rtol=1e-5)
  np.testing.assert_allclose(float(metrics["grad_norm"]), float(one_device[2]["grad_norm"]), rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               params, one_device[1])
  assert losses[1] < losses[0]   # the first update lowered the loss on its batch


def _logits_apply(params, tokens, **kwargs):
  """A 'model' whose logits are its parameters: isolates the loss from the network."""
  del tokens, kwargs
  return params["logits"]


def test_cross_entropy_matches_numpy():
  rng = np.random.default_rng(1)
  batch = _batch(rows=2, seq=24, vocab=7, seed=1)
  logits = rng.normal(size=(2, 24, 7)).astype(np.float32)
  loss_sum, weight, aux = loss_lib.cross_entropy_loss({"logits": logits}, batch, _logits_apply,
                                                      z_loss=1e-2)
  expected_nll, expected_z, count = 0.0, 0.0, 0
  for r in range(2):
    for t in range(1, 24):        # logits at t-1 predict tokens[t]
      seg = batch["segment_ids"][r]
      if batch["loss_mask"][r, t] and seg[t] != 0 and seg[t] == seg[t - 1]:
        row = logits[r, t - 1].astype(np.float64)
        log_z = np.log(np.sum(np.exp(row)))
        expected_nll += log_z - row[batch["tokens"][r, t]]
        expected_z += 1e-2 * log_z ** 2
        count += 1
  assert count > 4 and float(weight) == count
  np.testing.assert_allclose(float(aux["nll"]), expected_nll, rtol=1e-5)
  np.testing.assert_allclose(float(loss_sum), expected_nll + expected_z, rtol=1e-5)


def test_batch_that_does_not_divide_the_mesh_names_the_axes():
  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2))
  with pytest.raises(ValueError, match=r"6 does not divide.*'data': 2, 'fsdp': 2"):
    sharding.check_batch_divides(6, mesh, common.LOGICAL_AXIS_RULES)
