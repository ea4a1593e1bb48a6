"""Memory and process limits on a pool slot's whole process tree, by a cgroup (v1 or v2).

RLIMIT_AS bounds one process: five children of a program could each take the full cap. A
cgroup bounds them together: each slot's worker is started inside its own cgroup (a child of
the caller's own cgroup, so every limit above the caller still applies), and after the worker
has warmed up its limit becomes "what the warm worker uses + memory_mb + max_dir_mb" (the
directory is a tmpfs, charged to the same cgroup) and "its tasks + 1 + max_processes". The
worker is exempt from the OOM killer (oom_score_adj -1000) and programs are its first choice
(+1000), so a program over the limit is the one killed; the `oom_kills` counter tells the
caller that this was a memory kill. Where no controller can be delegated (no cgroupfs, a
cgroup v2 whose parent has processes), `SlotCgroup.create` returns None and says why; the
worker then sums its program's private memory itself (`worker.tree_private_bytes`).
"""
import os
import shlex
import time

_PREFIX = "dsmath_sandbox_"


def _mounts() -> list[tuple[str, str, str, set[str]]]:
  """(mount point, root inside the hierarchy, fstype, options) of every cgroup mount."""
  found = []
  with open("/proc/self/mountinfo") as f:
    for line in f:
      fields = line.split()
      separator = fields.index("-")
      fstype = fields[separator + 1]
      if fstype in ("cgroup", "cgroup2"):
        options = set(fields[separator + 3].split(",")) | set(fields[5].split(","))
        found.append((fields[4], fields[3], fstype, options))
  return found


def _own_paths() -> dict[str, str]:
  """Controller ("" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
  paths = {}
  with open("/proc/self/cgroup") as f:
    for line in f:
      _, controllers, path = line.rstrip("\n").split(":", 2)
      for controller in controllers.split(",") if controllers else [""]:
        paths[controller] = path
  return paths


def _directory(mount: str, mount_root: str, own: str) -> str | None:
  if not (own == mount_root or own.startswith(mount_root.rstrip("/") + "/")):
    return None
  return os.path.join(mount, os.path.relpath(own, mount_root))


def _write(path: str, value) -> None:
  with open(path, "w") as f:
    f.write(str(value))


def _read(path: str) -> str:
  with open(path) as f:
    return f.read()


class SlotCgroup:
  """One slot's cgroup directories: `memory` and `pids` (the same directory under v2)."""

  def __init__(self, memory: str, pids: str, version: int):
    self.memory, self.pids, self.version = memory, pids, version
    self.memory_limit = self.pids_limit = None

  @classmethod
  def create(cls, name: str) -> tuple["SlotCgroup | None", str]:
    """A fresh cgroup for a slot under the caller's own, or (None, why not)."""
    if os.geteuid() != 0:
      return None, "not root: no cgroup delegation attempted"
    try:
      mounts, own = _mounts(), _own_paths()
    except OSError as e:
      return None, f"cannot read cgroup mounts: {e}"
    v1 = {c: _directory(point, root, own.get(c, "/")) for point, root, fstype, options in mounts
          if fstype == "cgroup" for c in ("memory", "pids") if c in options}
    directory = f"{_PREFIX}{os.getpid()}_{name}"
    if v1.get("memory") and v1.get("pids"):
      made = []
      try:
        for controller in ("memory", "pids"):
          path = os.path.join(v1[controller], directory)
          os.mkdir(path)
          made.append(path)
        group = cls(made[0], made[1], 1)
        group._write_memory_limit(-1)
        group.memory_limit = -1
        return group, ""
      except OSError as e:
        for path in made:
          _remove(path)
        return None, f"cgroup v1 memory/pids not writable: {e}"
    for point, root, fstype, _ in mounts:
      if fstype != "cgroup2":
        continue
      parent = _directory(point, root, own.get("", "/"))
      try:
        if parent is None or not {"memory", "pids"} <= set(_read(f"{parent}/cgroup.controllers").split()):
          continue
        _write(f"{parent}/cgroup.subtree_control", "+memory +pids")
        path = os.path.join(parent, directory)
        os.mkdir(path)
        return cls(path, path, 2), ""
      except OSError as e:
        return None, f"cgroup v2 under {parent}: cannot delegate memory and pids ({e})"
    return None, "no delegable memory and pids cgroup controllers"

  def enter_command(self, command: list[str]) -> list[str]:
    """`command`, started inside this cgroup and, where the kernel lets root lower it, exempt
    from the OOM killer (its programs raise their own score to the maximum either way)."""
    files = sorted({f"{self.memory}/cgroup.procs", f"{self.pids}/cgroup.procs"})
    script = " && ".join(f"echo $$ > {shlex.quote(f)}" for f in files)
    script += " && { echo -1000 > /proc/self/oom_score_adj; } 2>/dev/null; exec \"$@\""
    return ["/bin/sh", "-c", script, "sh"] + command

  @property
  def bounds_swap(self) -> bool:
    """Whether the memory limit covers swap too. Without the swap controller (v1 without
    memory.memsw.*, v2 without memory.swap.max) a tree over the limit is swapped out, not
    killed, so the worker's per-tree accounting must hold the limit as well."""
    name = "memory.swap.max" if self.version == 2 else "memory.memsw.limit_in_bytes"
    return os.path.exists(f"{self.memory}/{name}")

  def usage_bytes(self) -> int:
    return int(_read(f"{self.memory}/{'memory.usage_in_bytes' if self.version == 1 else 'memory.current'}"))

  def tasks(self) -> int:
    return int(_read(f"{self.pids}/pids.current"))

  def oom_kills(self) -> int:
    """How many processes the kernel killed for this cgroup's memory limit so far."""
    text = _read(f"{self.memory}/{'memory.oom_control' if self.version == 1 else 'memory.events'}")
    for line in text.splitlines():
      key, _, value = line.partition(" ")
      if key == "oom_kill":
        return int(value)
    return int(_read(f"{self.memory}/memory.failcnt")) if self.version == 1 else 0

  def _write_memory_limit(self, limit: int) -> None:
    if self.version == 2:
      _write(f"{self.memory}/memory.max", "max" if limit < 0 else limit)
      if os.path.exists(f"{self.memory}/memory.swap.max"):
        _write(f"{self.memory}/memory.swap.max", 0)
      return
    memsw = f"{self.memory}/memory.memsw.limit_in_bytes"
    files = [f"{self.memory}/memory.limit_in_bytes"] + ([memsw] if os.path.exists(memsw) else [])
    # memsw (memory + swap) may never be below the memory limit: raise it first, lower it last.
    current = float("inf") if self.memory_limit is None or self.memory_limit < 0 else self.memory_limit
    if limit < 0 or limit > current:
      files.reverse()
    for path in files:
      _write(path, limit)

  def set_limits(self, memory_bytes: int, processes: int) -> None:
    """Caps the tree at `memory_bytes` (no swap) and `processes` tasks."""
    if memory_bytes != self.memory_limit:
      self._write_memory_limit(memory_bytes)
      self.memory_limit = memory_bytes
    if processes != self.pids_limit:
      _write(f"{self.pids}/pids.max", processes)
      self.pids_limit = processes

  def remove(self) -> None:
    for path in {self.memory, self.pids}:
      _remove(path)


def _remove(path: str) -> None:
  for _ in range(100):  # the last killed task may take a moment to leave
    try:
      os.rmdir(path)
      return
    except FileNotFoundError:
      return
    except OSError:
      time.sleep(0.01)
