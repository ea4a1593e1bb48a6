"""One Mesh ('data', 'fsdp', 'tensor') and the NamedShardings derived from logical axis names.

Model code names logical axes only ("embed", "q_heads", "batch", ...); the config's
`logical_axis_rules` map them to mesh axes. Everything that places arrays goes through
the functions here, so the same step runs on 1 CPU, 8 simulated CPUs or a TPU pod.
"""
import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")
Rules = Sequence[tuple[str, str | tuple[str, ...] | None]]


def maybe_initialize_distributed(config) -> None:
  """Calls jax.distributed.initialize() on multi-host runs (TPU pods, multi-node GPU).

  Asked for by `config.distributed=True`, or by the environment of a multi-host launch
  (TPU pod workers set TPU_WORKER_HOSTNAMES; SLURM sets SLURM_NTASKS>1).
  """
  import os
  wanted = bool(config.get("distributed", False))
  multi_host_env = ("," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
                    or int(os.environ.get("SLURM_NTASKS", "1")) > 1)
  if wanted or multi_host_env:
    jax.distributed.initialize()


def mesh_shape(mesh_config: Mapping[str, int], num_devices: int) -> tuple[int, int, int]:
  """Resolves the config's axis sizes (one may be -1 = the rest) against the device count."""
  sizes = [int(mesh_config[a]) for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"mesh: at most one axis may be -1, got {dict(zip(MESH_AXES, sizes))}")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % known:
      raise ValueError(f"mesh: {num_devices} devices do not divide by the fixed axes "
                       f"{dict(zip(MESH_AXES, sizes))}")
    sizes[sizes.index(-1)] = num_devices // known
  if math.prod(sizes) != num_devices:
    raise ValueError(f"mesh: axes {dict(zip(MESH_AXES, sizes))} need {math.prod(sizes)} "
                     f"devices, {num_devices} are present")
  return tuple(sizes)


def make_mesh(mesh_config: Mapping[str, int], devices=None) -> Mesh:
  """The ('data', 'fsdp', 'tensor') mesh with Auto axes (jax 0.10 defaults to Explicit)."""
  devices = jax.devices() if devices is None else devices
  shape = mesh_shape(mesh_config, len(devices))
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices)


def logical_sharding(mesh: Mesh, rules: Rules, *logical_axes: str | None) -> NamedSharding:
  """NamedSharding for an array whose dimensions have these logical names."""
  spec = nn.logical_to_mesh_axes(logical_axes, rules)
  return NamedSharding(mesh, spec)


def tree_shardings(abstract_tree, mesh: Mesh, rules: Rules):
  """NamedShardings for a tree of (possibly nn.Partitioned-boxed) abstract arrays.

  Leaves without logical annotations (step counters, rngs, optimizer scalars) are replicated.
  """
  specs = nn.get_partition_spec(abstract_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh, rules: Rules, ndim: int = 1) -> NamedSharding:
  """Sharding of a [batch, ...] input: batch over the data-parallel axes (any rank for ndim=1)."""
  return logical_sharding(mesh, rules, "batch", *([None] * (ndim - 1)))


def batch_axes(mesh: Mesh, rules: Rules) -> dict[str, int]:
  """{mesh axis: size} of the axes the logical 'batch' axis is split over."""
  spec = nn.logical_to_mesh_axes(("batch",), rules)[0]
  axes = () if spec is None else ((spec,) if isinstance(spec, str) else tuple(spec))
  return {a: mesh.shape[a] for a in axes}


def check_batch_divides(batch_size: int, mesh: Mesh, rules: Rules, what: str = "batch") -> None:
  """Fails with the axis names and sizes when a global batch cannot be split over the mesh."""
  sizes = batch_axes(mesh, rules)
  ways = math.prod(sizes.values())
  if batch_size % ways:
    raise ValueError(f"{what} size {batch_size} does not divide over mesh axes {sizes} "
                     f"({ways} ways): make it a multiple of {ways}")


def put_global(host_batch, sharding: NamedSharding):
  """Host-local numpy rows -> one global jax.Array per leaf (multi-host safe)."""
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), host_batch)


__all__ = ["MESH_AXES", "P", "make_mesh", "mesh_shape", "logical_sharding", "tree_shardings",
           "batch_sharding", "check_batch_divides", "put_global", "maybe_initialize_distributed"]
