"""The warm sandbox worker: one per pool slot, it imports sympy once and forks per program.

Started by `sandbox.py` as `python -s sandbox_worker.py` (a script, stdlib only until the warm
imports, so it needs nothing from the caller's environment). It talks to its caller over its
stdin/stdout with length-prefixed JSON: one config message, a handshake reply, then one
request -> one result per program. Importing sympy costs ~1 s per process; a fork of a
process that already has it costs ~ms, which is why tool-integrated sampling (§3.1, §4) can
afford a fresh process per program.

What each layer guarantees (each is reported in the handshake as `layers`; none is assumed):
  always (kernel): own session/process group; rlimits on address space, CPU seconds, processes,
    file size, open files, no core files; a fresh 0700 working directory, removed after; a
    minimal environment (none of the caller's variables); no inherited file descriptors;
    bounded reads of stdout/stderr; SIGKILL of every descendant when the program ends (this
    worker is a child subreaper, so double-forked orphans come back to it); no capabilities.
  with a mount namespace (root, or unprivileged user namespaces enabled): every filesystem is
    read-only for the program except its own directory, which is a size-limited tmpfs that only
    this worker's namespace sees (so it cannot fill the disk either).
    The caller's home directory is an empty tmpfs too (with the Python paths bound back), so
    its keys and tokens are out of sight.
  with a network namespace (same condition): no interface is up, not even loopback.
  root only: a separate uid per slot, so the program cannot signal the caller or this worker,
    cannot read files that are not world-readable, and cannot see other slots' directories;
    directories the uid cannot traverse (e.g. /root holding the Python install) are covered by
    an empty tmpfs with the Python paths bound back, so the rest of them stays hidden.
  not root: the program runs as the caller's uid. It can read what the caller can outside the
    hidden home, and signal the caller's processes (the kernel allows it; only the Python guards
    stop it). `os.kill(os.getppid(), 9)` kills this
    worker, which the caller sees as "killed" before it starts a new worker.
  Python guards (audit hook, on by default): no sockets, exec/subprocess or ctypes; no writes,
    renames or deletions outside the working directory; no signals outside the program's own
    process group. A tripwire that gives clear errors, not a wall: C code can bypass it.
"""
import ast
import builtins
import ctypes
import io
import json
import math
import os
import re
import resource
import select
import signal
import shutil
import stat
import struct
import sys
import tempfile
import time
import traceback

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
_CAPABILITY_VERSION_3 = 0x20080522
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, MNT_DETACH = 1, 36, 2
EXIT_OK, EXIT_ERROR, EXIT_SETUP_FAILED = 0, 1, 70
TIMEOUT_MESSAGE = "Timeout Error"  # the string ToRA / DeepSeekMath's executors put in the output block
_LIBC = ctypes.CDLL(None, use_errno=True)


# ---- framing: 4-byte big-endian length + UTF-8 JSON --------------------------------------
def send(fd: int, message) -> None:
  data = json.dumps(message).encode()
  data = struct.pack(">I", len(data)) + data
  while data:
    data = data[os.write(fd, data):]


def _read_exact(fd: int, n: int) -> bytes | None:
  chunks, got = [], 0
  while got < n:
    chunk = os.read(fd, n - got)
    if not chunk:
      return None
    chunks.append(chunk)
    got += len(chunk)
  return b"".join(chunks)


def recv(fd: int):
  """The next message, or None at end of stream."""
  header = _read_exact(fd, 4)
  if header is None:
    return None
  body = _read_exact(fd, struct.unpack(">I", header)[0])
  return None if body is None else json.loads(body)


# ---- one-time isolation of the worker (inherited by every program it forks) ---------------
def _libc_call(name: str, *args) -> None:
  if getattr(_LIBC, name)(*args) != 0:
    errno = ctypes.get_errno()
    raise OSError(errno, f"{name}: {os.strerror(errno)}")


def _others_can_enter(path: str) -> bool:
  try:
    return bool(os.stat(path).st_mode & stat.S_IXOTH)
  except OSError:
    return False


