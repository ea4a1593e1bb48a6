"""Run model-written programs safely: a pool of warm workers, a fresh process per program.

Tool-integrated reasoning (DeepSeekMath §3.1 SFT data, §4 RL, §5 evaluation; ToRA, Gou et al.
2023) interleaves text with ```python blocks whose output is pasted back into the context.
Those programs are written by a model under training, so they are hostile by default:

  with Sandbox(workers=4, timeout_s=10.0) as sandbox:
    results = sandbox.run_many(codes)        # ExecResult per code, in order
  run_program("print(1 + 1)").stdout         # '2\\n' (one shared 1-worker sandbox)

Each pool slot is a warm worker process (`worker.py`) that has imported sympy and
numpy once (~1 s) and forks one child per program (~10 ms). The worker lives in a jail (a
read-only root holding only /usr, /lib and the Python installation, no network), built by
bubblewrap when installed, else by `isolation.py` with unshare(2); each program gets its own
PID, IPC and mount namespaces, a fresh size-limited folder, rlimits, its slot's uid (when the
caller is root), no capabilities and a seccomp filter; a cgroup per slot (`cgroup.py`) bounds
the memory and processes of its whole tree. `isolation.py` says what each layer guarantees;
`Sandbox.layers` says which ones this machine allowed, and the start-up line on stderr names
them. With no kernel isolation the Sandbox refuses to start unless `allow_unisolated=True`.
The caller never runs program code: a worker that dies or stops answering is killed with its
whole group and restarted, and that program's result is "killed".

The output protocol follows ToRA: the result of a program is what it printed; if it printed
nothing and its last statement is an expression, that expression's value is printed
(`print_last_expr`, on by default); an error's result is the last line of its traceback.
Python's hash seed is fixed (0) so that printed sets come out in the same order on every slot.
"""
import atexit
import concurrent.futures
import dataclasses
import json
import os
import queue
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref

from dsmath_jax.sandbox import cgroup as sandbox_cgroup
from dsmath_jax.sandbox import isolation as isolation_lib
from dsmath_jax.sandbox import worker as sandbox_worker

STATUSES = ("ok", "error", "timeout", "memory", "killed", "output_limit")
# What math programs import; loaded once per worker so that a program does not pay for it.
WARM_IMPORTS = ("math", "cmath", "fractions", "decimal", "itertools", "functools", "collections",
                "statistics", "random", "re", "numpy", "sympy", "sympy.abc")
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0", "PYTHONSAFEPATH": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg"}
_GRACE_S = 15.0  # how long past a program's own timeout the caller waits for its worker
ISOLATIONS = ("auto", "bubblewrap", "unshare", "none")


class SandboxIsolationError(RuntimeError):
  """The machine allows no kernel isolation and the caller did not accept running without it."""


@dataclasses.dataclass(frozen=True)
class ExecResult:
  """What one program did. `status` is one of STATUSES; `stdout` is at most max_output_chars
  characters; `error` is the last traceback line ("NameError: name 'x' is not defined"),
  "Timeout Error", or why the sandbox stopped the program; `seconds` is wall time."""
  status: str
  stdout: str
  error: str
  seconds: float


@dataclasses.dataclass(frozen=True)
class Limits:
  timeout_s: float = 10.0          # wall clock; CPU time is capped at ceil(timeout_s) + 1 s
  memory_mb: int = 1024            # address space the program may add to the warm worker
  max_output_chars: int = 4096     # more stdout than this -> "output_limit", program killed
  max_processes: int = 16          # RLIMIT_NPROC for the program's uid (fork bombs)
  max_file_mb: int = 16            # RLIMIT_FSIZE: largest file the program may write
  max_dir_mb: int = 64             # its directory's size (a tmpfs; enforced only when root)
  print_last_expr: bool = True     # ToRA: print a final bare expression if nothing was printed
  python_guards: bool = True       # audit-hook tripwires (see isolation.py)

  def __post_init__(self):
    for name in ("timeout_s", "memory_mb", "max_output_chars", "max_processes", "max_file_mb",
                 "max_dir_mb"):
      if not getattr(self, name) > 0:
        raise ValueError(f"sandbox limit {name}={getattr(self, name)!r} must be positive")


