"""Kernel-level isolation of sandboxed programs: namespaces, read-only view, uid, rlimits.

`isolate` runs once in each warm worker (everything it sets up is inherited by each program
the worker forks); `set_limits`, `enter_pid_namespace` and `drop_capabilities` run in each
forked program process.

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
  not root (or drop_privileges=False): the program runs as the caller's uid, so a PID
    namespace stands in for the uid change: the program is init of its own namespace with its
    own /proc, so it cannot see or signal the caller or this worker (os.kill(os.getppid(), 9)
    is a no-op, os.kill(caller_pid, 9) is ESRCH) nor reach the caller's files through
    /proc/PID/root; when it ends, the kernel kills everything it started. It can still read
    what the caller can outside the hidden home. Without user namespaces none of this holds and
    only the Python guards stand between the program and the caller; a worker the program
    kills is seen by the caller as "killed" and replaced.
  Python guards (audit hook, on by default): no sockets, exec/subprocess or ctypes; no writes,
    renames or deletions outside the working directory; no signals outside the program's own
    process group. A tripwire that gives clear errors, not a wall: C code can bypass it.
"""
import ctypes
import math
import os
import re
import resource
import signal
import stat
import sys

CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
MS_NOEXEC = 8
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
_CAPABILITY_VERSION_3 = 0x20080522
LIBC = ctypes.CDLL(None, use_errno=True)


def libc_call(name: str, *args) -> None:
  """Calls a libc function that returns 0 on success; raises OSError otherwise."""
  if getattr(LIBC, name)(*args) != 0:
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
    libc_call("mount", b"tmpfs", ancestor.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m")
    for path, fd in fds.items():
      if os.path.isdir(f"/proc/self/fd/{fd}"):
        os.makedirs(path, exist_ok=True)
      else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()
      libc_call("mount", f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None)
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
      libc_call("unshare", CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)
      for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
          f.write(text)
      libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
      return True, True
    except OSError:
      return False, False
  namespaces = []
  for flag in (CLONE_NEWNET, CLONE_NEWNS):
    try:
      libc_call("unshare", flag)
      namespaces.append(True)
    except OSError:
      namespaces.append(False)
  if namespaces[1]:
    libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
  return namespaces[0], namespaces[1]


_MOUNT_FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048,
                "relatime": 1 << 21, "strictatime": 1 << 24}


def _read_only_except(writable: str) -> list[str]:
  """Remount every mount read-only in this namespace, except `writable` (bound on itself
  first); returns the mount points that refused. Each mount keeps its other flags, which a
  user namespace requires (they are locked)."""
  libc_call("mount", writable.encode(), writable.encode(), None, MS_BIND | MS_REC, None)
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
    if LIBC.mount(None, point.encode(), None, flags, None) != 0:
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
    libc_call("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
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
  layers["pid_namespace"] = False
  if layers["uid"] is None and layers["mount_namespace"]:  # same uid as the caller: hide it
    layers["pid_namespace"] = _probe_pid_namespace()
    if not layers["pid_namespace"]:
      layers["notes"].append("no PID namespace: programs can signal the caller's processes, "
                             "and reach its files through /proc/PID/root, past the guards")
  return layers


def enter_pid_namespace(proc: str) -> None:
  """Forks into a new PID (and mount) namespace and returns in its init process, which gets a
  /proc of its own (`proc` = "proc") or an empty one ("empty"), so that the caller's processes
  are neither visible nor signalable, and /proc/PID/root cannot lead out of the read-only
  view. The original process stays behind as a shim: it waits and exits as the init did."""
  libc_call("unshare", CLONE_NEWPID | CLONE_NEWNS)
  inner = os.fork()
  if inner == 0:
    os.setsid()  # kill(0, ...) from inside must not reach the shim
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if proc == "proc":
      libc_call("mount", b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    else:
      libc_call("mount", b"tmpfs", b"/proc", b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=4k")
    return
  status = os.waitpid(inner, 0)[1]
  if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
  os._exit(os.waitstatus_to_exitcode(status))


def _probe_pid_namespace() -> str | bool:
  """"proc" when a program can get a PID namespace with its own /proc; "empty" when only an
  empty /proc can be mounted there (e.g. a container masks parts of /proc); else False."""
  for proc in ("proc", "empty"):
    pid = os.fork()
    if pid == 0:
      try:
        enter_pid_namespace(proc)
        os._exit(0 if os.getpid() == 1 else 1)
      except BaseException:
        os._exit(1)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0:
      return proc
  return False


def vm_bytes() -> int:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _system_task_count() -> int:
  with open("/proc/loadavg") as f:
    return int(f.read().split()[3].split("/")[1])


def set_limits(request, uid) -> None:
  mb = 1 << 20
  address_space = vm_bytes() + request["memory_mb"] * mb  # on top of the warm interpreter
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


def drop_capabilities() -> None:
  """No capabilities, and none regained through exec (so no remounting the read-only view)."""
  header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
  data = (ctypes.c_uint32 * 6)()
  libc_call("capset", header, data)
  libc_call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