def _under(path: str, directory: str) -> bool:
  return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _directories_to_hide(paths: list[str], home: str | None, root: bool) -> dict[str, list[str]]:
  """Directory to cover with an empty tmpfs -> the needed paths under it, bound back.

  The caller's home (keys, tokens, shell history) is hidden in every mode. When root, so is the
  top-most ancestor of a needed path that other uids cannot traverse (e.g. /root holding the
  Python install): the slot uid could not import anything from it otherwise."""
  hide = set()
  if home and os.path.isdir(home) and os.path.realpath(home) != "/":
    hide.add(os.path.abspath(home))
  for path in paths if root else ():
    parts = os.path.abspath(path).split(os.sep)
    for depth in range(2, len(parts)):
      ancestor = os.sep.join(parts[:depth])
      if not _others_can_enter(ancestor):
        hide.add(ancestor)
        break
  outermost = [d for d in hide if not any(d != e and _under(d, e) for e in hide)]
  return {d: [os.path.abspath(p) for p in paths if _under(os.path.abspath(p), d)] for d in outermost}


def _reveal_paths(blocked: dict[str, list[str]]) -> None:
  """In this worker's private mount namespace, cover each directory with an empty tmpfs and
  bind the needed paths (the Python installation, the work root) back at their own names."""
  for ancestor, paths in blocked.items():
    fds = {p: os.open(p, os.O_PATH) for p in paths}
    _libc_call("mount", b"tmpfs", ancestor.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m")
    for path, fd in fds.items():
      if os.path.isdir(f"/proc/self/fd/{fd}"):
        os.makedirs(path, exist_ok=True)
      else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()
      _libc_call("mount", f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None)
      os.close(fd)


def _python_paths(config) -> list[str]:
  """The directories a program's imports read from (outermost only)."""
  paths = {os.path.abspath(p) for p in config["sys_path"] if p and os.path.exists(p)}
  paths = sorted(paths | {os.path.abspath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix)})
  return [p for p in paths if not any(p != q and p.startswith(q + os.sep) for q in paths)]


def _enter_namespaces(root: bool) -> tuple[bool, bool]:
  """(network namespace, mount namespace) for this worker and every program it forks. Not
  root: both come with a user namespace (unprivileged user namespaces must be enabled)."""
  if not root:
    try:
      uid, gid = os.getuid(), os.getgid()
      _libc_call("unshare", CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)
      for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
          f.write(text)
      _libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
      return True, True
    except OSError:
      return False, False
  namespaces = []
  for flag in (CLONE_NEWNET, CLONE_NEWNS):
    try:
      _libc_call("unshare", flag)
      namespaces.append(True)
    except OSError:
      namespaces.append(False)
  if namespaces[1]:
    _libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
  return namespaces[0], namespaces[1]


_MOUNT_FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048,
                "relatime": 1 << 21, "strictatime": 1 << 24}


def _read_only_except(writable: str) -> list[str]:
  """Remount every mount read-only in this namespace, except `writable` (bound on itself
  first); returns the mount points that refused. Each mount keeps its other flags, which a
  user namespace requires (they are locked)."""
  _libc_call("mount", writable.encode(), writable.encode(), None, MS_BIND | MS_REC, None)
  refused = []
  with open("/proc/self/mountinfo") as f:
    mounts = [line.split() for line in f]
  for fields in mounts:
    point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
    if point == writable or point.startswith(writable + os.sep):
      continue
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY
    for option in fields[5].split(","):
      flags |= _MOUNT_FLAGS.get(option, 0)
    if _LIBC.mount(None, point.encode(), None, flags, None) != 0:
      refused.append(point)
  return refused


def _probe_uid(uid: int, paths: list[str]) -> str | None:
  """None when a process running as `uid` can list every needed path, else why not."""
  pid = os.fork()
  if pid == 0:
    try:
      os.setgroups([])
      os.setresgid(uid, uid, uid)
      os.setresuid(uid, uid, uid)
      for p in paths:
        if os.path.isdir(p):
          os.listdir(p)
      os._exit(0)
    except BaseException:
      os._exit(1)
  _, status = os.waitpid(pid, 0)
  return None if os.waitstatus_to_exitcode(status) == 0 else f"uid {uid} cannot read {paths}"