def _recv_before(fd: int, deadline: float):
  """One framed message from a worker, or None on EOF or when `deadline` passes."""
  def read(n):
    data = bytearray()
    while len(data) < n:
      remaining = deadline - time.monotonic()
      if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        return None
      chunk = os.read(fd, n - len(data))
      if not chunk:
        return None
      data += chunk
    return bytes(data)
  header = read(4)
  if header is None:
    return None
  size = struct.unpack(">I", header)[0]
  if size > 1 << 26:  # results are bounded by the worker; anything bigger is corruption
    return None
  body = read(size)
  return None if body is None else json.loads(body)


class _Slot:
  """One warm worker process, restarted when it dies. Used by one thread at a time."""

  def __init__(self, index: int, config: dict, start_timeout_s: float, limits: "Limits",
               wrapper: list[str], group: sandbox_cgroup.SlotCgroup | None):
    self.index, self.config, self.start_timeout_s = index, config, start_timeout_s
    self.limits, self.wrapper, self.group = limits, wrapper, group
    self.process: subprocess.Popen | None = None
    self.handshake: dict = {}
    self.base_usage = self.base_tasks = 0

  def start(self) -> None:
    command = self.wrapper + [os.path.realpath(sys.executable), "-s", "-m", "dsmath_jax.sandbox.worker"]
    if self.group is not None:  # no limits while the worker warms up (a restart included)
      self.group.set_limits(-1, "max")
      command = self.group.enter_command(command)
    self.process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(_ENV, PYTHONPATH=_PACKAGE_ROOT),
        cwd=self.config["root_dir"], start_new_session=True, close_fds=True)
    sandbox_worker.send(self.process.stdin.fileno(), self.config)
    handshake = _recv_before(self.process.stdout.fileno(), time.monotonic() + self.start_timeout_s)
    if handshake is None:
      self.kill()
      raise RuntimeError(f"sandbox worker {self.index} did not start (see its stderr above)")
    self.handshake = handshake
    if self.group is not None:  # the warm worker's own use; programs get the limits on top
      self.base_usage, self.base_tasks = self.group.usage_bytes(), self.group.tasks()

  def _apply_tree_limits(self, request: dict) -> None:
    if self.group is not None:
      self.group.set_limits(self.base_usage + (request["memory_mb"] + request["max_dir_mb"] << 20),
                            self.base_tasks + 1 + request["max_processes"])

  def kill(self) -> None:
    if self.process is not None:
      try:
        os.killpg(self.process.pid, 9)
      except (ProcessLookupError, PermissionError):
        pass
      self.process.wait()
      for pipe in (self.process.stdin, self.process.stdout):
        pipe.close()
      self.process = None

  def _submit(self, request: dict) -> bool:
    """Hands `request` to a live worker; False when the worker died before taking it."""
    if self.process is None or self.process.poll() is not None:
      self.kill()
      self.start()
    self._apply_tree_limits(request)
    try:
      sandbox_worker.send(self.process.stdin.fileno(), request)
    except OSError:
      return False
    return _recv_before(self.process.stdout.fileno(), time.monotonic() + _GRACE_S) is not None

  def run(self, request: dict) -> ExecResult:
    start = time.monotonic()
    result = self._run(request, start)
    if self.group is not None and self.group.oom_kills() > self.oom_kills_before:
      if result.status in ("killed", "error"):  # the kernel killed a process of the tree for memory
        result = ExecResult("memory", "", f"MemoryError: the program's processes used more than "
                            f"{request['memory_mb']} MB together", result.seconds)
    return result

  def _run(self, request: dict, start: float) -> ExecResult:
    self.oom_kills_before = self.group.oom_kills() if self.group is not None else 0
    submitted = self._submit(request)
    if not submitted:  # the worker died while idle: the program never ran, so it gets a new one
      self.kill()
      submitted = self._submit(request)
    reply = None
    if submitted:
      deadline = time.monotonic() + request["timeout_s"] + _GRACE_S
      reply = _recv_before(self.process.stdout.fileno(), deadline)
    if reply is None:  # the program killed its worker, or the worker hung: never trust it again
      self.kill()
      return ExecResult("killed", "", "SandboxError: the sandbox worker died or stopped answering",
                        time.monotonic() - start)
    return ExecResult(**reply)


