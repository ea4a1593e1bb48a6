"""What the evaluation of one benchmark leaves on disk (or in a gs:// bucket: dsmath_jax.paths):
samples.jsonl (every sample: prompt, output, extracted answer, verdict), summary.json, report.md,
accuracy_vs_k.png."""
import json
import os

from dsmath_jax import atomic, paths


def _pct(value) -> str:
  return "-" if value is None else f"{value:.1f}"


def _accuracy_kind(summary: dict) -> str:
  if summary.get("run", {}).get("sampling", {}).get("greedy"):
    return "greedy"
  return "one sample per question" if summary["samples_per_question"] == 1 else "mean over samples"


def markdown(summary: dict) -> str:
  """report.md: the headline numbers, breakdowns, and everything the grader could not vouch for."""
  run = summary.get("run", {})
  lines = [f"# Evaluation: {run.get('benchmark', '?')}", ""]
  for key in ("mode", "checkpoint", "predictions", "source", "answer_kind", "rules", "prompt", "sampling"):
    if run.get(key) not in (None, "", {}):
      lines.append(f"- {key}: `{run[key]}`")
  lines += ["", f"{summary['questions']} questions graded ({summary['questions_without_outputs']} of "
            f"{summary['questions_in_benchmark']} without outputs), {summary['samples']} samples, "
            f"{summary['samples_per_question']} per question; {summary['no_answer_samples']} samples with "
            "no extractable answer.", "",
            "| metric | value (%) |", "|---|---|",
            f"| accuracy ({_accuracy_kind(summary)}) | {_pct(summary['accuracy'])} ± "
            f"{_pct(summary.get('accuracy_stderr'))} (s.e.) |"]
  if "program_accuracy" in summary:
    lines.append(f"| program accuracy (last program output) | {_pct(summary['program_accuracy'])} |")
  for k, value in summary["maj@k"].items():
    if summary["samples_per_question"] > 1:
      lines.append(f"| maj@{k}{' (first sample)' if k == '1' else ''} | {_pct(value)} |")
  for k, value in summary["pass@k"].items():
    if k != "1":
      lines.append(f"| pass@{k} | {_pct(value)} |")
  for key, title in (("by_subject", "subject"), ("by_level", "level")):
    if key in summary:
      lines += ["", f"## By {title}", "", f"| {title} | questions | accuracy (%) |", "|---|---|---|"]
      lines += [f"| {name} | {v['questions']} | {_pct(v['accuracy'])} |" for name, v in summary[key].items()]
  grader = summary["grader"]
  lines += ["", "## Grader", "",
            f"{grader['timeouts']} comparisons timed out (> {grader['timeout_s']} s) and {grader['errors']} "
            "failed; both count as incorrect. Deciding rules: "
            + ", ".join(f"{rule} {n}" for rule, n in sorted(grader["rules"].items())) + "."]
  if grader["failed"]:
    lines += ["", "| id | sample | status | extracted | gold |", "|---|---|---|---|---|"]
    lines += [f"| {r['id']} | {r['sample']} | {r['status']} | `{r['extracted']}` | `{r['gold']}` |"
              for r in grader["failed"]]
  if "math_verify" in summary:
    mv = summary["math_verify"]
    lines += ["", "## Second opinion (math-verify)", "",
              f"Agreement {_pct(mv['agreement'])}% on {mv['judged']} answers; correct only for us: "
              f"{mv['ours_only']}, only for math-verify: {mv['math_verify_only']}."]
    if mv["disagreements"]:
      lines += ["", "| id | sample | extracted | gold | ours | math-verify |", "|---|---|---|---|---|---|"]
      lines += [f"| {r['id']} | {r['sample']} | `{r['extracted']}` | `{r['gold']}` | {r['ours']} | "
                f"{r['math_verify']} |" for r in mv["disagreements"]]
  bad = summary.get("bad_lines", [])
  if bad:
    lines += ["", f"## Bad prediction lines ({len(bad)}, skipped)", ""]
    lines += [f"- line {b['line']}: {b['error']}" for b in bad[:200]]
  return "\n".join(lines) + "\n"


def plot_accuracy_vs_k(summary: dict, png_path: str) -> None:
  """maj@k and pass@k against k (log2 axis), as in the paper's Figure 7."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  figure, axes = plt.subplots(figsize=(5, 3.5), dpi=120)
  for key, marker in (("pass@k", "o"), ("maj@k", "s")):
    ks = [int(k) for k in summary[key]]
    axes.plot(ks, [summary[key][str(k)] for k in ks], marker=marker, label=key.replace("@k", "@K"))
  if summary["pass@k"] and max(int(k) for k in summary["pass@k"]) > 1:
    axes.set_xscale("log", base=2)
    ks = [int(k) for k in summary["pass@k"]]
    axes.set_xticks(ks, [str(k) for k in ks])
  axes.set_xlabel("K (samples per question)")
  axes.set_ylabel("accuracy (%)")
  axes.set_title(summary.get("run", {}).get("benchmark", ""))
  axes.grid(alpha=0.3)
  axes.legend()
  figure.tight_layout()
  figure.savefig(png_path)
  plt.close(figure)


def write(out_dir: str, rows: list[dict], summary: dict) -> dict:
  """Writes the four files; returns their paths. They are written into a staging folder that
  replaces out_dir only when all four are complete (atomic.directory): a run that fails while
  writing leaves the previous results whole, never new samples beside an old summary. In an object
  store, where a folder cannot be swapped, summary.json is uploaded last (atomic.replace_dir): a
  folder without it is an evaluation cut short."""
  names = ("samples.jsonl", "summary.json", "report.md", "accuracy_vs_k.png")
  with atomic.directory(out_dir, marker="summary.json") as staging:
    with open(os.path.join(staging, "samples.jsonl"), "w", encoding="utf-8") as f:
      for row in rows:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(os.path.join(staging, "summary.json"), "w", encoding="utf-8") as f:
      json.dump(summary, f, indent=1, ensure_ascii=False)
    with open(os.path.join(staging, "report.md"), "w", encoding="utf-8") as f:
      f.write(markdown(summary))
    plot_accuracy_vs_k(summary, os.path.join(staging, "accuracy_vs_k.png"))
  return {name: paths.join(out_dir, name) for name in names}
