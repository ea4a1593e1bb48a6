"""Every table and plot of this experiment, from the per-seed JSON files the runs wrote.

  python experiments/grpo_arithmetic/report.py RESULTS_DIR

RESULTS_DIR holds seed_S.json (run.py), section5_seed_S.json (section5.py), figure5_seed_S.json
(figure5.py) and maj_pass.json (maj_pass.py); whichever exist are reported. Writes
RESULTS_DIR/results.md and RESULTS_DIR/{grpo,supervision,iterative,figure5,maj_pass}.png: each seed,
and mean ± sample standard deviation over seeds. No number in these files is typed by hand.
"""
import glob
import json
import os
import sys

import numpy as np


def _load(pattern: str) -> list[dict]:
  return [json.load(open(p)) for p in sorted(glob.glob(pattern))]


def mean_std(values) -> str:
  values = np.asarray(values, np.float64)
  spread = values.std(ddof=1) if len(values) > 1 else 0.0
  return f"{values.mean():.1f} ± {spread:.1f}"


def _curve_array(curves):
  """[(step, value)] lists of several seeds -> (steps, [seeds, points]) on the steps they share."""
  steps = sorted(set.intersection(*(set(s for s, _ in c) for c in curves)))
  return steps, np.array([[dict(map(tuple, c))[s] for s in steps] for c in curves])


def _plot_curves(ax, named_curves: dict, title: str):
  """One colour per arm: thin lines per seed, a thick line for the mean."""
  for color, (name, curves) in zip(("C0", "C1", "C2", "C3"), named_curves.items()):
    steps, values = _curve_array(curves)
    for row in values:
      ax.plot(steps, row, color=color, alpha=0.3, lw=1)
    ax.plot(steps, values.mean(0), color=color, lw=2.5, marker="o", ms=3,
            label=f"{name} (mean of {len(curves)} seeds)")
  ax.set_xlabel("GRPO step")
  ax.set_ylabel("held-out greedy accuracy (%)")
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)


def _context(records: list[dict]) -> str:
  loads = [r.get("load_average_after_rl") or r.get("load_average_after") for r in records]
  overlap = records[0]["overlap"]
  return (f"{overlap['test_problems']} held-out problems; overlap with training (same template and numbers / "
          f"same template / same numbers): {overlap['same_template_and_numbers']} / {overlap['same_template']} / "
          f"{overlap['same_numbers']}; {overlap['distinct_train_problems']} distinct training problems. "
          f"Machine: {records[0]['cpu_count']} CPU cores, 1-minute load average after each seed "
          + ", ".join(f"{l[0]:.1f}" for l in loads) + ".")


def main_section(records: list[dict], out_dir: str) -> list[str]:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  seeds = [r["seed"] for r in records]
  k = max(int(key.split("@")[1]) for key in records[0]["after"] if key.startswith("pass@"))
  metrics = ["greedy_accuracy", f"maj@{k}", f"pass@{k}"]
  lines = [f"## GRPO with the grader's reward ({records[0]['rl_steps']} steps per seed, one shared SFT model)", "",
           _context(records), "",
           "| held-out (%) | after SFT | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std | gain (mean ± std) |",
           "|---" * (4 + len(seeds)) + "|"]
  for name in metrics:
    before = records[0]["before"][name]
    after = [r["after"][name] for r in records]
    lines.append(f"| {name} | {before:.1f} | " + " | ".join(f"{a:.1f}" for a in after)
                 + f" | {mean_std(after)} | {mean_std([a - before for a in after])} |")
  seconds = ", ".join(f"{r['rl_seconds'] / 60:.0f}" for r in records)
  lines += ["", f"GRPO minutes per seed (with the greedy evaluations, on this shared machine): {seconds}.", "",
            "Greedy accuracy during GRPO:", "",
            "| step | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |", "|---" * (2 + len(seeds)) + "|"]
  steps, values = _curve_array([r["greedy_curve"] for r in records])
  for i, step in enumerate(steps):
    lines.append(f"| {step} | " + " | ".join(f"{v:.1f}" for v in values[:, i]) + f" | {mean_std(values[:, i])} |")
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
  x = np.arange(len(metrics))
  left.bar(x - 0.2, [records[0]["before"][m] for m in metrics], 0.4, label="after SFT")
  means = [np.mean([r["after"][m] for r in records]) for m in metrics]
  left.bar(x + 0.2, means, 0.4, label=f"after GRPO (mean of {len(records)} seeds)")
  for i, m in enumerate(metrics):
    left.scatter([i + 0.2] * len(records), [r["after"][m] for r in records], color="k", s=10, zorder=3)
  left.set_xticks(x, metrics)
  left.set_ylabel("held-out accuracy (%)")
  left.set_ylim(0, 105)
  left.legend(fontsize=8)
  left.set_title(f"{records[0]['eval_questions']} held-out problems (dots: seeds)", fontsize=10)
  _plot_curves(right, {"grader reward": [r["greedy_curve"] for r in records]}, "held-out greedy accuracy")
  fig.tight_layout()
  fig.savefig(os.path.join(out_dir, "grpo.png"), dpi=110)
  plt.close(fig)
  return lines + ["", "![GRPO](grpo.png)", ""]


