"""Several processes, one mesh: jax.distributed over localhost, as a multi-host launch runs it.

Each run is `python -m dsmath_jax.main` in fresh processes (jax.distributed must start before any
jax call), joined through config.distributed (coordinator 127.0.0.1:PORT) or the launcher's
variables (JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID), each with 2 simulated CPU
devices; the reference is one process holding all 4 devices. pretrain, SFT and GRPO :tiny give the
one-process losses (issue 17).
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from dsmath_jax import sharding

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _free_port() -> int:
  with socket.create_server(("127.0.0.1", 0)) as listener:
    return listener.getsockname()[1]


def _env(devices: int, **extra) -> dict:
  env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "TPU_", "SLURM_"))}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
  return env


def run_main(config: str, workdir, *overrides, processes: int = 1, use_env: bool = False,
             timeout: int = 900) -> list[dict]:
  """Runs main in `processes` processes; returns WORKDIR/metrics.jsonl records."""
  port, commands = _free_port(), []
  for index in range(processes):
    argv = [sys.executable, "-m", "dsmath_jax.main", f"--config={config}", f"--workdir={workdir}",
            *overrides]
    extra = {}
    if processes > 1 and use_env:
      extra = dict(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(processes),
                   JAX_PROCESS_ID=str(index))
    elif processes > 1:
      argv += [f"--config.distributed.coordinator_address=127.0.0.1:{port}",
               f"--config.distributed.num_processes={processes}",
               f"--config.distributed.process_id={index}"]
    commands.append(subprocess.Popen(argv, cwd=ROOT, env=_env(4 // processes, **extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  outputs = []
  try:
    for command in commands:
      outputs.append(command.communicate(timeout=timeout)[0])
  finally:
    for command in commands:
      if command.poll() is None:
        command.kill()
  for index, (command, output) in enumerate(zip(commands, outputs)):
    assert command.returncode == 0, f"process {index} of {processes}:\n{output[-4000:]}"
  lines = pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines()
  return [json.loads(line) for line in lines]


def test_distributed_config_reads_the_launchers_environment():
  config = {"distributed": {"coordinator_address": "", "num_processes": 0, "process_id": -1}}
  environ = {"JAX_COORDINATOR_ADDRESS": "node0:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
  wanted = sharding.DistributedConfig.from_config(config["distributed"]).resolved(environ)
  assert wanted == sharding.DistributedConfig("node0:1234", 4, 3)
  explicit = sharding.DistributedConfig("a:1", 2, 0).resolved(environ)    # the config wins
  assert explicit == sharding.DistributedConfig("a:1", 2, 0)
  with pytest.raises(ValueError, match="config.distributed.*num_procs"):
    sharding.DistributedConfig.from_config({"num_procs": 2})


def test_two_processes_without_coordinator_fail_clearly():
  class Config(dict):
    get = dict.get
  with pytest.raises(ValueError, match="coordinator"):
    sharding.maybe_initialize_distributed(Config(distributed={"num_processes": 2}), environ={})


def test_process_rows_are_one_block_or_refused():
  """A host feeds one contiguous block of rows; devices holding scattered rows are refused."""
  class Sharding:                      # what jax reports for 4 rows of 8 held in two pieces
    def __init__(self, *blocks):
      self.blocks = blocks
    def addressable_devices_indices_map(self, shape):
      return {device: (slice(*block),) for device, block in enumerate(self.blocks)}
  assert sharding.process_rows(Sharding((4, 6), (6, 8), (4, 6)), 8) == slice(4, 8)
  assert sharding.process_rows(Sharding((None, None)), 8) == slice(0, 8)      # replicated
  with pytest.raises(ValueError, match=r"rows \[\(0, 2\), \(4, 6\)\].*contiguous"):
    sharding.process_rows(Sharding((0, 2), (4, 6)), 8)


@pytest.mark.slow
def test_grpo_tiny_two_processes_match_one(tmp_path):
  """GRPO :tiny, one update: 2 processes x 2 devices give one process x 4 devices' metrics.

  Every process samples and scores the same questions with the same keys (the sampler's outputs are
  all-gathered), the update runs on the one 4-device mesh; only process 0 writes metrics.
  """
  overrides = ("--config.optim.steps=1",)
  one = run_main("configs/grpo.py:tiny", tmp_path / "one", *overrides)
  two = run_main("configs/grpo.py:tiny", tmp_path / "two", *overrides, processes=2, use_env=True)
  assert [r["step"] for r in two] == [r["step"] for r in one] == [1]    # one writer
  for name in ("response_length", "entropy", "loss", "kl", "grad_norm", "reward_mean"):
    np.testing.assert_allclose(two[0][name], one[0][name], rtol=1e-4, atol=1e-6, err_msg=name)
  assert (tmp_path / "two" / "checkpoints").is_dir()


def _assert_same_losses(two: list[dict], one: list[dict]) -> None:
  assert [r["step"] for r in two] == [r["step"] for r in one]          # process 0 alone writes
  for want, got in zip(one, two):
    for name in ("loss", "grad_norm", "eval_loss"):
      if name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, err_msg=f"{name} {want['step']}")


@pytest.mark.slow
def test_pretrain_tiny_two_processes_match_one_and_resume(tmp_path):
  """pretrain :tiny, 3 steps: 2 processes x 2 devices train on the 1-process batches.

  Every host packs the same global batch and feeds its rows, so losses, gradient norms and held-out
  losses equal one process x 4 devices'. Then step 3's checkpoint is removed and the 2-process run
  re-run: both processes restore step 2 (state and their data positions) and redo step 3 exactly.
  """
  overrides = ("--config.optim.steps=3", "--config.train.checkpoint_every=2")
  one = run_main("configs/pretrain.py:tiny", tmp_path / "one", *overrides)
  two = run_main("configs/pretrain.py:tiny", tmp_path / "two", *overrides, processes=2)
  assert [r["step"] for r in one] == [0, 1, 2, 3]
  _assert_same_losses(two, one)
  checkpoints = tmp_path / "two" / "checkpoints"
  assert sorted(p.name for p in (checkpoints / "2" / "data").glob("*.json")) == [
      "process_0-of-2.json", "process_1-of-2.json"]                   # each host's data position
  shutil.rmtree(checkpoints / "3")
  resumed = run_main("configs/pretrain.py:tiny", tmp_path / "two", *overrides, processes=2)
  assert [r["step"] for r in resumed[len(two):]] == [3]               # resumed after step 2
  _assert_same_losses(resumed[len(two):], one[-1:])


@pytest.mark.slow
def test_sft_tiny_two_processes_match_one(tmp_path):
  """SFT :tiny, 3 steps: first-fit packed rows, prompt-masked losses equal over 2 processes and 1."""
  overrides = ("--config.optim.steps=3",)
  one = run_main("configs/sft.py:tiny", tmp_path / "one", *overrides)
  two = run_main("configs/sft.py:tiny", tmp_path / "two", *overrides, processes=2, use_env=True)
  assert [r["step"] for r in one] == [0, 1, 2, 3]
  _assert_same_losses(two, one)
  assert (tmp_path / "two" / "model").is_dir()
