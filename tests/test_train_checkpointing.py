"""Checkpointer: sharded state + grain position round-trip; SIGTERM asks the loop to stop."""
import os
import signal

import grain
import jax
import jax.numpy as jnp
import numpy as np

from configs import common
from dsmath_jax import sharding
from dsmath_jax.train import checkpointing


def test_state_and_data_position_round_trip_and_sigterm(tmp_path):
  mesh = sharding.make_mesh(dict(data=2, fsdp=4, tensor=1))
  rules = common.LOGICAL_AXIS_RULES
  weight_sharding = sharding.logical_sharding(mesh, rules, "embed", "mlp")
  state = {"w": jax.device_put(jnp.arange(32.0).reshape(8, 4), weight_sharding),
           "step": jnp.asarray(7, jnp.int32)}
  iterator = iter(grain.MapDataset.range(100).shuffle(seed=3).to_iter_dataset())
  consumed = [next(iterator) for _ in range(5)]
  checkpointer = checkpointing.Checkpointer(str(tmp_path), every_steps=5, keep=2)
  assert checkpointer.save(5, state, iterator)
  assert not checkpointer.save(7, state, iterator)              # off the interval: skipped
  checkpointer.close()
  expected_next = [next(iterator) for _ in range(3)]

  fresh = iter(grain.MapDataset.range(100).shuffle(seed=3).to_iter_dataset())
  target = {"w": jax.device_put(jnp.zeros((8, 4)), weight_sharding), "step": jnp.asarray(0, jnp.int32)}
  checkpointer = checkpointing.Checkpointer(str(tmp_path), every_steps=5, keep=2)
  restored, step = checkpointer.restore(target, fresh)
  assert step == 5 and int(restored["step"]) == 7 and consumed
  np.testing.assert_array_equal(restored["w"], np.arange(32.0).reshape(8, 4))
  assert restored["w"].sharding == weight_sharding                # straight into its shards
  assert [next(fresh) for _ in range(3)] == expected_next         # data position restored

  assert not checkpointer.should_stop(5)
  os.kill(os.getpid(), signal.SIGTERM)                            # how TPU VMs are preempted
  assert checkpointer.should_stop(6)
  checkpointer.close()