def _final_rows(records, arms) -> list[str]:
  seeds = [r["seed"] for r in records]
  rows = ["| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |", "|---" * (2 + len(seeds)) + "|"]
  for arm in arms:
    finals = [r["curves"][arm][-1][1] for r in records]
    rows.append(f"| {arm} | " + " | ".join(f"{v:.1f}" for v in finals) + f" | {mean_std(finals)} |")
  return rows


def section5_sections(records: list[dict], main_records: list[dict], out_dir: str) -> list[str]:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  steps, start = records[0]["rl_steps"], records[0]["curves"]["outcome"][0][1]
  lines = [f"## Outcome vs process supervision (paper Figure 5; {steps} GRPO steps per arm and seed)", "",
           _context(records), f" Held-out greedy accuracy of the SFT model: {start:.1f}%. Final greedy accuracy:", ""]
  lines += _final_rows(records, ("outcome", "process"))
  named = {"outcome supervision (ORM)": [r["curves"]["outcome"] for r in records],
           "process supervision (PRM)": [r["curves"]["process"] for r in records]}
  fig, ax = plt.subplots(figsize=(6, 4))
  _plot_curves(ax, named, "GRPO: outcome vs process reward model")
  fig.tight_layout()
  fig.savefig(os.path.join(out_dir, "supervision.png"), dpi=110)
  plt.close(fig)
  lines += ["", "![supervision](supervision.png)", "",
            f"## One vs two rounds of iterative RL (paper Figure 6; round 2 from step {records[0]['round2_start']})", "",
            "Process supervision; round 2 labels the policy's own samples (Math-Shepherd), trains the PRM further "
            "on them + 10% replay of round 1's examples and resets the reference to the policy. Final greedy "
            "accuracy at the same total step count:", ""]
  lines += _final_rows(records, ("process", "two_rounds"))
  lines += ["", "| seed | round-2 examples (new + replayed) | round-2 PRM train accuracy (last batch) |", "|---|---|---|"]
  for r in records:
    rm = r["reward_model_round2"]
    lines.append(f"| {r['seed']} | {rm['new_examples']} + {rm['replayed_examples']} | "
                 f"{rm['last_train_metrics'].get('accuracy', float('nan')):.3f} |")
  fig, ax = plt.subplots(figsize=(6, 4))
  _plot_curves(ax, {"one round": [r["curves"]["process"] for r in records],
                    "two rounds": [r["curves"]["two_rounds"] for r in records]}, "iterative RL (process RM)")
  ax.axvline(records[0]["round2_start"], color="gray", ls="--", lw=1)
  fig.tight_layout()
  fig.savefig(os.path.join(out_dir, "iterative.png"), dpi=110)
  plt.close(fig)
  return lines + ["", "![iterative](iterative.png)", ""]


