"""The prologue every jax task shares: join the hosts, build the mesh and its logical rules.

One `setup` instead of the same four lines in every task, and one `jit_under_mesh`, because a
step traced without the mesh and the logical rules in context silently drops every
`with_logical_constraint` (docs/architecture.md, "One mesh, logical axes").
"""
import dataclasses

import flax.linen as nn
import jax

from dsmath_jax import config_types, sharding


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """`config.mesh`: axis sizes of the ('data', 'fsdp', 'tensor') mesh; one may be -1 (the rest)."""
  data: int                      # pure data parallelism
  fsdp: int                      # data parallelism + parameter sharding on the embed axis
  tensor: int                    # tensor parallelism (heads, mlp, vocab)

  @classmethod
  def from_config(cls, section, where: str = "config.mesh") -> "MeshConfig":
    return config_types.from_section(cls, section, where=where)


def rules_of(config) -> tuple:
  """config.logical_axis_rules as a tuple of tuples (hashable, what nn.logical_axis_rules takes)."""
  return tuple((name, tuple(axes) if isinstance(axes, (list, tuple)) else axes)
               for name, axes in config.logical_axis_rules)


def setup(config, devices=None):
  """(mesh, rules) of a run: jax.distributed on multi-host launches, then config.mesh."""
  sharding.maybe_initialize_distributed(config)
  mesh = dataclasses.asdict(MeshConfig.from_config(config.mesh))
  return sharding.make_mesh(mesh, devices), rules_of(config)


def jit_under_mesh(fn, mesh, rules, **jit_kwargs):
  """jax.jit(fn, **jit_kwargs) whose calls (and so its tracing) run under the mesh and the rules."""
  jitted = jax.jit(fn, **jit_kwargs)

  def call(*args, **kwargs):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted(*args, **kwargs)

  call.lower = lambda *args, **kwargs: _lower(jitted, mesh, rules, *args, **kwargs)
  return call


def _lower(jitted, mesh, rules, *args, **kwargs):
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    return jitted.lower(*args, **kwargs)
