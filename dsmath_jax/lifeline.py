"""Worker processes end when the process that started them dies, even by SIGKILL.

A grader worker busy in sympy, or a grain prefetch worker blocked on a full queue, does not
notice that its parent is gone: without a lifeline it keeps running (and holding memory) for
minutes after the run was killed (issue 16). Each such worker calls `exit_with_parent(pid)`
first thing; a multiprocessing child needs no argument (its parent's pid comes with it),
any other child is given the pid of the process that started it:

  def worker_main(...):
    lifeline.exit_with_parent()          # multiprocessing.parent_process().pid

Why not PR_SET_PDEATHSIG: Linux sends that signal when the *thread* that forked the child
exits, not the process (prctl(2)), and grain and our pools start workers from short-lived
threads, which would kill healthy workers. Instead a daemon thread waits on a pidfd of the
parent process (pidfd_open(2): readable once the whole process has exited) and SIGKILLs
this process. The race is checked: if the parent died before the pidfd was opened, this
process has already been re-parented, `os.getppid()` differs, and it dies at once.
Kernels without pidfd_open (< 5.3) poll `os.getppid()` instead.
"""
import multiprocessing
import os
import select
import signal
import threading

POLL_S = 0.5  # the fallback's polling interval


def _die() -> None:
  os.kill(os.getpid(), signal.SIGKILL)


def _wait_for_exit(pidfd: int) -> None:
  select.select([pidfd], [], [])
  _die()


def _poll_parent(parent_pid: int) -> None:
  while os.getppid() == parent_pid:
    threading.Event().wait(POLL_S)
  _die()


def exit_with_parent(parent_pid: int | None = None) -> None:
  """SIGKILLs this process as soon as `parent_pid` (its parent; default: the multiprocessing
  parent) has exited; returns at once."""
  if parent_pid is None:
    parent = multiprocessing.parent_process()
    if parent is None:
      raise RuntimeError("exit_with_parent() without a pid outside a multiprocessing child")
    parent_pid = parent.pid
  try:
    pidfd = os.pidfd_open(parent_pid)
  except (OSError, AttributeError):
    pidfd = None
  if os.getppid() != parent_pid:  # already orphaned (or the pidfd names a reused pid)
    _die()
  if pidfd is None:
    target, args = _poll_parent, (parent_pid,)
  else:
    target, args = _wait_for_exit, (pidfd,)
  threading.Thread(target=target, args=args, name="lifeline", daemon=True).start()
