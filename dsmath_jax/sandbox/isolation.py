"""Kernel isolation of sandboxed programs: a jail per worker, namespaces per program.

In GRPO with tool use (paper §4, §5.1.2) a program that can read gold answers or other samples,
or talk to the trainer, is a reward-hacking channel, so the walls are the kernel's, not Python's.

Per pool slot (once, before the warm imports, so every program keeps the worker's warmth):
  a network namespace with no interface, a mount namespace, and a jail: a fresh root holding
  read-only binds of what a program needs (/usr and /lib*, the Python installation and its
  site-packages, ld.so.cache, a made-up /etc/passwd, /dev/{null,zero,full,random,urandom}) and
  nothing else: no /home, /root, /work, /run, /sys, no host sockets or other programs' files.
  Built by bubblewrap around the worker when `bwrap` is installed and works ("bubblewrap"),
  else by this module with unshare(2) and mount(2) ("unshare").
Per program (after the fork, `enter_jail` + `drop_privileges`):
  new PID, IPC, mount, UTS and cgroup namespaces: the program is PID 1 of its own namespace,
  sees only its own processes in a /proc of its own, and when it ends the kernel kills every
  process it started; its SysV IPC objects die with its IPC namespace. A fresh tmpfs at
  /sandbox (size-limited) is its only writable folder (/tmp points there). Then rlimits, when
  root a separate uid per slot (no signals to, no files of, the caller or other slots), no
  capabilities, no_new_privs and a seccomp filter (`seccomp.py`), and an empty environment
  plus a fixed minimal one. Memory and process limits over the whole tree: `cgroup.py`.
If the jail cannot be made (no namespaces allowed), isolation is "none": rlimits, a fresh
directory and the Python guards (`program.py`: tripwires, not walls) only; `Sandbox` refuses to
start in that state unless `allow_unisolated=True`.
"""
import ctypes
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys

from dsmath_jax.sandbox import seccomp

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
_CAPABILITY_VERSION_3 = 0x20080522
LIBC = ctypes.CDLL(None, use_errno=True)
WORKDIR = "/sandbox"  # the program's folder, inside the jail
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_MOUNT_FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048,
                "relatime": 1 << 21, "strictatime": 1 << 24}


def libc_call(name: str, *args) -> None:
  """Calls a libc function that returns 0 on success; raises OSError otherwise."""
  if getattr(LIBC, name)(*args) != 0:
    errno = ctypes.get_errno()
    raise OSError(errno, f"{name}: {os.strerror(errno)}")


# ---- what the jail holds ----------------------------------------------------------------------
def python_paths(sys_path: list[str]) -> list[str]:
  """The directories a program's imports read from (outermost only): the interpreter's prefixes
  and every site-/dist-packages on sys.path. Other sys.path entries (the caller's repository,
  its working directory) stay outside: they may hold gold answers or run directories."""
  paths = {os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix)}
  paths.add(os.path.dirname(os.path.realpath(sys.executable)))
  for entry in sys_path:
    real = os.path.realpath(entry) if entry else ""
    if real and os.path.isdir(real) and os.path.basename(real) in ("site-packages", "dist-packages"):
      paths.add(real)
  paths = sorted(p for p in paths if os.path.isdir(p))
  return [p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]


def jail_entries(sys_path: list[str], extra: list[str] = ()) -> list[tuple[str, str]]:
  """(kind, path) for the jail: ("symlink", path) mirrors a host symlink, ("ro", path) binds
  path read-only at the same name, ("dev", path) binds a device."""
  entries = []
  for path in _SYSTEM_DIRS:
    if os.path.islink(path):
      entries.append(("symlink", path))
    elif os.path.isdir(path):
      entries.append(("ro", path))
  entries += [("ro", p) for p in _ETC_FILES if os.path.exists(p)]
  covered = [p for kind, p in entries if kind == "ro"]
  for path in python_paths(sys_path) + list(extra):
    if not any(path == c or path.startswith(c.rstrip("/") + "/") for c in covered):
      entries.append(("ro", path))
      covered.append(path)
  entries += [("dev", p) for p in _DEVICES if os.path.exists(p)]
  return entries


