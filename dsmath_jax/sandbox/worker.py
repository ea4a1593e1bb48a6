"""The warm sandbox worker: one per pool slot, it imports sympy once and forks per program.

Started by `sandbox.py` as `python -s -m dsmath_jax.sandbox.worker` with a minimal
environment. It talks to its caller over stdin/stdout with length-prefixed JSON: one config
message, a handshake reply (the isolation layers it achieved), then per program one request
-> an acknowledgement and a result. Importing sympy costs ~1 s per process; forking a process
that already has it costs ~10 ms, which is why tool-integrated sampling (§3.1, §4) can afford
a fresh process per program. Per program it makes the directory, forks, isolates the child
(`isolation`), runs the code in it (`program`), reads its output with bounded
buffers until it exits or the wall-clock deadline passes, SIGKILLs everything it left behind,
and removes the directory. When the caller dies (even by SIGKILL) its end of the protocol pipe
closes: an idle worker reads end of file and exits; a busy one sees the hang-up in the same
poll that reads its program's output, kills the program and exits (no orphans, issue 16); each
program's processes die with the worker (PR_SET_PDEATHSIG, PID namespace).
"""
import json
import os
import select
import shutil
import signal
import struct
import sys
import tempfile
import time

from dsmath_jax.sandbox import isolation
from dsmath_jax.sandbox import program as sandbox_program

EXIT_SETUP_FAILED = 70
TIMEOUT_MESSAGE = "Timeout Error"  # the string ToRA / DeepSeekMath's executors put in the output block


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


def _child(request, config, layers, workdir, out_w, err_w, worker_pid) -> None:
  """Runs in the forked process: isolate, then run the program. Never returns."""
  try:
    os.setsid()
    isolation.LIBC.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != worker_pid:  # the worker died before the line above
      os._exit(EXIT_SETUP_FAILED)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.closerange(3, 1 << 20)  # the worker's protocol pipes above all
    try:  # the OOM killer's first choice (the worker is exempt); raising needs no privilege
      with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    except OSError:
      pass
    base_vm_bytes = isolation.vm_bytes()
    if layers["jail"] is not None:
      isolation.enter_jail(layers["jail"])
    else:
      os.chdir(workdir)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not a kill
    isolation.set_limits(request, layers["uid"], base_vm_bytes)
    isolation.drop_privileges(layers["uid"], layers["seccomp"] and layers["jail"] is not None)
    os.environ.clear()
    os.environ.update(config["env"], HOME=os.getcwd(), TMPDIR=os.getcwd(), MPLCONFIGDIR=os.getcwd())
    tempfile.tempdir = None
    sys.dont_write_bytecode = True
  except BaseException:
    os._exit(EXIT_SETUP_FAILED)
  os._exit(sandbox_program.run_program(request["code"], os.getcwd(), guards=request["python_guards"],
                                       print_last_expr=request["print_last_expr"]))


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