def isolate(config) -> dict:
  """Set up this worker's namespaces, read-only view and program uid; returns what holds."""
  layers = {"uid": None, "network_namespace": False, "mount_namespace": False,
            "read_only_filesystem": False, "hidden": [], "subreaper": False, "notes": []}
  try:
    _libc_call("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    layers["subreaper"] = True
  except OSError as e:
    layers["notes"].append(f"no subreaper, double-forked orphans may outlive a program: {e}")
  root = os.geteuid() == 0
  layers["network_namespace"], layers["mount_namespace"] = _enter_namespaces(root)
  if not layers["network_namespace"]:
    layers["notes"].append("no network namespace: sockets are blocked by the Python guards only")
  if not root:
    layers["notes"].append("not root: programs run as the caller's uid")
  paths = _python_paths(config)
  if layers["mount_namespace"]:
    hide = _directories_to_hide(paths + [config["root_dir"]], config["home"],
                                root and config["uid"] is not None)
    try:
      _reveal_paths(hide)
      layers["hidden"] = sorted(hide)
    except OSError as e:
      layers["notes"].append(f"cannot hide {sorted(hide)}: {e}")
    try:
      refused = _read_only_except(config["root_dir"])
      layers["read_only_filesystem"] = not refused
      if refused:
        layers["notes"].append(f"mounts left writable: {refused}")
    except OSError as e:
      layers["notes"].append(f"no read-only view: {e}")
  else:
    layers["notes"].append("no mount namespace: no read-only view, no directory quota")
  if root and config["uid"] is not None:
    why_not = _probe_uid(config["uid"], paths)
    if why_not is None:
      layers["uid"] = config["uid"]
    else:
      layers["notes"].append(f"programs run as root: {why_not}")
  return layers


def warm_imports(modules: list[str]) -> list[str]:
  """Import the modules programs commonly use, once, before any fork; returns those imported."""
  imported = []
  for name in modules:
    try:
      __import__(name)
      imported.append(name)
    except Exception:  # a missing optional module must not stop the worker
      pass
  return imported


# ---- one program ---------------------------------------------------------------------------
def _vm_bytes() -> int:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _system_task_count() -> int:
  with open("/proc/loadavg") as f:
    return int(f.read().split()[3].split("/")[1])


def _set_limits(request, uid) -> None:
  mb = 1 << 20
  address_space = _vm_bytes() + request["memory_mb"] * mb  # on top of the warm interpreter
  cpu_seconds = math.ceil(request["timeout_s"]) + 1
  # RLIMIT_NPROC counts every task of the real uid: exact for a per-slot uid, an upper bound
  # taken from the whole system when programs share the caller's uid.
  processes = request["max_processes"] + (0 if uid is not None else _system_task_count())
  for limit, value in ((resource.RLIMIT_AS, (address_space, address_space)),
                       (resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1)),
                       (resource.RLIMIT_NPROC, (processes, processes)),
                       (resource.RLIMIT_FSIZE, (request["max_file_mb"] * mb,) * 2),
                       (resource.RLIMIT_CORE, (0, 0)),
                       (resource.RLIMIT_NOFILE, (256, 256))):
    resource.setrlimit(limit, value)


def _drop_capabilities() -> None:
  """No capabilities, and none regained through exec (so no remounting the read-only view)."""
  header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
  data = (ctypes.c_uint32 * 6)()
  _libc_call("capset", header, data)
  _libc_call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _child(request, config, uid, workdir, out_w, err_w, worker_pid) -> None:
  """Runs in the forked process: isolate, then exec the program. Never returns."""
  try:
    os.setsid()
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.closerange(3, 1 << 20)  # the worker's protocol pipes above all
    os.chdir(workdir)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not a kill
    _set_limits(request, uid)
    if uid is not None:
      os.setgroups([])
      os.setresgid(uid, uid, uid)
      os.setresuid(uid, uid, uid)
    _drop_capabilities()  # in a user namespace the worker holds them; setuid did it for root
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
    if os.getppid() != worker_pid:
      os._exit(EXIT_SETUP_FAILED)
    os.environ.clear()
    os.environ.update(config["env"], HOME=workdir, TMPDIR=workdir, MPLCONFIGDIR=workdir)
    tempfile.tempdir = None
    sys.dont_write_bytecode = True
  except BaseException:
    os._exit(EXIT_SETUP_FAILED)
  os._exit(run_program(request["code"], workdir, print_last_expr=request["print_last_expr"],
                       guards=request["python_guards"]))