def passwd_text(uid: int | None) -> str:
  """/etc/passwd and /etc/group of the jail: root and the program's user, nothing of the host's."""
  lines = ["root:x:0:0:root:/:/bin/sh"]
  if uid not in (None, 0):
    lines.append(f"sandbox:x:{uid}:{uid}:sandbox:{WORKDIR}:/bin/sh")
  return "\n".join(lines) + "\n"


def bwrap_works(bwrap: str) -> str | None:
  """None when `bwrap` can build a jail here, else why not (its stderr)."""
  command = [bwrap, "--die-with-parent", "--unshare-net", "--unshare-ipc", "--unshare-pid",
             "--ro-bind", "/usr", "/usr", "--proc", "/proc"]
  for kind, path in jail_entries([]):
    if kind == "symlink":
      command += ["--symlink", os.readlink(path), path]
    elif path != "/usr" and kind == "ro":
      command += ["--ro-bind", path, path]
  command += ["--", os.path.realpath(sys.executable), "-S", "-c", "pass"]
  try:
    done = subprocess.run(command, capture_output=True, timeout=30, env={})
  except (OSError, subprocess.TimeoutExpired) as e:
    return str(e)
  return None if done.returncode == 0 else done.stderr.decode(errors="replace").strip()[-300:]


def bwrap_command(bwrap: str, entries, passwd_file: str, worker_files: list[str]) -> list[str]:
  """bubblewrap arguments that start the worker inside a jail of `entries`, with the
  capabilities it needs to give each program its own namespaces and tmpfs (the programs drop
  them all). No --new-session: the caller kills the worker by its process group. No
  --die-with-parent: its signal fires when the *thread* that started bwrap ends (a pool thread);
  the worker exits on its own when the caller's end of its stdin closes."""
  root = os.geteuid() == 0
  command = [bwrap, "--unshare-net", "--unshare-ipc", "--unshare-uts",
             "--unshare-pid", "--unshare-cgroup-try", "--cap-add", "ALL"]
  if not root:
    command += ["--unshare-user"]
  ancestors = sorted({os.path.dirname(path[:i]) for _, path in entries for i in range(len(path) + 1)
                      if path[:i].endswith("/")} - {"", "/"})
  for directory in ancestors:  # traversable by the slot uid (e.g. /root around a pyenv)
    command += ["--perms", "0755", "--dir", directory]
  for kind, path in entries:
    if kind == "symlink":
      command += ["--symlink", os.readlink(path), path]
    elif kind == "ro":
      command += ["--ro-bind", path, path]
    else:
      command += ["--dev-bind", path, path]
  for path in worker_files:
    command += ["--ro-bind", path, path]
  command += ["--ro-bind", passwd_file, "/etc/passwd", "--ro-bind", passwd_file, "/etc/group",
              "--proc", "/proc", "--dir", WORKDIR, "--symlink", WORKDIR, "/tmp",
              "--symlink", WORKDIR, "/dev/shm", "--symlink", "/proc/self/fd", "/dev/fd",
              "--remount-ro", "/", "--chdir", "/"]
  return command


# ---- the worker's side (once) -----------------------------------------------------------------
def _enter_worker_namespaces() -> None:
  """A network and a mount namespace for this worker; when not root, inside a user namespace
  that maps only the caller's uid (unprivileged user namespaces must be enabled)."""
  if os.geteuid() == 0:
    libc_call("unshare", CLONE_NEWNET | CLONE_NEWNS)
  else:
    uid, gid = os.getuid(), os.getgid()
    libc_call("unshare", CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
      with open(f"/proc/self/{name}", "w") as f:
        f.write(text)
  libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)


