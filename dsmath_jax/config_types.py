"""Typed run configs: the ConfigDict stops at each task's door.

A task's `run(config, workdir)` turns each config section into a frozen dataclass once
(`OptimConfig.from_config(config.optim)`); everything below takes those values. Each field has
its type, its one default and a one-line comment in its dataclass, so there is one place to read
what a knob means, and a mistyped or missing key fails at start-up naming the section and key
instead of deep inside a step.
"""
import dataclasses
import difflib
import fnmatch
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from dsmath_jax import atomic, paths

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


def require(obj, where: str, *, positive: Iterable[str] = (), non_negative: Iterable[str] = ()) -> None:
  """Refuses, naming `where.field` and its value, a field of `obj` that is not > 0 (`positive`) or
  not >= 0 (`non_negative`): `--config.optim.steps=-5` fails at the door instead of training nothing."""
  for name in positive:
    value = getattr(obj, name)
    if not value > 0:
      raise ValueError(f"{where}.{name}={value!r} must be > 0")
  for name in non_negative:
    value = getattr(obj, name)
    if not value >= 0:
      raise ValueError(f"{where}.{name}={value!r} must be >= 0")


def check_paths(paths: Iterable[tuple[str, str]]) -> None:
  """(config key, path) pairs: fails at start-up, naming the key and the path, for each path that
  does not exist ("" and "byte" mean no file; "~" is expanded; gs:// and other URLs are left to
  their readers), instead of after the model is built or hours into a run."""
  missing = [f"{where}={path!r}" for where, path in paths
             if path and path != "byte" and "://" not in path and not os.path.exists(os.path.expanduser(path))]
  if missing:
    raise FileNotFoundError(f"no such file or directory: {'; '.join(missing)}")


def spec_paths(spec: str, where: str) -> list[tuple[str, str]]:
  """(where, path) of each part of a "kind:PATH[,kind:PATH...]" spec (questions, reward-model sources)."""
  parts = (p.strip() for p in spec.split(","))
  return [(where, part.partition(":")[2]) for part in parts if ":" in part]


CONFIG_FILE = "config.json"     # WORKDIR/config.json: the resolved config of the run
CHECKPOINTS_DIR = "checkpoints"  # WORKDIR/checkpoints: a workdir holding a step there is resumed
# The top-level key that lets a resumed run take a changed config (`--config.allow_config_change=True`).
ALLOW_CHANGE_KEY = "allow_config_change"
# Keys a resumed run may change without it: they say how the run is placed, logged and saved, never
# what it computes (a preempted job often comes back on another slice, with another coordinator).
RESUME_EXEMPT = ("allow_config_change", "distributed.*", "mesh.*", "train.log_every", "train.wandb_project",
                 "train.profile_steps", "train.peak_flops_per_device", "train.checkpoint_every",
                 "train.keep_checkpoints", "eval.every_steps", "benchmark_eval.*")


def _flatten(value, prefix: str = "") -> dict:
  if isinstance(value, Mapping):
    flat = {}
    for key, item in value.items():
      flat.update(_flatten(item, f"{prefix}{key}."))
    return flat or {prefix[:-1]: {}}
  return {prefix[:-1]: value}


def changed_keys(saved: Mapping, current: Mapping, exempt: Iterable[str] = RESUME_EXEMPT) -> list[str]:
  """Dotted keys whose values differ between two resolved configs (added and removed keys too),
  leaving out those matching an `exempt` pattern."""
  old, new = _flatten(saved), _flatten(current)
  return sorted(key for key in set(old) | set(new)
                if old.get(key, "<absent>") != new.get(key, "<absent>")
                and not any(fnmatch.fnmatchcase(key, pattern) for pattern in exempt))


def _config_text(config) -> str:
  return (config.to_json_best_effort(indent=2, sort_keys=True) if hasattr(config, "to_json_best_effort")
          else json.dumps(config, indent=2, sort_keys=True, default=str))


def is_resumed(workdir: str) -> bool:
  """True when WORKDIR/checkpoints (local or a gs:// / s3:// URL) holds a checkpoint step (a
  directory named by its number)."""
  directory = paths.path(workdir) / CHECKPOINTS_DIR
  return directory.is_dir() and any(child.name.isdigit() for child in directory.iterdir())


def check_resume(config, workdir: str) -> None:
  """A resumed run (is_resumed) whose config differs from WORKDIR/config.json stops, naming the
  differing keys, unless `config.allow_config_change` is set: a run continued with another lr,
  data or model would silently be neither the old run nor the new one. RESUME_EXEMPT keys may differ."""
  path = paths.join(workdir, CONFIG_FILE)
  if not is_resumed(workdir) or not paths.path(path).is_file():
    return
  if hasattr(config, "get") and config.get(ALLOW_CHANGE_KEY, False):
    return
  try:
    with paths.path(path).open() as f:
      saved = json.load(f)
  except (OSError, ValueError) as error:
    raise ValueError(f"{path}: the saved config of this resumed run cannot be read ({error}); "
                     f"set --config.{ALLOW_CHANGE_KEY}=True to resume anyway") from error
  changed = changed_keys(saved, json.loads(_config_text(config)))
  if changed:
    raise ValueError(f"{workdir} holds checkpoints of a run whose config ({path}) differs from this one in "
                     f"{', '.join('config.' + key for key in changed)}; re-run with the saved values, use "
                     f"another --workdir, or set --config.{ALLOW_CHANGE_KEY}=True to resume with the change")


def write_config(config, workdir: str) -> str:
  """Writes the run's resolved config to WORKDIR/config.json (process 0 only); returns the path.

  Every task calls it at its door, so a workdir always says how it was made. A resumed run is
  checked against the saved config first (check_resume). Written whole or not at all
  (atomic.write_file), so a half-written file never looks finished; WORKDIR may be a gs:// URL.
  """
  check_resume(config, workdir)
  path = paths.join(workdir, CONFIG_FILE)
  jax = sys.modules.get("jax")                 # the corpus task runs without jax
  if jax is not None and jax.process_index() != 0:
    return path
  with atomic.write_file(path) as f:
    f.write(_config_text(config) + "\n")
  return path