def _read_into(fd: int, buffer: bytearray, cap: int) -> int:
  """Reads what is available; keeps at most `cap` bytes (head); returns bytes read (0 = EOF)."""
  try:
    data = os.read(fd, 1 << 16)
  except BlockingIOError:
    return -1
  if len(buffer) < cap:
    buffer += data[:cap - len(buffer)]
  return len(data)


def _children(pid: int) -> list[int]:
  """Direct children of `pid`, from /proc/PID/task/*/children (no scan of all of /proc)."""
  found = []
  try:
    for task in os.listdir(f"/proc/{pid}/task"):
      with open(f"/proc/{pid}/task/{task}/children") as f:
        found.extend(int(child) for child in f.read().split())
  except (OSError, ValueError):
    pass
  return found


def _descendants(pid: int) -> list[int]:
  """Every live descendant. This worker is a child subreaper, so every orphan of a program is
  re-parented to it: no direct children here means no descendants anywhere."""
  found, stack = [], _children(pid)
  while stack:
    child = stack.pop()
    found.append(child)
    stack.extend(_children(child))
  return found


def _reap() -> None:
  while True:
    try:
      pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
      return
    if pid == 0:
      return


def kill_everything(pgid: int) -> None:
  """SIGKILL the program's group and every other descendant of this worker, then reap."""
  try:
    os.killpg(pgid, signal.SIGKILL)
  except (ProcessLookupError, PermissionError):
    pass
  _reap()
  for _ in range(1000):  # each round kills what exists; forks in between are bounded by NPROC
    alive = _descendants(os.getpid())
    if not alive:
      return
    for pid in alive:
      try:
        os.kill(pid, signal.SIGKILL)
      except (ProcessLookupError, PermissionError):
        pass
    time.sleep(0.001)
    _reap()


def _remove_tree(path: str) -> None:
  def make_writable_and_retry(function, failed, _):
    try:
      os.chmod(os.path.dirname(failed), 0o700)
      function(failed)
    except OSError:
      pass
  shutil.rmtree(path, onerror=make_writable_and_retry)


def _last_line(text: str) -> str:
  lines = [line for line in text.splitlines() if line.strip()]
  return lines[-1].strip() if lines else ""


