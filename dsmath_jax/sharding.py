"""One Mesh ('data', 'fsdp', 'tensor') and the NamedShardings derived from logical axis names.

Model code names logical axes only ("embed", "q_heads", "batch", ...); the config's
`logical_axis_rules` map them to mesh axes. Everything that places arrays goes through
the functions here, so the same step runs on 1 CPU, 8 simulated CPUs or a TPU pod.
"""
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")
Rules = Sequence[tuple[str, str | tuple[str, ...] | None]]


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
  """`config.distributed` (optional section): how this process joins a multi-process run.

  Each field left at its default falls back to the launcher's environment (JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES, JAX_PROCESS_ID), then to jax's cluster detection (TPU pods, SLURM).
  """
  coordinator_address: str = ""  # host:port of process 0; "" = $JAX_COORDINATOR_ADDRESS or the cluster's
  num_processes: int = 0         # 0 = $JAX_NUM_PROCESSES or the cluster's; 1 = never initialize
  process_id: int = -1           # -1 = $JAX_PROCESS_ID or the cluster's

  @classmethod
  def from_config(cls, section, where: str = "config.distributed") -> "DistributedConfig":
    values = dict(section or {})
    fields = {f.name: f.type for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
      raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    return cls(**values)

  def resolved(self, environ: Mapping[str, str]) -> "DistributedConfig":
    """The config with its unset fields read from the launcher's environment."""
    return DistributedConfig(
        coordinator_address=self.coordinator_address or environ.get("JAX_COORDINATOR_ADDRESS", ""),
        num_processes=self.num_processes or int(environ.get("JAX_NUM_PROCESSES", "0")),
        process_id=self.process_id if self.process_id >= 0 else int(environ.get("JAX_PROCESS_ID", "-1")))


def maybe_initialize_distributed(config, environ: Mapping[str, str] | None = None) -> bool:
  """Calls jax.distributed.initialize() once on multi-process runs; True when this run has joined.

  Multi-process when `config.distributed` or the environment names several processes (with the
  coordinator and this process's id: multi-node GPU without a scheduler, or 2 CPU processes on
  localhost), or when a cluster launched it (TPU pod workers: TPU_WORKER_HOSTNAMES lists several
  hosts; SLURM: SLURM_NTASKS > 1), in which case jax reads everything from the cluster. Must run
  before anything touches a jax backend.
  """
  environ = os.environ if environ is None else environ
  wanted = DistributedConfig.from_config(config.get("distributed")).resolved(environ)
  if jax.distributed.is_initialized():
    return True
  if wanted.num_processes > 1:
    if not wanted.coordinator_address or wanted.process_id < 0:
      raise ValueError(f"{wanted.num_processes} processes need a coordinator address and this "
                       f"process's id (config.distributed or JAX_COORDINATOR_ADDRESS/JAX_PROCESS_ID): "
                       f"{wanted}")
    jax.distributed.initialize(wanted.coordinator_address, wanted.num_processes, wanted.process_id)
    return True
  cluster = ("," in environ.get("TPU_WORKER_HOSTNAMES", "")
             or int(environ.get("SLURM_NTASKS", "1")) > 1)
  if cluster and wanted.num_processes != 1:
    jax.distributed.initialize(wanted.coordinator_address or None)
    return True
  return False


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


def process_rows(sharding: NamedSharding, global_batch: int) -> slice:
  """The rows of a [global_batch, ...] array that this process's devices hold under `sharding`.

  make_array_from_process_local_data takes this process's rows as one block: they must be
  contiguous (true of meshes whose batch axes list each host's devices together).
  """
  indices = sharding.addressable_devices_indices_map((global_batch,))
  blocks = sorted({index[0].indices(global_batch)[:2] for index in indices.values()})   # (start, stop)
  if any(previous[1] != block[0] for previous, block in zip(blocks, blocks[1:])):
    raise ValueError(f"process {jax.process_index()} holds rows {blocks} of the batch, not one "
                     f"contiguous block: order the mesh's batch axes by host")
  start, stop = blocks[0][0], blocks[-1][1]
  return slice(start, stop)


def to_host(tree):
  """jax.device_get that also fetches arrays spanning other processes' devices (all-gathered)."""
  from jax.experimental import multihost_utils

  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return jax.device_get(x)
  return jax.tree.map(get, tree)


__all__ = ["MESH_AXES", "P", "make_mesh", "mesh_shape", "logical_sharding", "tree_shardings",
           "batch_sharding", "check_batch_divides", "put_global", "process_rows", "maybe_initialize_distributed",
           "DistributedConfig", "to_host"]
