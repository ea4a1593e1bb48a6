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


# ---- Configs that cannot be mistyped -----------------------------------------------------------

def _doors() -> dict:
  """config.task -> the task's door: typed_config(config) turns the whole config into typed values
  (frozen dataclasses), refusing unknown, misspelt and missing keys by name. None: that task's door
  lands with its own change (rl/: grpo, reward_model; eval/: eval); fill it in on merge."""
  from dsmath_jax import quickstart, tokenizer_task
  from dsmath_jax.corpus import pipeline as corpus_pipeline
  from dsmath_jax.datasets import task as dataset_task
  from dsmath_jax.model import convert
  from dsmath_jax.sample import task as sample_task
  from dsmath_jax.train import trainer
  return {"pretrain": trainer.typed_config, "sft": trainer.typed_config, "sample": sample_task.typed_config,
          "convert": convert.typed_config, "tokenizer": tokenizer_task.typed_config,
          "dataset": dataset_task.typed_config, "corpus": corpus_pipeline.typed_config,
          "quickstart": quickstart.typed_config, "grpo": None, "reward_model": None, "eval": None}


def _door(config):
  door = _doors()[config.task]
  if door is None:
    pytest.skip(f"the {config.task} task's door lands with the rl/eval changes")
  return door


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_unknown_variant_and_argument_fail_naming_them(path):
  module = _load(path)
  with pytest.raises(ValueError, match="'tinny'"):
    module.get_config("tinny")
  with pytest.raises(ValueError, match="'no_such_key'"):
    module.get_config("tiny,no_such_key=1")


# Sections whose keys are names the user picks: a new key adds a source, it is not a misspelling.
OPEN_MAPS = {"dataset": ("config.questions", "config.sft", ".files")}   # suffixes of `where`
# Quickstart stages whose tasks' doors land with the rl/eval changes (checked when the stage starts).
PENDING = ("config.grpo", "config.eval_")


def _sections(config, task, where="config"):
  """(where, section) for the config and every ConfigDict section below it, open maps left out."""
  import ml_collections
  open_map = where.endswith((".sources",) + OPEN_MAPS.get(task, ()))
  found = [] if open_map or where.startswith(PENDING) else [(where, config)]
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict) and len(value):
      found += _sections(value, task, f"{where}.{key}")
  return found


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_the_door_takes_the_config_and_refuses_a_misspelt_key(path):
  """Every key a config sets is read by its task (no dead keys), and a misspelt key placed into any
  section (what an unlocked config or a forked config file can do) fails at the door, naming it."""
  config = _load(path).get_config("tiny")
  door = _door(config)
  door(config)
  sections = _sections(config, config.task)
  assert len(sections) >= 2, sections
  for where, section in sections:
    key = sorted(section.keys())[0]
    misspelt = key + "x"                                  # e.g. optim.lr -> optim.lrx
    broken = config.copy_and_resolve_references()
    target = broken
    for part in where.split(".")[1:]:
      target = target[part]
    target.unlock()
    target[misspelt] = section[key]
    with pytest.raises(ValueError, match=misspelt):
      door(broken)