class Sandbox:
  """A pool of `workers` warm workers; `run_many` runs programs concurrently, results in order.

  Keyword arguments are the `Limits` fields (defaults: 10 s, 1024 MB, 4096 chars, ...) plus
  `isolation` ("auto": bubblewrap when it works here, else "unshare"; "none" only with
  `allow_unisolated`), `allow_unisolated` (start even where no kernel isolation is possible),
  `cgroups` (bound each slot's process tree by a cgroup where one can be made; otherwise the
  worker sums its program's memory itself), `drop_privileges` (when root: a separate uid per
  slot, default True) and `warm_imports`.
  """

  def __init__(self, workers: int = 4, *, isolation: str = "auto", allow_unisolated: bool = False,
               cgroups: bool = True, drop_privileges: bool = True, warm_imports=WARM_IMPORTS,
               start_timeout_s: float = 120.0, **limits):
    if workers < 1:
      raise ValueError(f"Sandbox(workers={workers}): need at least one worker")
    if isolation not in ISOLATIONS:
      raise ValueError(f"Sandbox(isolation={isolation!r}): expected one of {ISOLATIONS}")
    if isolation == "none" and not allow_unisolated:
      raise SandboxIsolationError("Sandbox(isolation='none') needs allow_unisolated=True")
    self.limits = Limits(**limits)
    self.workers = workers
    self.root_dir = tempfile.mkdtemp(prefix="dsmath_sandbox_")
    os.chmod(self.root_dir, 0o711)  # slot uids may enter (to reach their own dir), not list
    backend, why_not_bwrap = _backend(isolation)
    # Unlikely to be anyone's uid; SystemRandom leaves the caller's `random` state alone.
    uid_base = random.SystemRandom().randrange(1 << 20, (1 << 31) - workers)
    entries = isolation_lib.jail_entries(sys.path)
    name = f"{os.path.basename(self.root_dir)}"
    slots = []
    try:
      for index in range(workers):
        uid = uid_base + index if drop_privileges and os.geteuid() == 0 else None
        group, why_no_cgroup = (sandbox_cgroup.SlotCgroup.create(f"{name}_{index}") if cgroups
                                else (None, "cgroups=False"))
        wrapper = []
        if backend == "bubblewrap":
          passwd = os.path.join(self.root_dir, f"passwd_{index}")
          with open(passwd, "w") as f:
            f.write(isolation_lib.passwd_text(uid))
          os.chmod(passwd, 0o644)
          wrapper = isolation_lib.bwrap_command(isolation_lib.find_bwrap(), entries, passwd,
                                                isolation_lib.worker_files(_PACKAGE_ROOT))
        config = {"slot": index, "root_dir": self.root_dir, "backend": backend,
                  "jail_dir": os.path.join(self.root_dir, f"jail_{index}"), "jail_entries": entries,
                  "sys_path": [os.path.abspath(p) for p in sys.path if p], "uid": uid,
                  "warm_imports": list(warm_imports), "env": _ENV,
                  "tree_accounting": group is None or not group.bounds_swap}
        slots.append(_Slot(index, config, start_timeout_s, self.limits, wrapper, group))
        swap_note = (group is not None and not group.bounds_swap
                     and "cgroup memory limit does not bound swap: per-tree accounting holds it too")
        slots[-1].notes = [n for n in (why_not_bwrap, why_no_cgroup and f"no cgroup: {why_no_cgroup}", swap_note)
                           if n]
      with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # imports overlap
        list(pool.map(_Slot.start, slots))
    except BaseException:
      _shut_down(slots, self.root_dir)
      raise
    self._slots = slots
    self._idle: queue.Queue[_Slot] = queue.Queue()
    for slot in slots:
      self._idle.put(slot)
    self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="sandbox")
    self._closed = False
    # Workers, cgroups and the directory go away even if close() is never called.
    self._finalizer = weakref.finalize(self, _shut_down, slots, self.root_dir)
    print(f"sandbox: {self.describe()}", file=sys.stderr, flush=True)
    if self.layers["isolation"] == "none" and not allow_unisolated:
      self.close()
      raise SandboxIsolationError(
          f"no kernel isolation for sandboxed programs here ({'; '.join(self.layers['notes'])}); "
          "install bubblewrap (apt-get install bubblewrap) or allow user namespaces, or pass "
          "allow_unisolated=True (config: sandbox.allow_unisolated=True) to run with rlimits and "
          "Python guards only")

  def describe(self) -> str:
    """One line: the isolation in use and every layer that holds or is missing."""
    layers = self.layers
    held = []
    if layers["jail"] is not None:
      held.append("jail (read-only system + Python, private /sandbox tmpfs), no network, "
                  "own PID/IPC/mount/UTS namespaces per program")
    held.append(f"uid {layers['uid']} per slot" if layers["uid"] is not None else "caller's uid")
    held.append("seccomp" if layers["seccomp"] and layers["jail"] is not None else "no seccomp")
    held.append(f"cgroup memory+pids (v{layers['cgroup']})" if layers["cgroup"]
                else "per-tree memory accounting, RLIMIT_NPROC")
    notes = f" [{'; '.join(layers['notes'])}]" if layers["notes"] else ""
    return f"isolation={layers['isolation']}: {', '.join(held)}{notes}"

  @property
  def layers(self) -> dict:
    """What isolation the workers achieved (isolation, jail, uid, seccomp, cgroup, notes),
    from worker 0."""
    slot = self._slots[0]
    layers = dict(slot.handshake["layers"])
    layers["cgroup"] = slot.group.version if slot.group is not None else None
    layers["notes"] = slot.notes + layers["notes"]
    return layers

  def run(self, code: str, **overrides) -> ExecResult:
    """Runs one program; `overrides` replace Limits fields for this call."""
    if self._closed:
      raise RuntimeError("Sandbox is closed")
    request = dict(dataclasses.asdict(dataclasses.replace(self.limits, **overrides)), code=code)
    slot = self._idle.get()
    try:
      return slot.run(request)
    finally:
      self._idle.put(slot)

  def run_many(self, codes: list[str], **overrides) -> list[ExecResult]:
    """Runs `codes` on all workers at once; result i belongs to codes[i]."""
    return list(self._pool.map(lambda code: self.run(code, **overrides), codes))

  def close(self) -> None:
    if self._closed:
      return
    self._closed = True
    self._pool.shutdown(wait=True)
    self._finalizer()

  def __enter__(self) -> "Sandbox":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


