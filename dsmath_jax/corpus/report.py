"""WORKDIR/corpus/report.md + stats.json + score-distribution plots: what each stage and round did."""
import json
import os

import numpy as np

from dsmath_jax.corpus import read


def _count(status, key, default=0):
  return status["counts"]["counts"].get(key, default)


def summary(stats: dict) -> dict:
  """The numbers people compare across runs: pages and tokens per stage and round, domains, overlaps, hits."""
  rounds = [{
      "round": index + 1, "positives": r["positives"], "added_positives": r["added_positives"],
      "negatives": r["negatives"], "marked_prefixes": r["marked_prefixes"], "heldout": r["heldout"],
      "threshold": r["threshold"], "scored": _count(r, "round/scored"), "collected": _count(r, "round/collected"),
      "collected_tokens": _count(r, "round/collected_tokens"), "math_domains": r["math_domains"],
      "overlap_with_previous": r["overlap_with_previous"]} for index, r in enumerate(stats["rounds"])]
  return {
      "runner": stats["runner"],
      "read": stats["read"]["counts"], "seed": stats["seed"]["counts"], "dedup": stats["dedup"]["counts"],
      "negatives": stats.get("negatives", {}).get("counts"),
      "rounds": rounds, "decontaminate": {**stats["decontaminate"]["counts"],
                                          "benchmarks": stats["decontaminate"].get("benchmarks", {})},
      "write": {**stats["write"]["counts"], "path": stats["write"].get("path")}}


def plot_scores(corpus_dir: str, stats: dict, path: str):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  figure, axis = plt.subplots(figsize=(7, 4))
  edges = np.linspace(0, 1, 51)
  for index, status in enumerate(stats["rounds"]):
    histogram = np.load(os.path.join(corpus_dir, f"round_{index + 1}", "score_histogram.npy"))
    counts = np.where(histogram > 0, histogram, np.nan)                 # empty bins leave gaps on a log axis
    axis.step(edges[:-1], counts, where="post", label=f"round {index + 1} (threshold dotted)")
    axis.axvline(status["threshold"], linestyle=":", color=f"C{index}")
  axis.set(yscale="log", xlabel="fastText P(math)", ylabel="pages", title="Score distribution of the pool")
  axis.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def _input_faults(stage: str, status_counts: dict, examples: int = 3) -> list[str]:
  """Markdown lines: records read and kept, then every skipped/damaged/repaired reason with its count and the
  first `examples` places (file and record) it happened."""
  counts, errors = status_counts["counts"], status_counts.get("errors", {})
  lines = [f"Input of the {stage} stage: {counts.get('records', 0)} records in {counts.get('files', 0)} files, "
           f"{counts.get('kept', counts.get('pages', 0))} kept, {read.unaccounted(counts)} unaccounted.", ""]
  reasons = [k for k in counts if k.startswith(("skipped/", "damaged/", "repaired/")) and counts[k]]
  for reason in reasons:
    lines.append(f"- {reason}: {counts[reason]}")
    lines += [f"  - {example}" for example in errors.get(reason, [])[:examples]]
  return lines + ([] if reasons else ["- nothing skipped, damaged or repaired"]) + [""]


def write_report(corpus_dir: str, stats: dict):
  data = summary(stats)
  with open(os.path.join(corpus_dir, "stats.json"), "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1, sort_keys=True, ensure_ascii=False)
  plot_scores(corpus_dir, stats, os.path.join(corpus_dir, "scores.png"))
  read_counts = data["read"]["counts"]
  lines = ["# Corpus collection report (DeepSeekMath §2.1)", "",
           f"Runner: {data['runner']}. Pool: {read_counts.get('pages', 0)} pages read from "
           f"{read_counts.get('files', 0)} files, {read_counts.get('kept', 0)} kept after language ID "
           f"({read_counts.get('kept_tokens', 0)} tokens), {data['dedup']['counts'].get('dedup/kept', 0)} after "
           f"dedup ({data['dedup']['counts'].get('dedup/kept_tokens', 0)} tokens, "
           f"{data['dedup']['counts'].get('dedup/url_duplicate', 0)} URL duplicates, "
           f"{data['dedup']['counts'].get('dedup/near_duplicate', 0)} near duplicates).", ""]
  for stage in ("read", "seed", "negatives"):
    if data[stage] is not None:
      lines += _input_faults(stage, data[stage])
  lines += ["", "| round | positives (+added) | collected pages | tokens | threshold | held-out P / R | "
            "overlap with previous | math domains |", "|---|---|---|---|---|---|---|---|"]
  for r in data["rounds"]:
    overlap = "-" if r["overlap_with_previous"] is None else f"{r['overlap_with_previous']:.1%}"
    lines.append(f"| {r['round']} | {r['positives']} (+{r['added_positives']}) | {r['collected']} | "
                 f"{r['collected_tokens']} | {r['threshold']:.3f} | {r['heldout']['precision']:.3f} / "
                 f"{r['heldout']['recall']:.3f} | {overlap} | {', '.join(r['math_domains'][:8])} |")
  decon = data["decontaminate"]["counts"]
  lines += ["", f"Decontamination: {decon.get('decontaminate/segments_removed', 0)} segments removed from "
            f"{decon.get('decontaminate/pages_with_hits', 0)} pages, {decon.get('decontaminate/pages_dropped', 0)} "
            "pages dropped (details: decontaminated/hits-*.jsonl.gz).", "",
            f"Written: {data['write']['counts']['write/pages']} pages, {data['write']['counts']['write/tokens']} "
            f"tokens -> {data['write']['path']}", "", "![scores](scores.png)", ""]
  with open(os.path.join(corpus_dir, "report.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines))
