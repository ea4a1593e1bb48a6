"""Grading final answers at scale: a pool of worker processes with a per-answer timeout (§2.2.1, §4.1).

The equality rules live in equivalence.py. Rule 5 (sympy) can take unbounded time
(`2^{10^{10}}`, a huge simplify), so `Grader` runs it in worker processes, gives each
comparison `timeout_s`, and kills and replaces a worker that overruns; a timed-out
comparison counts as incorrect and is reported with status "timeout". Pairs that rules 1-4
decide never leave the calling process. Optionally each worker also asks math-verify
(`math_verify.parse`/`verify`) for a second opinion. `is_equiv` / `grade_output` are the
one-pair API (the GRPO rule-based reward).
"""
import collections
import functools
import math
import multiprocessing
import multiprocessing.connection
import signal
import threading
import time
from typing import Callable, NamedTuple

from dsmath_jax import lifeline
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading import kinds
from dsmath_jax.grading.equivalence import math_equal, math_verify_equal, quick_compare

__all__ = ["Grader", "Verdict", "grade_output", "is_equiv", "math_equal", "quick_compare"]


class Verdict(NamedTuple):
  """One graded answer. status "ok" | "timeout" | "error"; detail names the deciding rule
  or the failure. math_verify: the second opinion (None when not asked or it timed out)."""
  correct: bool
  status: str
  detail: str
  math_verify: bool | None = None


_WARM_UP = (("(x+1)^2", "x^2+2x+1"), ("\\frac{\\sqrt{3}}{2}", "\\sin(\\pi/3)"), ("2\\pi r^{2}", "\\log_{2}8"),
            ("\\begin{pmatrix}1\\\\x\\end{pmatrix}", "\\begin{pmatrix}1\\\\y\\end{pmatrix}"))


def _split(pair) -> tuple:
  """(prediction, gold, kind) of a pair given as (prediction, gold) or (prediction, gold, kind)."""
  return (pair[0], pair[1], pair[2]) if len(pair) > 2 else (pair[0], pair[1], "math")


def _second_opinion(prediction, gold, kind: str, timeout_s: float) -> bool | None:
  """math-verify's verdict where it applies (answers that are one expression); else None."""
  if kind not in ("math", "ocw") or prediction is None:
    return None
  return math_verify_equal(prediction, gold, timeout_s)