def _bind(source: str, target: str, directory: bool) -> None:
  if directory:
    os.makedirs(target, exist_ok=True)
  else:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    open(target, "a").close()
  libc_call("mount", source.encode(), target.encode(), None, MS_BIND | MS_REC, None)


def _remount_read_only(jail: str) -> None:
  """Every mount under `jail` (the binds and their submounts) read-only, keeping each one's
  other flags (a user namespace locks them)."""
  with open("/proc/self/mountinfo") as f:
    points = [(line.split()[4], line.split()[5]) for line in f]
  for point, options in points:
    point = point.encode().decode("unicode_escape")
    if not (point == jail or point.startswith(jail + "/")):
      continue
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY
    for option in options.split(","):
      flags |= _MOUNT_FLAGS.get(option, 0)
    libc_call("mount", None, point.encode(), None, flags, None)


def build_jail(jail: str, entries, passwd: str) -> None:
  """The "unshare" jail at `jail` (in this worker's mount namespace): a tmpfs holding read-only
  binds of `entries`, made read-only as a whole."""
  os.makedirs(jail, exist_ok=True)
  libc_call("mount", b"tmpfs", jail.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m")
  for kind, path in entries:
    target = jail + path
    if kind == "symlink":
      os.makedirs(os.path.dirname(target), exist_ok=True)
      os.symlink(os.readlink(path), target)
    else:
      _bind(path, target, os.path.isdir(path))
  os.makedirs(jail + "/etc", exist_ok=True)
  for name in ("passwd", "group"):
    with open(f"{jail}/etc/{name}", "w") as f:
      f.write(passwd)
  for directory in (WORKDIR, "/proc"):
    os.makedirs(jail + directory, mode=0o755, exist_ok=True)
  os.symlink(WORKDIR, jail + "/tmp")
  os.symlink(WORKDIR, jail + "/dev/shm")
  os.symlink("/proc/self/fd", jail + "/dev/fd")
  _remount_read_only(jail)


def isolate(config) -> dict:
  """Sets up this worker's side of the isolation; returns what holds (`layers`)."""
  layers = {"isolation": "none", "jail": None, "uid": None, "subreaper": False,
            "seccomp": seccomp.build_filter() is not None, "notes": []}
  try:
    libc_call("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    layers["subreaper"] = True
  except OSError as e:
    layers["notes"].append(f"no subreaper, double-forked orphans may outlive a program: {e}")
  if not layers["seccomp"]:
    layers["notes"].append(f"no seccomp filter for {platform.machine()}")
  backend = config["backend"]
  try:
    if backend == "bubblewrap":
      layers["jail"] = "/"
    elif backend == "unshare":
      _enter_worker_namespaces()
      jail = config["jail_dir"]
      build_jail(jail, [tuple(e) for e in config["jail_entries"]], passwd_text(config["uid"]))
      layers["jail"] = jail
  except OSError as e:
    layers["notes"].append(f"no jail ({backend}): {e}")
  if os.geteuid() == 0 and config["uid"] is not None:
    layers["uid"] = config["uid"]
  if layers["jail"] is not None:
    why_not = _probe_program(layers)
    if why_not is None:
      layers["isolation"] = backend
    else:
      layers["notes"].append(f"programs cannot enter the jail: {why_not}")
      layers["jail"] = None
  if layers["isolation"] == "none":
    layers["notes"].append("NO KERNEL ISOLATION: only rlimits and the Python guards hold")
  return layers


def _probe_program(layers) -> str | None:
  """None when a forked process can take every per-program layer, else why not."""
  read, write = os.pipe()
  pid = os.fork()
  if pid == 0:
    os.close(read)
    try:
      enter_jail(layers["jail"])
      drop_privileges(layers["uid"], layers["seccomp"])
      assert os.getpid() == 1 and os.listdir("/proc/self/fd"), "no PID namespace of its own"
      os.listdir(os.path.dirname(os.__file__))
      os._exit(0)
    except BaseException as e:
      os.write(write, repr(e).encode()[:500])
      os._exit(1)
  os.close(write)
  message = os.read(read, 600).decode(errors="replace")
  os.close(read)
  status = os.waitpid(pid, 0)[1]
  return None if os.waitstatus_to_exitcode(status) == 0 else message or f"status {status}"


# ---- the program's side (per fork) ------------------------------------------------------------
def enter_jail(jail: str) -> None:
  """Forks into new PID, IPC, mount, UTS and cgroup namespaces and returns in their init
  process, chrooted into `jail` with a /proc of its own and in WORKDIR. The original process
  stays behind as a shim: it waits and exits as the init did. Runs as root (or with a user
  namespace's capabilities); `drop_privileges` comes after."""
  flags = CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWUTS
  try:
    libc_call("unshare", flags | CLONE_NEWCGROUP)
  except OSError:
    libc_call("unshare", flags)
  inner = os.fork()
  if inner == 0:
    os.setsid()  # kill(0, ...) from inside must not reach the shim
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    root = "" if jail == "/" else jail
    libc_call("mount", b"proc", f"{root}/proc".encode(), b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    if root:
      os.chroot(root)
    os.chdir(WORKDIR)
    return
  for fd in range(3, 1024):  # the shim keeps nothing the program could inherit through it
    try:
      os.close(fd)
    except OSError:
      pass
  status = os.waitpid(inner, 0)[1]
  if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
  os._exit(os.waitstatus_to_exitcode(status))


def vm_bytes() -> int:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _system_task_count() -> int:
  with open("/proc/loadavg") as f:
    return int(f.read().split()[3].split("/")[1])


def set_limits(request, uid, base_vm_bytes: int) -> None:
  """Per-process rlimits. RLIMIT_AS: on top of the warm interpreter (the cgroup bounds the tree);
  RLIMIT_NPROC counts every task of the real uid: exact for a per-slot uid, an upper bound taken
  from the whole system when programs share the caller's uid."""
  mb = 1 << 20
  address_space = base_vm_bytes + request["memory_mb"] * mb
  cpu_seconds = math.ceil(request["timeout_s"]) + 1
  processes = request["max_processes"] + (0 if uid is not None else _system_task_count())
  for limit, value in ((resource.RLIMIT_AS, (address_space, address_space)),
                       (resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1)),
                       (resource.RLIMIT_NPROC, (processes, processes)),
                       (resource.RLIMIT_FSIZE, (request["max_file_mb"] * mb,) * 2),
                       (resource.RLIMIT_CORE, (0, 0)),
                       (resource.RLIMIT_MEMLOCK, (0, 0)),
                       (resource.RLIMIT_MSGQUEUE, (0, 0)),
                       (resource.RLIMIT_NOFILE, (256, 256))):
    resource.setrlimit(limit, value)


def drop_privileges(uid: int | None, use_seccomp: bool) -> None:
  """The slot's uid (when root), no capabilities (none regained through exec), no_new_privs,
  and the seccomp filter."""
  for cap in range(64):  # the bounding set, while CAP_SETPCAP is still held
    LIBC.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; fails harmlessly without CAP_SETPCAP
  if uid is not None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # setuid cleared it
  header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
  data = (ctypes.c_uint32 * 6)()
  libc_call("capset", header, data)
  libc_call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
  if use_seccomp:
    seccomp.install(LIBC)


def worker_files(package_root: str) -> list[str]:
  """What the worker itself imports from the package (bound into a bubblewrap jail): the
  package's __init__ and what it imports (xla_cpu, which only sets XLA_FLAGS), and sandbox/."""
  package = os.path.join(package_root, "dsmath_jax")
  return [os.path.join(package, "__init__.py"), os.path.join(package, "xla_cpu.py"),
          os.path.join(package, "sandbox")]


def find_bwrap() -> str | None:
  return shutil.which("bwrap")
