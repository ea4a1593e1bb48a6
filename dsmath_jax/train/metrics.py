"""Training metrics to WORKDIR/metrics.jsonl, TensorBoard (tensorboardX) and the console.

One JSON object per logged step (`{"step": s, "loss": ..., ...}`) is the record every
plot and comparison reads; TensorBoard and the console line are views of the same dict.
Only process 0 writes (all hosts compute the same global scalars).
"""
import json
import math
import os
import time

import jax


class MetricsWriter:
  """Appends scalar metrics; `.write(step, metrics)` then `.close()`."""

  def __init__(self, workdir: str, *, console_keys=("loss", "grad_norm", "learning_rate",
                                                    "tokens_per_s", "mfu", "eval_loss")):
    self.enabled = jax.process_index() == 0
    self.console_keys = console_keys
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._start = time.time()
    self._file = self._tensorboard = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      self._file = open(self.path, "a")
      from tensorboardX import SummaryWriter
      self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    scalars = {name: float(value) for name, value in metrics.items()}
    self._file.write(json.dumps({"step": int(step), **scalars}) + "\n")
    self._file.flush()
    for name, value in scalars.items():
      if math.isfinite(value):
        self._tensorboard.add_scalar(name, value, int(step))
    shown = " ".join(f"{k}={scalars[k]:.4g}" for k in self.console_keys if k in scalars)
    print(f"step {int(step)} [{time.time() - self._start:.0f}s] {shown}", flush=True)

  def close(self) -> None:
    if self.enabled:
      self._file.close()
      self._tensorboard.close()


def read_metrics(metrics_jsonl: str) -> list[dict]:
  """One record per step, in step order: records of the same step are merged, later values
  winning (a resumed run logs again the steps after its last checkpoint)."""
  by_step = {}
  with open(metrics_jsonl) as f:
    for line in f:
      if line.strip():
        record = json.loads(line)
        by_step.setdefault(record["step"], {}).update(record)
  return [by_step[step] for step in sorted(by_step)]


def plot_curves(metrics_jsonl: str, keys, png_path: str) -> None:
  """One panel per key (e.g. loss, eval_loss) against step, from metrics.jsonl."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  records = read_metrics(metrics_jsonl)
  keys = [k for k in keys if any(k in r for r in records)]
  if not keys:
    return
  fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
  for ax, key in zip(axes[0], keys):
    points = sorted((r["step"], r[key]) for r in records if key in r)
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None)
    ax.set_xlabel("step")
    ax.set_title(key)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(png_path, dpi=100)
  plt.close(fig)