# Figure 5's methods in the paper's order, as it names them: figure5.py's arms, then section5.py's
# GRPO arms (outcome / process reward model). An arm the config adds is shown under its own name.
FIGURE5_LABELS = {"rft": "RFT", "online_rft": "Online RFT", "dpo": "DPO", "ppo": "PPO",
                  "outcome": "GRPO+OS", "process": "GRPO+PS"}


def _section5_curves(records: list[dict], section5: list[dict]) -> tuple[dict, str]:
  """({arm: [curve per seed]} of section5.py's outcome and process arms, a sentence saying where the
  curves come from): used only when section5.py ran every seed of figure5.py with the same step
  budget and the same evaluation steps (eval_every), else left out saying why."""
  by_seed = {r["seed"]: r for r in section5}
  seeds = [r["seed"] for r in records]
  missing = [s for s in seeds if s not in by_seed]
  if missing:
    return {}, (f"GRPO+OS and GRPO+PS (section5.py's outcome / process arms) are left out: no "
                f"section5_seed_S.json for seed(s) {missing}; run section5.py with the same config values.")
  steps = [p[0] for p in records[0]["curves"][next(iter(records[0]["curves"]))]]
  for seed in seeds:
    other = by_seed[seed]
    other_steps = [p[0] for p in other["curves"]["outcome"]]
    if other["rl_steps"] != records[0]["rl_steps"] or other_steps != steps:
      return {}, (f"GRPO+OS and GRPO+PS are left out: section5_seed_{seed}.json has {other['rl_steps']} steps "
                  f"evaluated at {other_steps}, figure5.py {records[0]['rl_steps']} steps at {steps}.")
  return ({arm: [by_seed[s]["curves"][arm] for s in seeds] for arm in ("outcome", "process")},
          "GRPO+OS and GRPO+PS are section5.py's outcome / process arms (GRPO with an outcome / process "
          "reward model; section5_seed_S.json), same seeds, steps and evaluation steps.")


def figure5_section(records: list[dict], section5: list[dict], out_dir: str) -> list[str]:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  arms = [a for a in FIGURE5_LABELS if a in records[0]["curves"]] + \
      sorted(a for a in records[0]["curves"] if a not in FIGURE5_LABELS)
  named = {arm: [r["curves"][arm] for r in records] for arm in arms}
  grpo_curves, grpo_note = _section5_curves(records, section5)
  named.update(grpo_curves)
  seeds = [r["seed"] for r in records]
  start = records[0]["curves"][arms[0]][0][1]
  lines = [f"## RL methods compared (paper Figure 5; {records[0]['rl_steps']} steps per method and seed, "
           f"seeds {seeds})", "",
           _context(records) + f" Held-out greedy accuracy of the SFT model every method starts from: {start:.1f}%.",
           "", "Methods (configs/grpo_arithmetic_figure5.py; figure5_seed_S.json records each one's resolved rl and "
           "optim settings): RFT (offline samples of the SFT model, GC 1 on correct outputs), Online RFT (the same "
           "on the policy's samples), DPO (best/worst pairs of the policy's graded samples), PPO (GAE over a value "
           "model), all with the rule-based grader's reward. " + grpo_note, "",
           "Held-out greedy accuracy (%), mean ± std over seeds:", "",
           "| step | " + " | ".join(FIGURE5_LABELS.get(a, a) for a in named) + " |", "|---" * (1 + len(named)) + "|"]
  arrays = {arm: _curve_array(curves) for arm, curves in named.items()}
  steps = arrays[arms[0]][0]
  for i, step in enumerate(steps):
    lines.append(f"| {step} | " + " | ".join(mean_std(values[:, i]) for _, values in arrays.values()) + " |")
  minutes = {arm: [r["rl_seconds"][arm] / 60 for r in records] for arm in arms}
  lines += ["", "Minutes per seed (with the greedy evaluations, on this shared machine): "
            + "; ".join(f"{FIGURE5_LABELS.get(a, a)} " + ", ".join(f"{m:.1f}" for m in minutes[a]) for a in arms) + "."]
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for i, (arm, (steps, values)) in enumerate(arrays.items()):
    mean, spread = values.mean(0), values.std(0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
    ax.plot(steps, mean, color=f"C{i}", lw=2, marker="o", ms=3, label=FIGURE5_LABELS.get(arm, arm))
    ax.fill_between(steps, mean - spread, mean + spread, color=f"C{i}", alpha=0.15, lw=0)
  ax.set_xlabel("RL step")
  ax.set_ylabel("held-out greedy accuracy (%)")
  ax.set_title(f"RL methods from one SFT model (mean ± std over {len(records)} seeds)", fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out_dir, "figure5.png"), dpi=110)
  plt.close(fig)
  return lines + ["", "![figure 5](figure5.png)", ""]


