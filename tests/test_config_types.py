"""Typed configs at the task door: unknown, misspelt and missing keys fail naming the key."""
import dataclasses

import ml_collections
import pytest

from configs import common
from dsmath_jax import config_types
from dsmath_jax.model import llama


@dataclasses.dataclass(frozen=True)
class Optim:
  lr: float                 # peak learning rate
  steps: int = 10           # optimizer updates
  betas: tuple = (0.9, 0.95)


def test_strict_fields_accepts_known_keys_and_applies_defaults():
  section = ml_collections.ConfigDict(dict(lr=1e-3, betas=[0.8, 0.9]))
  optim = config_types.from_section(Optim, section, where="config.optim")
  assert optim == Optim(lr=1e-3, steps=10, betas=(0.8, 0.9))       # lists become tuples: hashable
  hash(optim)


def test_misspelt_key_fails_naming_it_and_the_likely_field():
  with pytest.raises(ValueError, match=r"config\.optim\.step \(did you mean config\.optim\.steps\?\)"):
    config_types.from_section(Optim, dict(lr=1.0, step=3), where="config.optim")


def test_missing_key_fails_naming_it():
  with pytest.raises(ValueError, match=r"missing config key\(s\) config\.optim\.lr"):
    config_types.from_section(Optim, dict(steps=3), where="config.optim")


def test_llama_config_rejects_unknown_model_keys():
  fields = dict(common.MODELS["tiny"], preset="tiny")
  assert llama.LlamaConfig.from_config(fields).hidden_size == 64
  with pytest.raises(ValueError, match=r"config\.model\.hiden_size"):
    llama.LlamaConfig.from_config(dict(fields, hiden_size=32))


def test_parse_arg_rejects_unknown_variants_keys_and_bad_values():
  assert common.parse_arg("tiny,group=8", group=4).group == 8
  with pytest.raises(ValueError, match="unknown config variant 'tinny'"):
    common.parse_arg("tinny")
  with pytest.raises(ValueError, match="unknown config argument 'grup'"):
    common.parse_arg("tiny,grup=8", group=4)
  with pytest.raises(ValueError, match="expected int"):
    common.parse_arg("group=eight", group=4)


def test_write_config_writes_the_resolved_config(tmp_path):
  import json
  config = ml_collections.ConfigDict(dict(task="sft", optim=dict(lr=5e-5)))
  path = config_types.write_config(config, str(tmp_path / "run"))
  assert json.load(open(path)) == {"task": "sft", "optim": {"lr": 5e-5}}
