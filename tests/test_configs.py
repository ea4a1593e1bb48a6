"""Every experiment config builds with `:tiny`, names a real task, and rejects unknown keys."""
import importlib.util
import re
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


def _grpo_door(config):
  from dsmath_jax.rl.config import GRPOConfig
  return GRPOConfig.from_config(config)


def _iterative_door(config):
  from dsmath_jax.rl import iterative
  return iterative.typed(config)


def _reward_model_door(config):
  from dsmath_jax.rl import rm_task
  return rm_task.RewardModelConfig.from_config(config)


def _arithmetic_door(config):
  """experiments/grpo_arithmetic's scripts' door: the GRPO run and the typed `experiment` section."""
  path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "grpo_arithmetic" / "experiment_config.py"
  return _load(path).typed(config)


def _experiment_door(config):                  # experiments/grpo_smollm2/run.py reads `experiment`
  from dsmath_jax.rl.config import GRPOConfig
  return GRPOConfig.from_config(config, ignore=("experiment",))


# Configs run by an experiment's scripts rather than a task: their door (by config file name).
EXPERIMENT_DOORS = {"grpo_arithmetic": _arithmetic_door, "grpo_arithmetic_section5": _arithmetic_door,
                    "grpo_arithmetic_figure5": _arithmetic_door, "grpo_smollm2": _experiment_door}


# RL configs: the typed door their task's run() passes first (before any model is built), and
# misspelt fields (section path, wrong key, the field meant), one per typed section.
_GRPO_TYPOS = ((), "chekpoint", "checkpoint"), (("rl",), "kl_coeff", "kl_coef"), \
    (("data",), "questions_per_stp", "questions_per_step"), (("optim",), "warmup", "warmup_steps"), \
    (("tool",), "max_round", "max_rounds"), (("sandbox",), "allow_unisolate", "allow_unisolated"), \
    (("train",), "checkpoint_evry", "checkpoint_every"), \
    (("model",), "hiden_size", "hidden_size")
RL_DOORS = {
    "grpo": (_grpo_door, _GRPO_TYPOS),
    "grpo_deepseekmath_rl": (_grpo_door, _GRPO_TYPOS),
    "grpo_process": (_grpo_door, _GRPO_TYPOS),
    "ppo": (_grpo_door, _GRPO_TYPOS + ((("rl",), "gae_lamda", "gae_lambda"), (("rl",), "value_clp", "value_clip"))),
    "grpo_arithmetic": (_arithmetic_door, _GRPO_TYPOS),
    "grpo_arithmetic_figure5": (_arithmetic_door, _GRPO_TYPOS + (
        (("experiment", "arms", "ppo", "rl"), "objectiv", "objective"),
        (("experiment", "arms", "rft", "optim"), "lrr", "lr"))),
    "grpo_iterative": (_iterative_door, _GRPO_TYPOS + (
        (("rm",), "replay_fractoin", "replay_fraction"), (("rm", "label"), "num_question", "num_questions"),
        (("rm", "optim"), "lr_", "lr"))),
    "reward_model": (_reward_model_door, (
        ((), "tokeniser", "tokenizer"), (("data",), "seq_length", "seq_len"),
        (("label",), "num_completion", "num_completions"), (("optim",), "clipnorm", "clip_norm"),
        (("train",), "num_microbatch", "num_microbatches"), (("model",), "hiden_size", "hidden_size"))),
}


@pytest.mark.parametrize("name", sorted(RL_DOORS))
def test_rl_configs_fail_fast_on_unknown_variant_argument_or_field_naming_it(name):
  module = _load(next(p for p in CONFIGS if p.stem == name))
  with pytest.raises(ValueError, match="unknown config variant 'tinny'"):
    module.get_config("tinny")
  with pytest.raises(ValueError, match="unknown config argument 'group'"):
    module.get_config("tiny,group=8")
  door, typos = RL_DOORS[name]
  for variant in (None, "tiny"):
    door(module.get_config(variant))                          # the configs as written pass
  for path, wrong, meant in typos:
    config = module.get_config("tiny")
    section = config
    for key in path:
      section = section[key]
    section[wrong] = section[meant]
    where = ".".join(("config",) + path)
    with pytest.raises(ValueError, match=re.escape(f"{where}.{wrong} (did you mean {where}.{meant}?)")):
      door(config)


# ---- Configs that cannot be mistyped -----------------------------------------------------------

def _doors() -> dict:
  """config.task -> the task's door: typed_config(config) turns the whole config into typed values
  (frozen dataclasses), refusing unknown, misspelt and missing keys by name. None: that task's door
  is routed like main routes it (iterative RL when rl.iterations > 0)."""
  from dsmath_jax import quickstart, tokenizer_task
  from dsmath_jax.corpus import pipeline as corpus_pipeline
  from dsmath_jax.datasets import task as dataset_task
  from dsmath_jax.model import convert
  from dsmath_jax.sample import task as sample_task
  from dsmath_jax.eval import task as eval_task
  from dsmath_jax.rl import rm_task
  from dsmath_jax.train import trainer

  def grpo(config):
    if config.rl.iterations > 0:
      return _iterative_door(config)
    return _experiment_door(config) if "experiment" in config else _grpo_door(config)

  return {"pretrain": trainer.typed_config, "sft": trainer.typed_config, "sample": sample_task.typed_config,
          "convert": convert.typed_config, "tokenizer": tokenizer_task.typed_config,
          "dataset": dataset_task.typed_config, "corpus": corpus_pipeline.typed_config,
          "quickstart": quickstart.typed_config, "grpo": grpo,
          "reward_model": rm_task.RewardModelConfig.from_config, "eval": eval_task.typed_config}


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
OPEN_MAPS = {"dataset": ("config.questions", "config.sft", ".files"),   # suffixes of `where`
             # an experiment's own section is read (and checked) by its run.py, not by the task
             "grpo": ("config.experiment",),
             # figure5.py's arms are named by the user (each arm's own keys are checked)
             "grpo_arithmetic": ("config.experiment.arms",)}
# Quickstart stages whose tasks' doors land with the rl/eval changes (checked when the stage starts).
PENDING = ("config.grpo", "config.eval_")


def _sections(config, task, where="config"):
  """(where, section) for the config and every ConfigDict section below it, open maps left out."""
  import ml_collections
  open_map = where.endswith((".sources",) + OPEN_MAPS.get(task, ()))
  # config.distributed is read before any task's door, by main (sharding.DistributedConfig, strict:
  # tests/test_multiprocess.py), so a misspelling there fails before the door is reached.
  runtime = where.endswith(".distributed")
  found = [] if open_map or runtime or where.startswith(PENDING) else [(where, config)]
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict) and len(value):
      found += _sections(value, task, f"{where}.{key}")
  return found


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_the_door_takes_the_config_and_refuses_a_misspelt_key(path):
  """Every key a config sets is read by its task (no dead keys), and a misspelt key placed into any
  section (what an unlocked config or a forked config file can do) fails at the door, naming it."""
  config = _load(path).get_config("tiny")
  door = EXPERIMENT_DOORS.get(path.stem) or _door(config)
  door(config)
  # grpo_arithmetic's `experiment` section is typed by its door, so it is checked like any other.
  sections = _sections(config, "grpo_arithmetic" if door is _arithmetic_door else config.task)
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