def maj_pass_section(record: dict, out_dir: str) -> list[str]:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rl_names = sorted(n for n in record if n.startswith("rl_seed_"))
  ks = sorted(int(key.split("@")[1]) for key in record["sft"] if key.startswith("pass@"))
  lines = [f"## maj@k and pass@k, SFT vs RL (paper Figure 7; {record['questions']} held-out problems, "
           f"{record['k']} samples at temperature {record['temperature']}, RL = {len(rl_names)} seeds x "
           f"{record['rl_steps']} GRPO steps)", "",
           "| k | maj@k SFT | maj@k RL (mean ± std) | pass@k SFT | pass@k RL (mean ± std) |", "|---|---|---|---|---|"]
  for k in ks:
    lines.append(f"| {k} | {record['sft'][f'maj@{k}']:.1f} | {mean_std([record[n][f'maj@{k}'] for n in rl_names])} | "
                 f"{record['sft'][f'pass@{k}']:.1f} | {mean_std([record[n][f'pass@{k}'] for n in rl_names])} |")
  lines += ["", "Per seed (RL, k = " + str(ks[-1]) + "): "
            + "; ".join(f"{n}: maj {record[n][f'maj@{ks[-1]}']:.1f}, pass {record[n][f'pass@{ks[-1]}']:.1f}"
                        for n in rl_names) + "."]
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for ax, metric in zip(axes, ("maj", "pass")):
    ax.plot(ks, [record["sft"][f"{metric}@{k}"] for k in ks], marker="o", label="SFT", color="C0")
    values = np.array([[record[n][f"{metric}@{k}"] for k in ks] for n in rl_names])
    for row in values:
      ax.plot(ks, row, color="C1", alpha=0.3)
    ax.plot(ks, values.mean(0), marker="o", color="C1", lw=2, label=f"RL (mean of {len(rl_names)} seeds)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(f"{metric}@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out_dir, "maj_pass.png"), dpi=110)
  plt.close(fig)
  return lines + ["", "![maj and pass](maj_pass.png)", ""]


def main(out_dir: str) -> str:
  main_records = _load(os.path.join(out_dir, "seed_*.json"))
  section5 = _load(os.path.join(out_dir, "section5_seed_*.json"))
  figure5 = _load(os.path.join(out_dir, "figure5_seed_*.json"))
  lines = ["# GRPO on arithmetic word problems: results", "",
           "Written by experiments/grpo_arithmetic/report.py from the JSON files beside it; "
           "± is the sample standard deviation over RL seeds.", ""]
  if main_records:
    lines += main_section(main_records, out_dir)
  if section5:
    lines += section5_sections(section5, main_records, out_dir)
  if figure5:
    lines += figure5_section(figure5, section5, out_dir)
  if os.path.isfile(os.path.join(out_dir, "maj_pass.json")):
    lines += maj_pass_section(json.load(open(os.path.join(out_dir, "maj_pass.json"))), out_dir)
  text = "\n".join(lines)
  with open(os.path.join(out_dir, "results.md"), "w") as f:
    f.write(text)
  return text


if __name__ == "__main__":
  if len(sys.argv) != 2:
    raise SystemExit("usage: report.py RESULTS_DIR")
  print(main(sys.argv[1]))
