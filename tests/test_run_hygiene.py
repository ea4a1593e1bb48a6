"""Runs refuse bad state at the door: non-positive knobs, a batch the mesh cannot split, missing
files, and a resumed run whose config differs from the one it was started with (issue 16)."""
import json
import os
import subprocess
import sys

import pytest

from configs import grpo as grpo_config
from configs import pretrain as pretrain_config
from configs import reward_model as reward_model_config
from dsmath_jax import config_types
from dsmath_jax.rl import rm_task
from dsmath_jax.rl.config import GRPOConfig
from dsmath_jax.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_negative_steps_on_the_command_line_fail_naming_the_field(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "dsmath_jax.main", "--config=configs/pretrain.py:tiny", f"--workdir={tmp_path}",
       "--config.optim.steps=-5"], cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT))
  assert result.returncode != 0
  assert "config.optim.steps=-5 must be > 0" in result.stderr
  assert not os.path.exists(tmp_path / "model") and not os.path.exists(tmp_path / "config.json")


@pytest.mark.parametrize("section,key,value,where", [
    ("optim", "steps", 0, "config.optim.steps=0 must be > 0"),
    ("optim", "lr", -1e-3, "config.optim.lr=-0.001 must be > 0"),
    ("optim", "warmup_steps", -1, "config.optim.warmup_steps=-1 must be >= 0"),
    ("data", "global_batch", 0, "config.data.global_batch=0 must be > 0"),
    ("data", "seq_len", -64, "config.data.seq_len=-64 must be > 0"),
    ("train", "num_microbatches", 0, "config.train.num_microbatches=0 must be > 0"),
    ("train", "checkpoint_every", 0, "config.train.checkpoint_every=0 must be > 0"),
])
def test_pretrain_door_refuses_non_positive_knobs_naming_them(section, key, value, where):
  config = pretrain_config.get_config("tiny")
  config[section][key] = value
  with pytest.raises(ValueError, match=where.replace(".", r"\.")):
    trainer.typed_config(config)


def test_rl_doors_refuse_non_positive_knobs_naming_them():
  config = grpo_config.get_config("tiny")
  config.rl.group_size = 0
  with pytest.raises(ValueError, match=r"config\.rl\.group_size=0 must be > 0"):
    GRPOConfig.from_config(config)
  config = grpo_config.get_config("tiny")
  config.data.questions_per_step = -2
  with pytest.raises(ValueError, match=r"config\.data\.questions_per_step=-2 must be > 0"):
    GRPOConfig.from_config(config)
  config = reward_model_config.get_config("tiny")
  config.optim.steps = -5
  with pytest.raises(ValueError, match=r"config\.optim\.steps=-5 must be > 0"):
    rm_task.RewardModelConfig.from_config(config)


def test_batch_that_does_not_split_over_the_mesh_fails_naming_it(tmp_path):
  config = pretrain_config.get_config("tiny")     # 8 simulated devices (conftest): fsdp=-1 -> 8 ways
  config.data.global_batch = 12
  with pytest.raises(ValueError, match=r"data\.global_batch.* size 12 does not divide over mesh axes"):
    trainer.train(config, str(tmp_path), kind="text")
  config = reward_model_config.get_config("tiny")
  config.data.global_batch = 6
  with pytest.raises(ValueError, match=r"config\.data\.global_batch.* size 6 does not divide over mesh axes"):
    rm_task.run(config, str(tmp_path / "rm"))


def test_missing_files_fail_at_the_door_naming_the_field(tmp_path):
  missing = str(tmp_path / "nowhere")
  config = pretrain_config.get_config("tiny")
  config.checkpoint = missing
  with pytest.raises(FileNotFoundError, match=rf"config\.checkpoint='{missing}'"):
    trainer.train(config, str(tmp_path / "a"), kind="text")
  assert not os.path.exists(tmp_path / "a" / "config.json")        # nothing written for a refused run
  config = pretrain_config.get_config("tiny")
  config.data.tokenizer = missing + ".model"
  config.data.sources = dict(web=dict(jsonl=missing + ".jsonl"))
  with pytest.raises(FileNotFoundError, match=r"config\.data\.tokenizer=.*config\.data\.sources\.web\.jsonl="):
    trainer.train(config, str(tmp_path / "b"), kind="text")
  config = grpo_config.get_config("tiny")
  config.data.questions = f"jsonl:{missing}.jsonl"
  with pytest.raises(FileNotFoundError, match=r"config\.data\.questions=.*nowhere\.jsonl"):
    from dsmath_jax.rl import grpo
    grpo.run(config, str(tmp_path / "c"))
  config = reward_model_config.get_config("tiny")
  config.data.source = f"prm800k:{missing}.jsonl"
  with pytest.raises(FileNotFoundError, match=r"config\.data\.source=.*nowhere\.jsonl"):
    rm_task.run(config, str(tmp_path / "d"))


def _resumable_workdir(tmp_path, config):
  """A workdir as a killed run leaves it: its config.json and one checkpoint step."""
  workdir = str(tmp_path / "run")
  config_types.write_config(config, workdir)
  os.makedirs(os.path.join(workdir, "checkpoints", "4"))
  return workdir


def test_resumed_run_with_another_config_stops_naming_the_keys(tmp_path):
  config = pretrain_config.get_config("tiny")
  workdir = _resumable_workdir(tmp_path, config)
  config_types.write_config(config, workdir)                       # the same config resumes
  changed = pretrain_config.get_config("tiny")
  changed.optim.lr = 1e-2
  changed.data.sources.math.weight = 0.5
  with pytest.raises(ValueError, match=r"differs from this one in config\.data\.sources\.math\.weight, "
                                       r"config\.optim\.lr;.*allow_config_change=True"):
    config_types.write_config(changed, workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["optim"]["lr"] == config.optim.lr            # the saved config is kept
  with pytest.raises(ValueError, match=r"config\.optim\.lr"):      # through the task's door too
    trainer.train(changed, workdir, kind="text")

  logging_only = pretrain_config.get_config("tiny")                  # exempt: how it is logged and placed
  logging_only.train.log_every = 3
  logging_only.mesh.fsdp = 2
  config_types.write_config(logging_only, workdir)

  changed.allow_config_change = True
  config_types.write_config(changed, workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["optim"]["lr"] == 1e-2                       # the run now says how it goes on


def test_config_change_without_checkpoints_is_a_new_run(tmp_path):
  config = pretrain_config.get_config("tiny")
  config_types.write_config(config, str(tmp_path))
  config.optim.lr = 1e-2
  config_types.write_config(config, str(tmp_path))                  # nothing to resume: no check


def test_changed_keys_lists_added_removed_and_nested_keys():
  saved = {"optim": {"lr": 1.0, "steps": 3}, "data": {"sources": {"a": {"w": 1}}}, "train": {"log_every": 1}}
  current = {"optim": {"lr": 2.0}, "data": {"sources": {"a": {"w": 1}, "b": {"w": 2}}}, "train": {"log_every": 5}}
  assert config_types.changed_keys(saved, current) == ["data.sources.b.w", "optim.lr", "optim.steps"]
