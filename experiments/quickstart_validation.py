"""Choose the quickstart's GRPO settings on a validation split, never on the held-out test problems.

  python experiments/quickstart_validation.py --base=runs/quickstart --out=runs/qs_valid \
      --name=lr5e-4 -- --config.grpo.optim.lr=5e-4

From a finished quickstart WORKDIR (`--base`, read only), the validation split is the last
`--valid` problems of its rl.jsonl (same templates and numbers as training, the training
distribution); GRPO trains on the other rl problems. Each point is a quickstart run in OUT/NAME
whose problems, corpus, tokenizer, pretrain and sft stages are links to the base run's, so only
grpo and the two greedy evals run, and both evals read the validation split: OUT/NAME/summary.json's
`greedy_accuracy` is the validation gain of that setting. The test split is not read (unless
`--split=test`, below).
Extra arguments after `--` are quickstart overrides (`--config.grpo.seed=1`). A finished point
(summary present) is not run again. OUT/validation.md collects every point.

`--split=test` is for reporting once the settings are chosen, never for choosing them: GRPO then
trains on all the base run's rl problems and both evals read its held-out test problems, i.e. the
quickstart's own grpo and eval stages run again with the overrides (e.g. other GRPO seeds).
"""
import argparse
import json
import os
import subprocess
import sys

SHARED_STAGES = ("problems", "corpus", "tokenizer", "pretrain", "sft")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_split(base: str, out: str, valid: int) -> tuple[str, str]:
  """OUT/split/{rl_train,valid}.jsonl: the base run's rl problems, the last `valid` held out."""
  directory = os.path.join(out, "split")
  train_path, valid_path = os.path.join(directory, "rl_train.jsonl"), os.path.join(directory, "valid.jsonl")
  if not os.path.isfile(valid_path):
    with open(os.path.join(base, "problems", "rl.jsonl")) as f:
      lines = [line for line in f if line.strip()]
    if valid >= len(lines):
      raise SystemExit(f"--valid={valid}: {base}/problems/rl.jsonl has only {len(lines)} problems")
    os.makedirs(directory, exist_ok=True)
    with open(train_path, "w") as f:
      f.writelines(lines[:-valid])
    with open(valid_path, "w") as f:
      f.writelines(lines[-valid:])
  return train_path, valid_path


def run_point(base: str, out: str, name: str, overrides: list[str], valid: int, split: str = "valid") -> dict:
  if split == "valid":
    train_path, eval_path = write_split(base, out, valid)
  else:                                    # the quickstart's own rl and held-out test problems
    train_path, eval_path = (os.path.join(base, "problems", f"{s}.jsonl") for s in ("rl", "test"))
  workdir = os.path.join(out, name)
  summary_path = os.path.join(workdir, "summary.json")
  if not os.path.isfile(summary_path):
    os.makedirs(workdir, exist_ok=True)
    for stage in SHARED_STAGES:
      link = os.path.join(workdir, stage)
      if not os.path.lexists(link):
        os.symlink(os.path.abspath(os.path.join(base, stage)), link)
    command = [sys.executable, "-m", "dsmath_jax.main", "--config=configs/quickstart.py", f"--workdir={workdir}",
               f"--config.grpo.data.questions=jsonl:{os.path.abspath(train_path)}",
               f"--config.eval_sft.data.paths.jsonl={os.path.abspath(eval_path)}",
               f"--config.eval_grpo.data.paths.jsonl={os.path.abspath(eval_path)}", *overrides]
    with open(os.path.join(out, f"{name}.log"), "w") as log:
      subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
  with open(summary_path) as f:
    summary = json.load(f)
  return dict(name=name, overrides=" ".join(overrides), **summary["greedy_accuracy"],
              reward=summary["grpo"]["reward"], grpo_cpu_seconds=summary["cpu_seconds"]["grpo"])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--base", required=True, help="a finished quickstart WORKDIR (read only)")
  parser.add_argument("--out", required=True)
  parser.add_argument("--name", required=True)
  parser.add_argument("--valid", type=int, default=200, help="rl problems held out for validation")
  parser.add_argument("--split", choices=("valid", "test"), default="valid",
                      help="valid: choose settings; test: report chosen settings on the held-out problems")
  args, overrides = parser.parse_known_args()
  overrides = [o for o in overrides if o != "--"]
  row = run_point(args.base, args.out, args.name, overrides, args.valid, args.split)
  rows_path = os.path.join(args.out, "validation.jsonl")
  rows = []
  if os.path.isfile(rows_path):
    with open(rows_path) as f:
      rows = [r for r in map(json.loads, f) if r["name"] != row["name"]]
  rows.append(row)
  with open(rows_path, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  lines = [f"| point | overrides | {args.split} greedy before -> after | gain | reward first -> last | grpo CPU s |",
           "|---|---|---|---|---|---|"]
  lines += [f"| {r['name']} | `{r['overrides']}` | {r['before_grpo']:.1f}% -> {r['after_grpo']:.1f}% | "
            f"{r['gain_points']:+.1f} | {r['reward']['first']:.3f} -> {r['reward']['last']:.3f} | "
            f"{r['grpo_cpu_seconds']:.0f} |" for r in rows]
  with open(os.path.join(args.out, "validation.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
