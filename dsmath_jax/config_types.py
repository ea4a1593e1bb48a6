"""Typed run configs: the ConfigDict stops at each task's door.

A task's `run(config, workdir)` turns each config section into a frozen dataclass once
(`OptimConfig.from_config(config.optim)`); everything below takes those values. Each field has
its type, its one default and a one-line comment in its dataclass, so there is one place to read
what a knob means, and a mistyped or missing key fails at start-up naming the section and key
instead of deep inside a step.
"""
import dataclasses
import difflib
import json
import os
import sys
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def plain(value: Any) -> Any:
  """ConfigDicts -> dicts and lists -> tuples, recursively: hashable values a frozen dataclass holds."""
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {k: plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return tuple(plain(v) for v in value)
  return value


def strict_fields(cls: type, section: Mapping | Any, *, where: str, ignore: tuple[str, ...] = ()) -> dict:
  """The keyword arguments of `cls` from a config section, refusing unknown and missing keys.

  `where` names the section in errors (e.g. "config.rl"); `ignore` lists keys of the section
  that belong to someone else (read elsewhere, not fields of `cls`).
  """
  values = plain(section) if section is not None else {}
  fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
  unknown = sorted(set(values) - set(fields) - set(ignore))
  if unknown:
    hints = []
    for key in unknown:
      close = difflib.get_close_matches(key, list(fields), n=1)
      hints.append(f"{where}.{key}" + (f" (did you mean {where}.{close[0]}?)" if close else ""))
    raise ValueError(f"unknown config key(s) {', '.join(hints)}; {cls.__name__} knows: {sorted(fields)}")
  missing = sorted(name for name, f in fields.items() if name not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
  if missing:
    raise ValueError(f"missing config key(s) {', '.join(f'{where}.{k}' for k in missing)} "
                     f"({cls.__name__} has no default for them)")
  return {k: v for k, v in values.items() if k in fields}


def from_section(cls: type[T], section, *, where: str, ignore: tuple[str, ...] = ()) -> T:
  """`cls(**strict_fields(...))`: the usual body of a `from_config` classmethod."""
  return cls(**strict_fields(cls, section, where=where, ignore=ignore))


CONFIG_FILE = "config.json"     # WORKDIR/config.json: the resolved config of the run


def write_config(config, workdir: str) -> str:
  """Writes the run's resolved config to WORKDIR/config.json (process 0 only); returns the path.

  Every task calls it at its door, so a workdir always says how it was made. Written to a
  temporary name and renamed, so a half-written file never looks finished.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  jax = sys.modules.get("jax")                 # the corpus task runs without jax
  if jax is not None and jax.process_index() != 0:
    return path
  os.makedirs(workdir, exist_ok=True)
  text = (config.to_json_best_effort(indent=2, sort_keys=True) if hasattr(config, "to_json_best_effort")
          else json.dumps(config, indent=2, sort_keys=True, default=str))
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text + "\n")
  os.replace(tmp, path)
  return path
