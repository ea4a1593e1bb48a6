"""Running the programs of program-of-thought and tool-integrated SFT records.

Paper §3.1 trains on program-of-thought and tool-integrated solutions; a record is only
worth training on if its code really produces what the text says. Programs run in the
sandbox (dsmath_jax/sandbox/sandbox.py), the same executor the tool-integrated sampler
uses, so "the output a record shows" means the same thing at SFT, RL and evaluation.
"""
from dsmath_jax.sandbox import sandbox, tool_protocol


def run_programs(codes: list[str], *, timeout_s: float = 30.0, workers: int = 2,
                 memory_mb: int = 1024) -> list[sandbox.ExecResult]:
  """One sandbox.ExecResult per program, in order (status ok|error|timeout|..., stdout, error)."""
  if not codes:
    return []
  with sandbox.Sandbox(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb) as box:
    return box.run_many(codes)


def output_text(result: sandbox.ExecResult) -> str:
  """The inside of the ```output block the tool loop shows for `result` (tool_protocol.format_output:
  stdout, else the error line, long text cut to its first and last 50 characters)."""
  block = tool_protocol.format_output(result)
  return block[len(tool_protocol.STOP) + 1:-len("\n```\n")]


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