def tree_private_bytes(pid: int) -> int:
  """Memory the program's processes own (private pages and swap, not what they share with the
  warm worker): the per-tree accounting used where no memory cgroup can be had."""
  total = 0
  for process in [pid] + _descendants(pid):
    try:
      with open(f"/proc/{process}/smaps_rollup") as f:
        for line in f:
          if line.startswith(("Private_Clean:", "Private_Dirty:", "Swap:")):
            total += int(line.split()[1]) << 10
    except (OSError, ValueError):
      pass
  return total


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
  jail = layers["jail"]
  if jail is not None:  # a fresh size-limited tmpfs, seen only inside this worker's namespace
    workdir = ("" if jail == "/" else jail) + isolation.WORKDIR
    options = f"size={request['max_dir_mb']}m,nr_inodes=4096,mode=0700"
    options += f",uid={uid},gid={uid}" if uid is not None else ""
    isolation.libc_call("mount", b"tmpfs", workdir.encode(), b"tmpfs",
                        isolation.MS_NOSUID | isolation.MS_NODEV, options.encode())
  else:
    workdir = tempfile.mkdtemp(dir=config["root_dir"], prefix=f"slot{config['slot']}_")
    if uid is not None:
      os.chown(workdir, uid, uid)
  memory_cap = request["memory_mb"] << 20 if config["tree_accounting"] else None
  out_r, out_w = os.pipe()
  err_r, err_w = os.pipe()
  start = time.monotonic()
  pid = os.fork()
  if pid == 0:
    _child(request, config, layers, workdir, out_w, err_w, config["worker_pid"])
  os.close(out_w)
  os.close(err_w)
  pidfd = os.pidfd_open(pid)
  poller = select.poll()
  for fd in (out_r, err_r, pidfd):
    poller.register(fd, select.POLLIN)
  caller_fd = config.get("caller_fd")   # the caller sends nothing while a program runs: any
  if caller_fd is not None:             # event on it is its hang-up, i.e. the caller died
    poller.register(caller_fd, select.POLLIN)
  stdout, stderr_tail = bytearray(), bytearray()
  err_total, status, wait_status = 0, None, None
  deadline = start + request["timeout_s"]
  open_pipes = {out_r, err_r}
  while status is None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
      status = "timeout"
      break
    if memory_cap is not None:
      if tree_private_bytes(pid) > memory_cap:
        status = "memory"
        break
      remaining = min(remaining, 0.05)
    for fd, _ in poller.poll(remaining * 1000):
      if fd == caller_fd:  # nobody will read the result: the program and this worker end now
        os.kill(pid, signal.SIGKILL)
        kill_everything(pid)
        os._exit(0)
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
  if jail is not None:
    isolation.libc_call("umount2", workdir.encode(), isolation.MNT_DETACH)
  else:
    _remove_tree(workdir)

  text = stdout.decode("utf-8", errors="replace")
  errors = stderr_tail.decode("utf-8", errors="replace")
  error = ""
  if len(text) > max_chars:
    status = "output_limit"
  if status == "timeout":
    error = TIMEOUT_MESSAGE
  elif status == "memory":
    error = f"MemoryError: the program's processes used more than {request['memory_mb']} MB together"
  elif status == "output_limit":
    error = f"OutputLimitError: the program printed more than {max_chars} characters"
  elif os.WIFSIGNALED(wait_status):
    number = os.WTERMSIG(wait_status)
    status = "timeout" if number == signal.SIGXCPU else "killed"
    error = TIMEOUT_MESSAGE if status == "timeout" else f"Killed by signal {signal.Signals(number).name}"
  elif os.WEXITSTATUS(wait_status) == sandbox_program.EXIT_OK:
    status = "ok"
  elif os.WEXITSTATUS(wait_status) == EXIT_SETUP_FAILED:
    status, error = "error", "SandboxError: the sandbox could not start the program"
  else:
    error = _last_line(errors) or f"exit status {os.WEXITSTATUS(wait_status)}"
    status = "memory" if error.split(":")[0].endswith("MemoryError") else "error"
  return {"status": status, "stdout": text[:max_chars], "error": error, "seconds": seconds}


def main() -> None:
  protocol_in, protocol_out = os.dup(0), os.dup(1)
  null = os.open(os.devnull, os.O_RDWR)
  os.dup2(null, 0)
  os.dup2(null, 1)  # a stray print in a warm import cannot corrupt the protocol
  config = recv(protocol_in)
  os.environ.clear()
  os.environ.update(config["env"])
  config["worker_pid"] = os.getpid()
  config["caller_fd"] = protocol_in    # its end of file is how the worker learns the caller died
  layers = isolation.isolate(config)
  sys.path[:] = config["sys_path"]
  imported = warm_imports(config["warm_imports"])
  send(protocol_out, {"pid": os.getpid(), "layers": layers, "warm_imports": imported,
                      "base_vm_mb": isolation.vm_bytes() >> 20})
  while (request := recv(protocol_in)) is not None:
    send(protocol_out, {"started": True})  # lets the caller tell "never ran" from "killed"
    send(protocol_out, run_one(request, config, layers))


if __name__ == "__main__":
  main()