def run_one(request, config, layers) -> dict:
  """Fork, run `request["code"]` under the limits, collect bounded output, clean up."""
  uid = layers["uid"]
  max_chars = request["max_output_chars"]
  out_cap, err_cap = 4 * max_chars + 4, 1 << 16
  workdir = tempfile.mkdtemp(dir=config["root_dir"], prefix=f"slot{config['slot']}_")
  quota = layers["mount_namespace"]
  if quota:  # a disk quota for the directory, invisible outside this worker's namespace
    options = f"size={request['max_dir_mb']}m,nr_inodes=4096,mode=0700"
    options += f",uid={uid},gid={uid}" if uid is not None else ""
    _libc_call("mount", b"tmpfs", workdir.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode())
  elif uid is not None:
    os.chown(workdir, uid, uid)
  out_r, out_w = os.pipe()
  err_r, err_w = os.pipe()
  start = time.monotonic()
  pid = os.fork()
  if pid == 0:
    _child(request, config, uid, workdir, out_w, err_w, config["worker_pid"])
  os.close(out_w)
  os.close(err_w)
  pidfd = os.pidfd_open(pid)
  poller = select.poll()
  for fd in (out_r, err_r, pidfd):
    poller.register(fd, select.POLLIN)
  stdout, stderr_tail = bytearray(), bytearray()
  err_total, status, wait_status = 0, None, None
  deadline = start + request["timeout_s"]
  open_pipes = {out_r, err_r}
  while status is None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
      status = "timeout"
      break
    for fd, _ in poller.poll(remaining * 1000):
      if fd == pidfd:
        wait_status = os.waitpid(pid, 0)[1]
        status = "exited"
      elif fd in open_pipes:
        if fd == out_r:
          n = _read_into(fd, stdout, out_cap)
          if len(stdout) >= out_cap:
            status = "output_limit"
        else:
          n = _read_into(fd, stderr_tail, 1 << 62)
          err_total += max(n, 0)
          del stderr_tail[:-err_cap]
          if err_total > 64 * out_cap:
            status = "output_limit"
        if n == 0:
          poller.unregister(fd)
          open_pipes.discard(fd)
  seconds = time.monotonic() - start
  if wait_status is None:  # timeout or output limit: the program is still running
    os.kill(pid, signal.SIGKILL)
    wait_status = os.waitpid(pid, 0)[1]
  kill_everything(pid)
  for fd in list(open_pipes):  # every writer is dead now: read to EOF, within the caps
    os.set_blocking(fd, False)
    while True:
      if fd == out_r:
        n = _read_into(fd, stdout, out_cap)
      else:
        n = _read_into(fd, stderr_tail, 1 << 62)
        del stderr_tail[:-err_cap]
      if n <= 0:
        break
  for fd in (out_r, err_r, pidfd):
    os.close(fd)
  if quota:
    _libc_call("umount2", workdir.encode(), MNT_DETACH)
  _remove_tree(workdir)

  text = stdout.decode("utf-8", errors="replace")
  errors = stderr_tail.decode("utf-8", errors="replace")
  error = ""
  if len(text) > max_chars:
    status = "output_limit"
  if status == "timeout":
    error = TIMEOUT_MESSAGE
  elif status == "output_limit":
    error = f"OutputLimitError: the program printed more than {max_chars} characters"
  elif os.WIFSIGNALED(wait_status):
    number = os.WTERMSIG(wait_status)
    status = "timeout" if number == signal.SIGXCPU else "killed"
    error = TIMEOUT_MESSAGE if status == "timeout" else f"Killed by signal {signal.Signals(number).name}"
  elif os.WEXITSTATUS(wait_status) == EXIT_OK:
    status = "ok"
  elif os.WEXITSTATUS(wait_status) == EXIT_SETUP_FAILED:
    status, error = "error", "SandboxError: the sandbox could not start the program"
  else:
    error = _last_line(errors) or f"exit status {os.WEXITSTATUS(wait_status)}"
    status = "memory" if error.split(":")[0].endswith("MemoryError") else "error"
  return {"status": status, "stdout": text[:max_chars], "error": error, "seconds": seconds}


# ---- inside the program's process ---------------------------------------------------------
class _Stdout(io.TextIOWrapper):
  """sys.stdout that remembers whether the program printed anything."""
  written = False

  def write(self, text):
    if text:
      self.written = True
    return super().write(text)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {  # event -> positions of the path arguments a program may only touch in its dir
    "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.truncate": (0,), "os.chmod": (0,),
    "os.chown": (0,), "os.link": (0, 1), "os.symlink": (1,), "os.mkdir": (0,), "os.utime": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,), "os.mkfifo": (0,),
    "os.mknod": (0,), "os.chflags": (0,), "os.lchown": (0,)}
_FORBIDDEN_EVENTS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
                     "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
                     "ctypes.cdata", "os.forkpty", "pty.spawn", "winreg", "urllib.Request")


