"""Ablation sweep: fork one config over a grid of overrides and collect one table.

  python experiments/sweep.py --config=configs/sft.py:tiny --workdir=runs/sweep \
      --grid='optim.lr=1e-3,3e-4' --grid='optim.schedule=constant,cosine'

Runs `python -m dsmath_jax.main` once per point of the grid (the cross product of every
`--grid`), each in WORKDIR/<point name>, then writes WORKDIR/summary.md and summary.csv with
one row per point: the overrides, then the final figures of that run (its summary.json when
the task writes one, else the last record of its metrics.jsonl, plus eval accuracies).
Points already finished (summary present) are not run again, so a sweep resumes.
"""
import argparse
import csv
import itertools
import json
import pathlib
import subprocess
import sys


def grid_points(grids: list[str]) -> list[dict[str, str]]:
  """['a=1,2', 'b=x'] -> [{'a': '1', 'b': 'x'}, {'a': '2', 'b': 'x'}]."""
  axes = []
  for spec in grids:
    if "=" not in spec:
      raise SystemExit(f"--grid {spec!r}: expected key=v1,v2,...")
    key, values = spec.split("=", 1)
    axes.append([(key.strip(), v.strip()) for v in values.split(",") if v.strip()])
  return [dict(point) for point in itertools.product(*axes)] if axes else [{}]


def point_name(point: dict[str, str]) -> str:
  name = "_".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "base"
  return "".join(ch if ch.isalnum() or ch in "=._-" else "-" for ch in name)


def final_figures(run_dir: pathlib.Path) -> dict:
  """The run's figures: summary.json, else the last metrics.jsonl record; eval accuracies added."""
  figures = {}
  summary = run_dir / "summary.json"
  metrics = run_dir / "metrics.jsonl"
  if summary.exists():
    figures.update({k: v for k, v in json.loads(summary.read_text()).items()
                    if isinstance(v, (int, float, str))})
  elif metrics.exists():
    lines = [l for l in metrics.read_text().splitlines() if l.strip()]
    if lines:
      figures.update({k: v for k, v in json.loads(lines[-1]).items() if isinstance(v, (int, float))})
  for eval_summary in sorted(run_dir.glob("eval/*/summary.json")):
    data = json.loads(eval_summary.read_text())
    if "accuracy" in data:
      figures[f"{eval_summary.parent.name}/accuracy"] = data["accuracy"]
  return figures


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--grid", action="append", default=[], help="key=v1,v2 (repeatable)")
  parser.add_argument("--dry_run", action="store_true", help="print the commands only")
  args = parser.parse_args(argv)

  root = pathlib.Path(args.workdir)
  rows = []
  for point in grid_points(args.grid):
    run_dir = root / point_name(point)
    command = [sys.executable, "-m", "dsmath_jax.main", f"--config={args.config}",
               f"--workdir={run_dir}"] + [f"--config.{k}={v}" for k, v in point.items()]
    print(" ".join(command), flush=True)
    if args.dry_run:
      continue
    status = "done"
    if not final_figures(run_dir):
      run_dir.mkdir(parents=True, exist_ok=True)
      with open(run_dir / "sweep.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
      status = "ok" if result.returncode == 0 else f"failed ({result.returncode}, see {run_dir}/sweep.log)"
    rows.append({"run": point_name(point), **point, "status": status, **final_figures(run_dir)})
  if args.dry_run:
    return 0

  columns = list(dict.fromkeys(k for row in rows for k in row))
  root.mkdir(parents=True, exist_ok=True)
  with open(root / "summary.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
  table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  table += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
  (root / "summary.md").write_text("\n".join(table) + "\n")
  print("\n".join(table))
  return 0 if all(r["status"] in ("ok", "done") for r in rows) else 1


if __name__ == "__main__":
  sys.exit(main())