def _worker_main(conn, memory_mb: int, second_opinion: bool, timeout_s: float, paper_compat: bool = False):
  """Worker process: imports sympy once, then grades (index, prediction, gold) jobs forever.
  It dies with the grading process (a SIGKILLed run leaves no worker busy in sympy). It ignores
  SIGINT: Ctrl-C in a terminal, or a notebook's interrupt, reaches the whole process group, and
  the grading process decides what happens (it closes the pool, or goes on with it in a notebook);
  a worker that died of it would print a traceback and be lost to the next cell."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  lifeline.exit_with_parent()
  if memory_mb:
    import resource
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
  import logging
  logging.getLogger("math_verify").setLevel(logging.ERROR)
  for prediction, gold in _WARM_UP:  # the LaTeX parser's caches and simplify(), before taking jobs
    math_equal(prediction, gold)
  if second_opinion:
    math_verify_equal("1", "1")
  conn.send(("ready",))
  while True:
    try:
      job = conn.recv()
    except EOFError:
      return
    if job is None:
      return
    index, prediction, gold, kind = job
    try:
      correct, rule = kinds.decide(prediction, gold, kind, paper_compat=paper_compat)
      conn.send(("ours", index, bool(correct), "ok", rule))
    except BaseException as e:  # MemoryError, RecursionError from sympy, ...
      conn.send(("ours", index, False, "error", f"{type(e).__name__}: {e}"[:200]))
    if second_opinion:
      try:
        opinion = _second_opinion(prediction, gold, kind, timeout_s)
      except BaseException:
        opinion = None
      conn.send(("math_verify", index, opinion))


_QUEUE_DEPTH = 2  # jobs sent ahead to each worker, so it never waits for this process between jobs


class _Timeout(BaseException):
  """Not an Exception: sympy and the rules catch Exception broadly and must not swallow it."""


@functools.cache
def _warm_up_here() -> None:
  """Imports and caches of the in-process path, outside any timer (as the workers do at start):
  otherwise the first comparison pays the sympy/LaTeX-parser import within its time limit."""
  for prediction, gold in _WARM_UP:
    math_equal(prediction, gold)


def _grade_here(prediction, gold, kind: str, timeout_s: float, second_opinion: bool,
                paper_compat: bool = False) -> tuple[Verdict, bool | None]:
  """The fallback inside a daemonic process (a multiprocessing.Pool worker): grade in this
  process, under SIGALRM where this is the main thread (elsewhere without a time limit)."""
  import signal
  import threading as threading_lib

  def on_alarm(signum, frame):
    raise _Timeout()
  timed = threading_lib.current_thread() is threading_lib.main_thread()
  if timed:
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
  try:
    correct, rule = kinds.decide(prediction, gold, kind, paper_compat=paper_compat)
    verdict = Verdict(bool(correct), "ok", rule)
  except _Timeout:
    verdict = Verdict(False, "timeout", f"no verdict within {timeout_s:g}s")
  except Exception as e:  # noqa: BLE001 -- sympy raises anything on odd input
    verdict = Verdict(False, "error", f"{type(e).__name__}: {e}"[:200])
  finally:
    if timed:
      signal.setitimer(signal.ITIMER_REAL, 0)
      signal.signal(signal.SIGALRM, previous)
  opinion = None
  if second_opinion:
    try:
      opinion = _second_opinion(prediction, gold, kind, timeout_s)
    except Exception:  # noqa: BLE001
      opinion = None
  return verdict, opinion


class _Worker:
  def __init__(self, context, memory_mb, second_opinion, timeout_s, paper_compat):
    self.conn, child = context.Pipe()
    self.process = context.Process(
        target=_worker_main, args=(child, memory_mb, second_opinion, timeout_s, paper_compat), daemon=True)
    self.process.start()
    child.close()
    self.ready = False
    self.jobs = collections.deque()  # indices sent and not finished; jobs[0] is being graded
    self.phase = "ours"              # of jobs[0]: "ours", then "math_verify" with a second opinion
    self.deadline = math.inf         # for jobs[0]

  def kill(self):
    self.process.kill()
    self.process.join(5)
    self.conn.close()


class Grader:
  """A pool of grading processes; every answer gets at most `timeout_s` per check.

    with Grader(workers=2, timeout_s=5.0) as grader:
      verdicts = grader.grade_many([(extracted, gold), ...])

  Answers that rules 1-4 decide are graded in this process (no round trip); the rest go to
  the workers. `second_opinion=True` also runs math-verify on every pair (in the workers).
  Workers are spawned (not forked: the parent may hold jax threads) and start lazily.
  A pair is (prediction, gold) or (prediction, gold, kind), kind as in kinds.py ("math" by
  default). `paper_compat=True` applies DeepSeek-Math's own rules (equivalence.py, ocw.py)
  to reproduce its published numbers; the strict rules are the default.
  """

  def __init__(self, workers: int = 2, timeout_s: float = 5.0, *, second_opinion: bool = False,
               memory_mb: int = 4096, start_method: str = "spawn", paper_compat: bool = False):
    self.num_workers = max(1, workers)
    self.timeout_s = timeout_s
    self.second_opinion = second_opinion
    self.paper_compat = paper_compat
    self.memory_mb = memory_mb
    self._context = multiprocessing.get_context(start_method)
    self._workers: list[_Worker] = []
    self.restarts = 0

  def _start(self) -> _Worker:
    return _Worker(self._context, self.memory_mb, self.second_opinion, self.timeout_s, self.paper_compat)

  def start(self) -> "Grader":
    """Starts every worker and waits until each has warmed up (otherwise the first call does)."""
    while len(self._workers) < self.num_workers:
      self._workers.append(self._start())
    while not all(w.ready for w in self._workers):
      waiting = [w for w in self._workers if not w.ready]
      for worker in waiting:
        if worker.conn in multiprocessing.connection.wait([w.conn for w in waiting], timeout=1.0):
          self._receive(worker, [], [], None, collections.deque())
    return self

  def grade_many(self, pairs, progress: Callable[[int], None] | None = None) -> list[Verdict]:
    """Verdicts for (prediction or None, gold[, kind]) pairs, in order. Never raises for bad answers."""
    pairs = [_split(pair) for pair in pairs]
    results: list[Verdict | None] = [None] * len(pairs)
    opinions: list[bool | None] = [None] * len(pairs)
    pending = collections.deque()
    for i, (prediction, gold, kind) in enumerate(pairs):
      kinds.check_kind(kind)
      if prediction is None:
        no_opinion = self.second_opinion and kind in ("math", "ocw")
        results[i] = Verdict(False, "ok", "no answer", False if no_opinion else None)
        continue
      quick = None if self.second_opinion else kinds.quick_decide(prediction, gold, kind,
                                                                  paper_compat=self.paper_compat)
      if quick is None:
        pending.append(i)
      else:
        results[i] = Verdict(quick[0], "ok", quick[1])
    if progress:
      progress(len(pairs) - len(pending))
    if pending:
      self._run_pool(pairs, pending, results, opinions, progress)
    if self.second_opinion:
      results = [r._replace(math_verify=o) if r.detail != "no answer" else r for r, o in zip(results, opinions)]
    return results

  def _run_pool(self, pairs, pending, results, opinions, progress):
    if multiprocessing.current_process().daemon:  # a daemonic process may not start children
      _warm_up_here()
      for index in pending:
        results[index], opinions[index] = _grade_here(*pairs[index], self.timeout_s, self.second_opinion,
                                                      self.paper_compat)
        if progress:
          progress(1)
      return
    while len(self._workers) < self.num_workers:
      self._workers.append(self._start())
    while pending or any(w.jobs for w in self._workers):
      for worker in self._workers:
        while worker.ready and pending and len(worker.jobs) < _QUEUE_DEPTH:
          index = pending.popleft()
          if not worker.jobs:
            worker.phase, worker.deadline = "ours", time.monotonic() + self.timeout_s
          worker.jobs.append(index)
          worker.conn.send((index, *pairs[index]))
      waiting = [w for w in self._workers if w.jobs or not w.ready]
      deadline = min((w.deadline for w in waiting if w.jobs), default=math.inf)
      wait_s = max(0.0, min(deadline - time.monotonic(), 1.0))
      ready_conns = multiprocessing.connection.wait([w.conn for w in waiting], timeout=wait_s)
      for worker in list(self._workers):
        if worker.conn in ready_conns:
          self._receive(worker, results, opinions, progress, pending)
      now = time.monotonic()
      for worker in list(self._workers):
        if worker.jobs and now > worker.deadline:
          self._fail(worker, results, opinions, progress, pending, "timeout",
                     f"no verdict within {self.timeout_s:g}s")

  def _next_job(self, worker):
    worker.jobs.popleft()
    worker.phase, worker.deadline = "ours", time.monotonic() + self.timeout_s

  def _receive(self, worker, results, opinions, progress, pending):
    try:
      message = worker.conn.recv()
    except (EOFError, OSError):
      code = worker.process.exitcode
      if not worker.jobs:  # died while starting: a broken environment, not a bad answer
        raise RuntimeError(f"grader worker died at start-up (exit code {code})")
      self._fail(worker, results, opinions, progress, pending, "error", f"worker died (exit code {code})")
      return
    if message[0] == "ready":
      worker.ready = True
    elif message[0] == "ours":
      _, index, correct, status, detail = message
      results[index] = Verdict(correct, status, detail)
      if progress:
        progress(1)
      if self.second_opinion:
        worker.phase, worker.deadline = "math_verify", time.monotonic() + self.timeout_s
      else:
        self._next_job(worker)
    elif message[0] == "math_verify":
      opinions[message[1]] = message[2]
      self._next_job(worker)

  def _fail(self, worker, results, opinions, progress, pending, status, detail):
    """Kills a worker that overran or died: its current answer is graded incorrect with `status`
    (or loses only its second opinion); the answers queued behind it go back to `pending`."""
    index = worker.jobs.popleft()
    if worker.phase == "ours":
      results[index] = Verdict(False, status, detail)
      if progress:
        progress(1)
    else:
      opinions[index] = None  # our verdict stands; the second opinion is unknown
    pending.extendleft(reversed(worker.jobs))
    worker.kill()
    self._workers[self._workers.index(worker)] = self._start()
    self.restarts += 1

  def close(self):
    for worker in self._workers:
      try:
        worker.conn.send(None)
      except (OSError, BrokenPipeError):
        pass
      worker.process.join(0.2)
      if worker.process.is_alive():
        worker.process.kill()
    self._workers = []

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def __del__(self):
    try:
      self.close()
    except Exception:
      pass


_DEFAULT: dict[float, Grader] = {}
_DEFAULT_LOCK = threading.Lock()


def is_equiv(prediction: str | None, gold: str, *, timeout_s: float = 5.0) -> bool:
  """Paper-faithful equality of two final answers; sympy work runs under `timeout_s`.

  Rules 1-4 run here; only a pair that needs sympy goes to a shared one-worker pool. To
  grade many answers, use `Grader.grade_many` (parallel, one pool for the whole batch).
  """
  quick = quick_compare(prediction, gold)
  if quick is not None:
    return quick[0]
  with _DEFAULT_LOCK:
    grader = _DEFAULT.get(timeout_s)
    if grader is None:
      grader = _DEFAULT[timeout_s] = Grader(workers=1, timeout_s=timeout_s)
    return grader.grade_many([(prediction, gold)])[0].correct


def grade_output(model_output: str, gold: str, *, mode: str = "auto", timeout_s: float = 5.0) -> bool:
  """Rule-based outcome reward (§4.1): extract the final answer of `model_output`, compare to gold."""
  return is_equiv(answer_lib.extract_answer(model_output, mode=mode), gold, timeout_s=timeout_s)
