"""No worker outlives a SIGKILLed parent (issue 16): grain prefetch workers, the grader's pool,
the sandbox's warm workers and their programs.

Each test starts a parent process that makes its workers busy (a job that would run for
minutes), collects every descendant of the parent from /proc, SIGKILLs the parent and asserts
that every descendant is gone (or a zombie waiting for init) within a few seconds.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GONE_WITHIN_S = 10.0


def _children(pid: int) -> set[int]:
  found = set()
  try:
    for task in os.listdir(f"/proc/{pid}/task"):
      with open(f"/proc/{pid}/task/{task}/children") as f:
        found |= {int(p) for p in f.read().split()}
  except OSError:
    pass
  return found


def _descendants(pid: int) -> set[int]:
  found, frontier = set(), {pid}
  while frontier:
    children = set().union(*(_children(p) for p in frontier)) - found
    found |= children
    frontier = children
  return found


def _alive(pid: int) -> bool:
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


def _kill_parent_and_check(script: str, tmp_path, min_workers: int) -> None:
  parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"))
  workers = set()
  try:
    line = parent.stdout.readline()                    # the parent says when its workers are busy
    assert line.strip() == "busy", f"parent failed before its workers were busy: {line!r}"
    workers = _descendants(parent.pid)
    assert len(workers) >= min_workers, workers
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + GONE_WITHIN_S
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
      time.sleep(0.1)
    orphans = sorted(p for p in workers if _alive(p))
    assert not orphans, f"workers alive {GONE_WITHIN_S}s after their parent was SIGKILLed: {orphans}"
  finally:
    parent.kill()
    for pid in workers:                                # never leave a failed test's orphans behind
      try:
        os.kill(pid, signal.SIGKILL)
      except (ProcessLookupError, PermissionError):
        pass


def _wait_files(pattern_dir, prefix, count):
  return f"""
  deadline = time.monotonic() + 120
  while len([n for n in os.listdir({pattern_dir}) if n.startswith({prefix!r})]) < {count}:
    assert time.monotonic() < deadline, "workers never got busy"
    time.sleep(0.05)
  print("busy", flush=True)
  """


def test_grader_workers_busy_in_sympy_die_with_their_parent(tmp_path):
  # fork, so the patched rule reaches the workers: every comparison "hangs" (a huge sympy simplify);
  # 4 pairs: each worker takes 2 (the queue depth)
  script = """
  import os, sys, threading, time
  from dsmath_jax.grading import grader, kinds
  out = sys.argv[1]
  def hang(*args, **kwargs):
    open(os.path.join(out, f"busy-{os.getpid()}"), "w").close()
    time.sleep(600)
  kinds.decide = hang
  kinds.quick_decide = lambda *args, **kwargs: None
  pool = grader.Grader(workers=2, timeout_s=600, start_method="fork")
  threading.Thread(target=pool.grade_many, args=([("x", "y")] * 4,), daemon=True).start()
  """ + _wait_files("out", "busy-", 2) + """
  time.sleep(600)
  """
  _kill_parent_and_check(script, tmp_path, min_workers=2)


def test_grain_prefetch_workers_die_with_their_parent(tmp_path):
  script = """
  import json, os, sys, time
  import ml_collections
  from absl import flags
  from dsmath_jax import tokenizer
  flags.FLAGS.mark_as_parsed()        # grain reads its flags (main.py parses them)
  from dsmath_jax.data import pipeline
  out = sys.argv[1]
  path = os.path.join(out, "a.jsonl")
  with open(path, "w") as f:
    f.writelines(json.dumps({"text": "a" * 40, "id": str(i)}) + "\\n" for i in range(100))
  config = ml_collections.ConfigDict(dict(seq_len=32, global_batch=4, seed=0, packing="concat",
                                          packing_bins=2, worker_count=2,
                                          sources=dict(a=dict(jsonl=path, weight=1.0))))
  data = pipeline.DataConfig.from_config(config)
  iterator = iter(pipeline.batches(data, tokenizer.ByteTokenizer(), "text", process_index=0, process_count=1))
  next(iterator)                      # both workers are running; their buffers fill and they block
  print("busy", flush=True)
  time.sleep(600)
  """
  _kill_parent_and_check(script, tmp_path, min_workers=2)


def test_sandbox_worker_and_its_running_program_die_with_the_caller(tmp_path):
  script = """
  import os, sys, threading, time
  from dsmath_jax.sandbox import sandbox
  out = sys.argv[1]
  box = sandbox.Sandbox(workers=1, warm_imports=(), allow_unisolated=True)
  program = "import time\\ntime.sleep(300)"
  threading.Thread(target=box.run, args=(program,), kwargs=dict(timeout_s=300), daemon=True).start()
  time.sleep(3)                       # the program sleeps inside its jail
  print("busy", flush=True)
  time.sleep(600)
  """
  _kill_parent_and_check(script, tmp_path, min_workers=2)


def test_a_worker_whose_parent_died_before_its_lifeline_dies_at_once():
  """The race: the parent is gone before the child calls exit_with_parent (here: pid 1 is named
  as the parent of a process whose parent is this test), so the child must not run on."""
  done = subprocess.run([sys.executable, "-c", "from dsmath_jax import lifeline\n"
                         "lifeline.exit_with_parent(1)\nprint('survived')"],
                        cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
  assert done.returncode == -signal.SIGKILL and "survived" not in done.stdout, (done.returncode, done.stderr)


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_lifeline_kills_a_child_of_a_sigkilled_parent(tmp_path, pidfd):
  """exit_with_parent alone, with pidfd_open and with the getppid polling of older kernels."""
  script = f"""
  import multiprocessing, os, time
  from dsmath_jax import lifeline
  def child():
    if not {pidfd}:
      del os.pidfd_open
    lifeline.exit_with_parent()
    time.sleep(600)
  if __name__ == "__main__":
    worker = multiprocessing.get_context("spawn").Process(target=child)
    worker.start()
    time.sleep(2)
    print("busy", flush=True)
    time.sleep(600)
  """
  path = tmp_path / "parent.py"
  path.write_text(textwrap.dedent(script))
  _kill_parent_and_check(f"import runpy, sys; runpy.run_path({str(path)!r}, run_name='__main__')", tmp_path,
                         min_workers=1)
