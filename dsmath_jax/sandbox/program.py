"""What runs inside a sandboxed program's own process: the ToRA execution conventions and the
Python guards, after `sandbox_worker` has forked and isolated the process.

ToRA (Gou et al., 2023) and DeepSeekMath's tool-integrated evaluation exec the program as one
script and take what it printed as its result; an error's result is the last line of its
traceback. `print_last_expr` adds the notebook-like rule: a final bare expression is printed
when the program printed nothing. With `guards`, an audit hook refuses sockets, exec and
ctypes, writes and deletions outside the working directory, and signals outside the
program's own process group, with clear PermissionErrors.
"""
import ast
import builtins
import io
import os
import sys
import traceback

EXIT_OK, EXIT_ERROR = 0, 1


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
  """The Python-level tripwires; sandbox_isolation's docstring says what they do not guarantee."""
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
          raise PermissionError(
              f"{event} outside the sandbox directory is disabled: {args[position]!r}")
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