_bwrap_checked: dict[str, str | None] = {}


def _backend(requested: str) -> tuple[str, str]:
  """(backend, why bubblewrap is not used or "") for `Sandbox(isolation=requested)`."""
  if requested in ("unshare", "none"):
    return requested, ""
  bwrap = isolation_lib.find_bwrap()
  if bwrap is None:
    why = "bubblewrap not installed (apt-get install bubblewrap)"
  else:
    if bwrap not in _bwrap_checked:
      _bwrap_checked[bwrap] = isolation_lib.bwrap_works(bwrap)
    why = _bwrap_checked[bwrap] and f"bubblewrap does not work here: {_bwrap_checked[bwrap]}"
  if requested == "bubblewrap" and why:
    raise SandboxIsolationError(f"Sandbox(isolation='bubblewrap'): {why}")
  return ("unshare", why) if why else ("bubblewrap", "")


def _shut_down(slots: list[_Slot], root_dir: str) -> None:
  for slot in slots:
    slot.kill()
    if slot.group is not None:
      slot.group.remove()
  shutil.rmtree(root_dir, ignore_errors=True)


_default: Sandbox | None = None
_default_lock = threading.Lock()


def run_program(code: str, *, timeout_s: float = 10.0, memory_mb: int = 1024,
                max_output_chars: int = 4096, **limits) -> ExecResult:
  """Runs one program in a shared one-worker Sandbox (started on first use, closed at exit)."""
  global _default
  with _default_lock:
    if _default is None:
      _default = Sandbox(workers=1)
      atexit.register(_default.close)
    sandbox = _default
  return sandbox.run(code, timeout_s=timeout_s, memory_mb=memory_mb,
                     max_output_chars=max_output_chars, **limits)
