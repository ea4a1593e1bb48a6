"""Checkpointer: sharded state + grain position round-trip; SIGTERM asks the loop to stop."""
import glob
import json
import logging
import os
import signal

import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def _losses(workdir) -> dict:
  """step -> loss of the last record logged for it (a re-run step logs again)."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return {r["step"]: r["loss"] for r in map(json.loads, f) if "loss" in r}


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
  """A tiny pretraining run whose newest checkpoint is damaged (a truncated array file, then a cut
  data-iterator JSON) resumes from the one before it, with a warning naming the damaged file, and
  re-runs the lost steps with exactly the losses of the first run."""
  from configs import pretrain as pretrain_config
  from dsmath_jax.train import pretrain
  config = pretrain_config.get_config("tiny")
  config.optim.steps = 6
  config.train.update(checkpoint_every=2, keep_checkpoints=3)
  config.eval.every_steps = 0
  workdir = str(tmp_path)
  pretrain.run(config, workdir)
  first = _losses(workdir)
  step_dir = os.path.join(workdir, "checkpoints", "6")
  arrays = glob.glob(os.path.join(step_dir, "state", "ocdbt.process_*", "d", "*"))
  with open(max(arrays, key=os.path.getsize), "r+b") as f:      # a copy cut short
    f.truncate(100)
  caplog.set_level(logging.WARNING)
  pretrain.run(config, workdir)
  assert "checkpoint step 6 is unreadable" in caplog.text and f"{step_dir}/state" in caplog.text
  assert "resuming from step 4" in caplog.text
  assert os.path.isdir(step_dir + ".unreadable") and os.path.isdir(step_dir)   # set aside, saved anew
  again = _losses(workdir)
  np.testing.assert_allclose([again[5], again[6]], [first[5], first[6]], rtol=1e-6)

  data_state = os.path.join(step_dir, "data", "process_0-of-1.json")
  with open(data_state) as f:
    text = f.read()
  with open(data_state, "w") as f:                                  # a cut data-iterator state
    f.write(text[:len(text) // 2])
  caplog.clear()
  pretrain.run(config, workdir)
  assert f"{data_state}: the data iterator's position: JSONDecodeError" in caplog.text
  assert "resuming from step 4" in caplog.text
  third = _losses(workdir)
  np.testing.assert_allclose([third[5], third[6]], [first[5], first[6]], rtol=1e-6)


def test_no_readable_checkpoint_fails_naming_every_damaged_file(tmp_path):
  state = {"w": jnp.arange(4.0)}
  iterator = iter(grain.MapDataset.range(10).to_iter_dataset())
  checkpointer = checkpointing.Checkpointer(str(tmp_path), every_steps=1, keep=2)
  for step in (1, 2):
    next(iterator)
    checkpointer.save(step, state, iterator)
  checkpointer.close()
  for step in (1, 2):
    with open(tmp_path / str(step) / "state" / "_METADATA", "w") as f:
      f.write("{")
  checkpointer = checkpointing.Checkpointer(str(tmp_path), every_steps=1, keep=2)
  with pytest.raises(checkpointing.UnreadableCheckpoint) as error:
    checkpointer.restore(state, iterator)
  checkpointer.close()
  for step in (1, 2):
    assert f"{tmp_path}/{step}/state/_METADATA: the train state: JSONDecodeError" in str(error.value)


def _tiny_pretrain_data():
  from configs import pretrain as pretrain_config
  from dsmath_jax import tokenizer as tokenizers
  from dsmath_jax.data import pipeline
  data = pipeline.DataConfig.from_config(pretrain_config.get_config("tiny").data)   # global_batch 8
  return lambda rows: iter(pipeline.batches(data, tokenizers.ByteTokenizer(), "text", rows=rows))


def test_data_position_resumes_on_another_process_count(tmp_path):
  """Every host packs the same global batches, so the saved position is one position: a checkpoint
  of 2 processes (grain's files process_0-of-2.json, process_1-of-2.json) resumes on 1 process and
  a 1-process one feeds the rows of process 1 of 2, each continuing with the uninterrupted batches.
  Positions that differ between the saved files are refused, naming the process counts."""
  batches = _tiny_pretrain_data()
  uninterrupted = batches(slice(0, 8))
  expected = [next(uninterrupted) for _ in range(3)][2]                 # the global batch of step 3
  hosts = [batches(slice(0, 4)), batches(slice(4, 8))]
  for host in hosts:
    next(host), next(host)
  state = {"w": jnp.arange(4.0)}
  checkpointer = checkpointing.Checkpointer(str(tmp_path), every_steps=2)
  assert checkpointer.save(2, state, hosts[0])
  checkpointer.close()
  data_dir = tmp_path / "2" / "data"
  (data_dir / "process_0-of-1.json").rename(data_dir / "process_0-of-2.json")      # as 2 hosts write it
  (data_dir / "process_1-of-2.json").write_text(json.dumps(hosts[1].get_state(), indent=4))

  one = batches(slice(0, 8))                                            # resumed on 1 process
  checkpointer = checkpointing.Checkpointer(str(tmp_path), every_steps=2)
  _, step = checkpointer.restore({"w": jnp.zeros(4)}, one)
  checkpointer.close()
  assert step == 2
  got = next(one)
  for name in expected:
    np.testing.assert_array_equal(got[name], expected[name], err_msg=name)

  # A 1-process position feeds process 1 of 2 its rows of the same global batch.
  single = tmp_path / "single"
  checkpointer = checkpointing.Checkpointer(str(single), every_steps=2)
  full = batches(slice(0, 8))
  next(full), next(full)
  checkpointer.save(2, state, full)
  checkpointer.close()
  second_host = batches(slice(4, 8))
  checkpointer = checkpointing.Checkpointer(str(single), every_steps=2)
  checkpointer.restore({"w": jnp.zeros(4)}, second_host)
  checkpointer.close()
  np.testing.assert_array_equal(next(second_host)["tokens"], expected["tokens"][4:8])

  next(hosts[1])                                                        # host 1 one batch further
  (data_dir / "process_1-of-2.json").write_text(json.dumps(hosts[1].get_state(), indent=4))
  checkpointer = checkpointing.Checkpointer(str(tmp_path), every_steps=2)
  with pytest.raises(ValueError, match=r"saved by 2 processes whose data positions differ.*resume with 2 processes"):
    checkpointer.restore({"w": jnp.zeros(4)}, batches(slice(0, 8)))
  checkpointer.close()
