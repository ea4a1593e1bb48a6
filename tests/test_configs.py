"""Every experiment config builds with `:tiny`, names a real task, and rejects unknown keys."""
import importlib.util
import pathlib
import subprocess
import sys

import pytest

from dsmath_jax import main as main_lib

CONFIGS = sorted(p for p in (pathlib.Path(__file__).resolve().parents[1] / "configs").glob("*.py")
                 if p.stem not in ("__init__", "common"))


def _load(path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds_tiny_and_names_a_task(path):
  config = _load(path).get_config("tiny")
  assert config.task in main_lib.tasks(), (path.name, config.task)


def test_main_rejects_unknown_task_and_unknown_key(tmp_path):
  root = pathlib.Path(__file__).resolve().parents[1]
  result = subprocess.run(
      [sys.executable, "-m", "dsmath_jax.main", "--config=configs/sft.py:tiny", f"--workdir={tmp_path}",
       "--config.optim.no_such_key=1"], cwd=root, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "no_such_key" in result.stderr
  result = subprocess.run(
      [sys.executable, "-m", "dsmath_jax.main", "--config=configs/sft.py:tiny", f"--workdir={tmp_path}",
       "--config.task=no_such_task"], cwd=root, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "no_such_task" in result.stderr