def _install_guards(workdir: str) -> None:
  """The Python-level tripwires (see the module docstring for what they do not guarantee)."""
  inside = os.path.realpath(workdir) + os.sep
  pgid = os.getpgrp()

  def allowed_path(path) -> bool:
    if isinstance(path, int) or path is None:
      return True
    resolved = os.path.realpath(os.fsdecode(path))
    return resolved == os.devnull or (resolved + os.sep).startswith(inside)

  def guard(event: str, args) -> None:
    if event.startswith("socket."):
      raise PermissionError(f"network access is disabled in the sandbox ({event})")
    if event.startswith(_FORBIDDEN_EVENTS):
      raise PermissionError(f"{event} is disabled in the sandbox")
    if event == "open":
      path, mode, flags = args
      writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
          isinstance(flags, int) and flags > 0 and flags & _WRITE_FLAGS)
      if writes and not allowed_path(path):
        raise PermissionError(f"writing outside the sandbox directory is disabled: {path!r}")
    elif event in _PATH_EVENTS:
      for position in _PATH_EVENTS[event]:
        if not allowed_path(args[position]):
          raise PermissionError(f"{event} outside the sandbox directory is disabled: {args[position]!r}")
    elif event in ("os.kill", "os.killpg"):
      target = args[0]
      own = target in (0, os.getpid(), -pgid) or (event == "os.killpg" and target == pgid)
      if not own and target > 0 and event == "os.kill":
        try:
          own = os.getpgid(target) == pgid
        except OSError:
          own = False
      if not own:
        raise PermissionError(f"signalling process {target} is disabled in the sandbox")
    elif event == "signal.pthread_kill":
      pass  # threads of this process only

  sys.addaudithook(guard)
  if "socket" in sys.modules:  # also make the obvious entry points fail loudly
    import socket

    def no_network(*args, **kwargs):
      raise PermissionError("network access is disabled in the sandbox")
    for name in ("socket", "create_connection", "create_server", "getaddrinfo", "socketpair", "fromfd"):
      setattr(socket, name, no_network)


def compile_program(code: str, print_last_expr: bool):
  """(body, last_expression or None). With `print_last_expr`, a final bare expression is split
  off so that its value can be printed when the program printed nothing (ToRA convention)."""
  tree = ast.parse(code, filename="<string>", mode="exec")
  last = None
  if print_last_expr and tree.body and isinstance(tree.body[-1], ast.Expr):
    last = compile(ast.Expression(tree.body.pop().value), "<string>", "eval")
  return compile(tree, "<string>", "exec"), last


def run_program(code: str, workdir: str, *, print_last_expr: bool, guards: bool) -> int:
  """Execute `code` as __main__ in this process; returns the exit status (0 ok, 1 error)."""
  stdout = _Stdout(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace")
  sys.stdout = sys.__stdout__ = stdout
  sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                                 errors="backslashreplace", write_through=True)
  sys.stdin = sys.__stdin__ = open(os.devnull)
  namespace = {"__name__": "__main__", "__builtins__": builtins}
  exit_status = EXIT_OK
  try:
    body, last = compile_program(code, print_last_expr)
    if guards:
      _install_guards(workdir)
    exec(body, namespace)
    if last is not None:
      value = eval(last, namespace)
      if value is not None and not stdout.written:
        print(value)
  except SystemExit as e:
    if e.code not in (None, 0):
      print(f"SystemExit: {e.code}", file=sys.stderr)
      exit_status = EXIT_ERROR
  except BaseException as e:  # the program's error is its result
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
      tb = tb.tb_next  # show the program's frames only, as ToRA's exec does
    try:
      sys.stderr.write("".join(traceback.format_exception(type(e), e, tb)))
    except BaseException:
      sys.stderr.write(f"{type(e).__name__}\n")
    exit_status = EXIT_ERROR
  try:
    stdout.flush()
  except BaseException:
    pass
  return exit_status


def main() -> None:
  protocol_in, protocol_out = os.dup(0), os.dup(1)
  null = os.open(os.devnull, os.O_RDWR)
  os.dup2(null, 0)
  os.dup2(null, 1)  # a stray print in a warm import cannot corrupt the protocol
  config = recv(protocol_in)
  os.environ.clear()
  os.environ.update(config["env"])
  layers = isolate(config)
  sys.path[:] = config["sys_path"]
  imported = warm_imports(config["warm_imports"])
  config["worker_pid"] = os.getpid()
  send(protocol_out, {"pid": os.getpid(), "layers": layers, "warm_imports": imported,
                      "base_vm_mb": _vm_bytes() >> 20})
  while (request := recv(protocol_in)) is not None:
    send(protocol_out, run_one(request, config, layers))


if __name__ == "__main__":
  main()
