"""Running the programs of program-of-thought and tool-integrated SFT records.

Paper §3.1 trains on program-of-thought and tool-integrated solutions; a record is only
worth training on if its code really produces what the text says. Programs run in the
sandbox (dsmath_jax/sample/sandbox.py), the same executor the tool-integrated sampler
uses, so "the output a record shows" means the same thing at SFT, RL and evaluation.
"""
import collections
import concurrent.futures
import subprocess
import sys
import time

ExecResult = collections.namedtuple("ExecResult", "status stdout error seconds")


def run_programs(codes: list[str], *, timeout_s: float = 10.0, workers: int = 2,
                 memory_mb: int = 1024) -> list:
  """ExecResults (sandbox contract: status ok|error|timeout|..., stdout, error, seconds)."""
  if not codes:
    return []
  try:
    from dsmath_jax.sample import sandbox
  except ImportError:  # the sandbox has not landed in this checkout: plain subprocesses
    return _run_subprocesses(codes, timeout_s, workers)
  with sandbox.Sandbox(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb) as box:
    return box.run_many(codes)


def output_text(result) -> str:
  """What a ```output block shows: stdout, or the last line of the error (tool_protocol)."""
  if result.status == "ok":
    return result.stdout.strip()
  lines = [line for line in (result.error or result.status).strip().split("\n") if line.strip()]
  return lines[-1].strip() if lines else result.status


def _run_one(code, timeout_s):
  start = time.time()
  try:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout_s, cwd="/tmp")
  except subprocess.TimeoutExpired:
    return ExecResult("timeout", "", f"TimeoutError: over {timeout_s}s", time.time() - start)
  status = "ok" if done.returncode == 0 else "error"
  return ExecResult(status, done.stdout, done.stderr, time.time() - start)


def _run_subprocesses(codes, timeout_s, workers):
  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    return list(pool.map(lambda code: _run_one(code, timeout_s), codes))


def as_number(text) -> float | None:
  """float of '51', '51.0', '1,200', '3/4' or a number; None when it is not one."""
  if isinstance(text, (int, float)) and not isinstance(text, bool):
    return float(text)
  text = str(text).strip().replace(",", "").rstrip(".")
  try:
    if "/" in text:
      numerator, denominator = text.split("/")
      return float(numerator) / float(denominator)
    return float(text)
  except (ValueError, ZeroDivisionError):
    return None


def same_number(a, b, tol: float = 1e-4) -> bool:
  """|a - b| < tol (the PoT paper's check), both parsed with `as_number`."""
  x, y = as_number(a), as_number(b)
  return x is not None and y is not None and abs(x - y) < tol


def format_number(value: float) -> str:
  """51.0 -> '51', 0.5 -> '0.5': how a boxed numeric answer is written."""
  value = float(value)
  return str(int(round(value))) if abs(value - round(value)) < 1e-9 else f"{value:.6g}"
