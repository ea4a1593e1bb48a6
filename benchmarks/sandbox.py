"""Programs/s of the sandbox pool against running programs one at a time, same programs, same run.

  python benchmarks/sandbox.py [--workers 2] [--repeat 2] [--cold 8] [--data ../shared/data]

Workload: the last program of each ToRA trajectory in shared/data/tora/examples.jsonl (real
model-written sympy programs), except math-train-4251-0 (~8 s of symbolic logs), `--repeat`
times; plus a trivial `print(1)` for the per-program overhead. Three ways to run them:
  cold     a fresh `python -c` per program, one at a time (what a naive sandbox does: every
           program pays for the interpreter and its sympy import);
  warm x1  Sandbox(workers=1): one warm worker, one fork per program, one at a time;
  pool xW  Sandbox(workers=W).run_many: W warm workers at once.
Then all 25 ToRA programs are re-run (timeout 60 s) and compared with their recorded outputs.
The warm modes run under the sandbox's full isolation (the start-up line names it; the JSON has
it as "isolation"): per-program namespaces cost a few ms of the warm figures, not the cold ones.
Prints one line per mode and a final JSON line with the figures and ratios.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from dsmath_jax.sandbox.sandbox import Sandbox  # noqa: E402
from dsmath_jax.sandbox.tool_protocol import STOP, format_output, last_program  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
SLOW = "math-train-4251-0"


def tora_programs(data: str) -> list[tuple[str, str, str]]:
  """(id, last program, recorded output) for every trajectory that runs a program."""
  found = []
  for line in open(os.path.join(data, "tora", "examples.jsonl")):
    record = json.loads(line)
    text = record["messages"][-1]["content"]
    if STOP in text:
      before, after = text.rsplit(STOP, 1)
      found.append((record["id"], last_program(before), after[1:].split("```")[0].strip()))
  return found


def cold(codes: list[str], timeout_s: float) -> float:
  start = time.perf_counter()
  with tempfile.TemporaryDirectory() as workdir:
    for code in codes:
      subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, timeout=timeout_s,
                     env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"})
  return len(codes) / (time.perf_counter() - start)


def warm(sandbox: Sandbox, codes: list[str], pooled: bool) -> float:
  start = time.perf_counter()
  results = sandbox.run_many(codes) if pooled else [sandbox.run(code) for code in codes]
  assert all(r.status in ("ok", "error") for r in results), {r.status for r in results}
  return len(codes) / (time.perf_counter() - start)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--workers", type=int, default=os.cpu_count())
  parser.add_argument("--repeat", type=int, default=2)
  parser.add_argument("--cold", type=int, default=8, help="programs run cold (each ~1-2 s)")
  parser.add_argument("--data", default=DATA, help="the shared data folder (holds tora/)")
  args = parser.parse_args()
  programs = tora_programs(args.data)
  tora = [code for name, code, _ in programs if name != SLOW] * args.repeat
  trivial = ["print(1)"] * (10 * args.workers)
  figures = {"workers": args.workers, "programs": len(tora), "cpu_count": os.cpu_count()}

  figures["cold_tora"] = cold(tora[:args.cold], 60.0)
  figures["cold_trivial"] = cold(trivial[:args.cold], 60.0)
  start = time.perf_counter()
  with Sandbox(workers=1) as one:
    figures["worker_start_s"] = time.perf_counter() - start  # interpreter + sympy/numpy imports
    warm(one, trivial[:2], pooled=False)
    figures["warm1_tora"] = warm(one, tora, pooled=False)
    figures["warm1_trivial"] = warm(one, trivial, pooled=False)
  with Sandbox(workers=args.workers) as pool:
    figures["isolation"] = pool.layers["isolation"]
    warm(pool, trivial[:args.workers], pooled=True)
    figures["pool_tora"] = warm(pool, tora, pooled=True)
    figures["pool_trivial"] = warm(pool, trivial, pooled=True)
    results = pool.run_many([code for _, code, _ in programs], timeout_s=60.0)
  matches = [name for (name, _, output), result in zip(programs, results)
             if format_output(result, max_chars=None) == f"{STOP}\n{output}\n```\n"]
  figures["tora_match"] = f"{len(matches)}/{len(programs)}"
  figures["tora_mismatch"] = sorted({name for name, _, _ in programs} - set(matches))

  for kind in ("tora", "trivial"):
    print(f"{kind:8s} programs/s: cold {figures[f'cold_{kind}']:7.2f}"
          f" | warm x1 {figures[f'warm1_{kind}']:7.2f}"
          f" | pool x{args.workers} {figures[f'pool_{kind}']:7.2f}"
          f"  (pool/cold {figures[f'pool_{kind}'] / figures[f'cold_{kind}']:.1f}x,"
          f" pool/warm1 {figures[f'pool_{kind}'] / figures[f'warm1_{kind}']:.2f}x)")
    figures[f"pool_over_cold_{kind}"] = figures[f"pool_{kind}"] / figures[f"cold_{kind}"]
    figures[f"pool_over_warm1_{kind}"] = figures[f"pool_{kind}"] / figures[f"warm1_{kind}"]
  print(f"one warm worker starts in {figures['worker_start_s']:.2f} s (what every cold program pays)")
  print(f"ToRA outputs reproduced: {figures['tora_match']} (mismatch: {figures['tora_mismatch']})")
  print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
  main()
