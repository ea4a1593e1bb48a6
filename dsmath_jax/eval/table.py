"""The table across benchmarks, as the paper's Tables 2, 3 and 5 show it: WORKDIR/eval/summary.{md,json,png}.

One row per benchmark: questions graded, accuracy ± its standard error, maj@k / pass@k when
several samples were drawn, and the accuracy DeepSeek-Math published for the same prompt
style (benchmarks/catalog.py `reported`) for reference. The PNG is a bar chart of the accuracies
with their standard errors.
"""
import json
import os

from dsmath_jax import atomic, paths


def published(reported: dict, prompt_style: str) -> dict:
  """The published numbers that used this prompt style: few-shot -> the base model's,
  cot / tool -> the instruct and RL models' with that prompt."""
  if prompt_style == "fewshot":
    return {k: v for k, v in reported.items() if "shot" in k}
  return {k: v for k, v in reported.items() if k.endswith(f"({'tool' if prompt_style == 'tool' else 'CoT'})")}


def rows_of(summaries: dict[str, dict]) -> list[dict]:
  rows = []
  for name, s in summaries.items():
    run = s.get("run", {})
    k = str(s["samples_per_question"])
    rows.append(dict(
        benchmark=name, title=run.get("title", name), questions=s["questions"],
        questions_in_benchmark=s["questions_in_benchmark"], accuracy=s["accuracy"], stderr=s["accuracy_stderr"],
        samples_per_question=s["samples_per_question"],
        maj=s["maj@k"].get(k) if s["samples_per_question"] > 1 else None,
        pass_k=s["pass@k"].get(k) if s["samples_per_question"] > 1 else None,
        no_answer=s["no_answer_samples"], published=published(run.get("reported", {}), run.get("prompt_style", ""))))
  return rows


def markdown(rows: list[dict], header: dict) -> str:
  lines = ["# Evaluation", ""]
  lines += [f"- {key}: `{value}`" for key, value in header.items() if value not in (None, "", {})]
  multi = any(r["samples_per_question"] > 1 for r in rows)
  columns = ["benchmark", "questions", "accuracy (%) ± s.e."] + (["maj@k", "pass@k"] if multi else []) + [
      "no answer", "published (DeepSeekMath 7B, %)"]
  lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  for r in rows:
    cells = [r["title"], f"{r['questions']} / {r['questions_in_benchmark']}", f"{r['accuracy']:.1f} ± {r['stderr']:.1f}"]
    if multi:
      cells += ["-" if r["maj"] is None else f"{r['maj']:.1f}", "-" if r["pass_k"] is None else f"{r['pass_k']:.1f}"]
    cells += [str(r["no_answer"]), "; ".join(f"{k}: {v:.1f}" for k, v in r["published"].items()) or "-"]
    lines.append("| " + " | ".join(cells) + " |")
  lines += ["", "Standard error over questions: sample std / sqrt(n). Per-benchmark reports (breakdowns by "
            "subject and level, grader notes, every sample) are in eval/<benchmark>/."]
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str, title: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  figure, axes = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 3.6))
  positions = range(len(rows))
  axes.bar(positions, [r["accuracy"] for r in rows], yerr=[r["stderr"] for r in rows], capsize=3, color="#4C72B0")
  for i, r in enumerate(rows):
    axes.text(i, r["accuracy"] + r["stderr"] + 1, f"{r['accuracy']:.1f}", ha="center", fontsize=8)
  axes.set_xticks(list(positions), [r["title"] for r in rows], rotation=30, ha="right", fontsize=8)
  axes.set_ylabel("accuracy (%)")
  axes.set_ylim(0, 105)
  axes.set_title(title, fontsize=9)
  axes.grid(axis="y", alpha=0.3)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def write(out_dir: str, summaries: dict[str, dict], header: dict) -> dict:
  """summary.json / summary.md / summary.png of the run (out_dir may be a URL); returns their paths."""
  rows = rows_of(summaries)
  written = {ext: paths.join(out_dir, f"summary.{ext}") for ext in ("json", "md", "png")}
  # each file appears whole or not at all (atomic); the figure first, summary.json (what tools read) last
  source = os.path.basename(os.path.normpath(header.get("checkpoint") or header.get("predictions") or "")) or "random init"
  with atomic.file_path(written["png"]) as png:
    plot(rows, png, f"{source} ({header.get('prompt') or 'predictions'}, {header.get('rules', '')} grading)")
  with atomic.write_file(written["md"], encoding="utf-8") as f:
    f.write(markdown(rows, header))
  with atomic.write_file(written["json"], encoding="utf-8") as f:
    json.dump(dict(header, benchmarks=rows), f, indent=1, ensure_ascii=False)
  return written
