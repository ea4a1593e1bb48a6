"""SIGKILL a pretraining run, re-run the same command: same losses, step for step."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 8


def _command(workdir):
  return [sys.executable, "-m", "dsmath_jax.main", "--config=configs/pretrain.py:tiny",
          f"--workdir={workdir}", f"--config.optim.steps={STEPS}", "--config.train.checkpoint_every=2",
          "--config.eval.every_steps=0", "--config.mesh.fsdp=2"]


def _env():
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  return env


def _losses(workdir):
  """step -> loss; a step logged twice (before the kill and after resuming) keeps its last."""
  losses = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      record = json.loads(line)
      if "loss" in record:
        losses[record["step"]] = record["loss"]
  return losses


def _logged_steps(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  return len(_losses(workdir)) if os.path.exists(path) else 0


def test_killed_run_resumes_with_identical_losses(tmp_path):
  full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
  uninterrupted = subprocess.Popen(_command(full), cwd=ROOT, env=_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  victim = subprocess.Popen(_command(killed), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + 240
  while _logged_steps(killed) < 5 and victim.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  os.kill(victim.pid, signal.SIGKILL)
  victim.wait()
  logged_before_kill = _logged_steps(killed)
  assert 5 <= logged_before_kill < STEPS, "the run must die part-way"
  assert not os.path.isdir(os.path.join(killed, "model"))

  resumed = subprocess.run(_command(killed), cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "restored checkpoint at step" in resumed.stderr
  assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()[-3000:]

  expected, got = _losses(full), _losses(killed)
  assert sorted(expected) == sorted(got) == list(range(1, STEPS + 1))
  np.testing.assert_allclose([got[s] for s in sorted(got)], [expected[s] for s in sorted(expected)],
                             rtol=1e-6)
  assert expected[STEPS] < expected[1]
  assert os.path.isfile(os.path.join(killed, "model", "model.json"))
  with open(os.path.join(killed, "config.json")) as f:       # the resolved config, overrides included
    resolved = json.load(f)
  assert (resolved["optim"]["steps"], resolved["mesh"]["fsdp"]) == (STEPS, 2)
