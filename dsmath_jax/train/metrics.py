"""Training metrics to WORKDIR/metrics.jsonl, TensorBoard (tensorboardX) and the console.

One JSON object per logged step (`{"step": s, "loss": ..., ...}`) is the record every
plot and comparison reads; TensorBoard and the console line are views of the same dict.
Only process 0 writes (all hosts compute the same global scalars).

WORKDIR may be a gs:// or s3:// URL. An object store cannot append, and TensorBoard and the
profiler write local files, so then everything is written into a local mirror (paths.LocalMirror:
the remote metrics.jsonl is downloaded first, so a resumed run appends to it) and uploaded after
every record and at close; a run killed between records loses at most that record's TensorBoard
and profile files, never metrics.jsonl lines already written.
"""
import json
import math
import os
import tempfile
import time

import jax
from absl import logging

from dsmath_jax import atomic, console, paths

METRICS_FILE = "metrics.jsonl"


# What the console line of a pretrain/SFT step shows (all of it is in metrics.jsonl).
CONSOLE_KEYS = ("loss", "grad_norm", "learning_rate", "tokens_per_s", "mfu", "eval_loss")


class MetricsWriter:
  """Appends scalar metrics; `.write(step, metrics)` then `.close()`.

  Optional, off by default: a Weights & Biases run beside TensorBoard (`wandb_project`; a missing
  `wandb` package is a warning, not a crash), and a jax.profiler trace of `profile_steps` =
  (first step, number of steps) into WORKDIR/profile (TensorBoard's profile tab, Perfetto), driven
  by `.step(step)` at the top of each step.
  """

  def __init__(self, workdir: str, *, console_keys=CONSOLE_KEYS,
               wandb_project: str = "", run_config: dict | None = None,
               profile_steps: tuple[int, int] = (0, 0)):
    self.enabled = jax.process_index() == 0
    self.console_keys = console_keys
    self.workdir = workdir
    self.path = paths.join(workdir, METRICS_FILE)      # where metrics.jsonl ends up (maybe a URL)
    self._start = time.time()
    self._file = self._tensorboard = self._wandb = self._mirror = None
    self._profile_first, self._profile_count = profile_steps
    self._profiling = False
    if self.enabled:
      self._mirror = paths.LocalMirror(workdir, files=(METRICS_FILE,))
      if self._mirror.remote:
        logging.info("workdir %s: metrics, TensorBoard and profiles are written to %s and uploaded after "
                     "every record", workdir, self._mirror.local)
      self._file = open(os.path.join(self._mirror.local, METRICS_FILE), "a")
      from tensorboardX import SummaryWriter
      self._tensorboard = SummaryWriter(os.path.join(self._mirror.local, "tensorboard"))
      if wandb_project:
        self._wandb = _start_wandb(wandb_project, workdir, run_config)

  def step(self, step: int) -> None:
    """Call before running step `step`: starts or stops the profiler trace (every process traces)."""
    if self._profile_count <= 0:
      return
    if step == self._profile_first and not self._profiling:
      jax.profiler.start_trace(os.path.join(self._profile_root(), "profile"))
      self._profiling = True
    elif step >= self._profile_first + self._profile_count and self._profiling:
      self._stop_profile()

  def _profile_root(self) -> str:
    """Process 0 traces into its mirror of WORKDIR (uploaded with the metrics); the others into a
    local WORKDIR, or into a temporary folder they name when WORKDIR is a URL."""
    if self._mirror is not None:
      return self._mirror.local
    if not paths.is_remote(self.workdir):
      return self.workdir
    local = tempfile.mkdtemp(prefix="dsmath_jax_profile_")
    logging.warning("process %d: its profile of the %s workdir stays in %s (process 0's is uploaded)",
                    jax.process_index(), self.workdir, local)
    return local

  def _stop_profile(self) -> None:
    jax.effects_barrier()
    jax.profiler.stop_trace()
    self._profiling = False

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    scalars = {name: float(value) for name, value in metrics.items()}
    self._file.write(json.dumps({"step": int(step), **scalars}) + "\n")
    self._file.flush()
    for name, value in scalars.items():
      if math.isfinite(value):
        self._tensorboard.add_scalar(name, value, int(step))
    if self._wandb is not None:
      self._wandb.log(scalars, step=int(step))
    if self._mirror.remote:
      self._tensorboard.flush()
      self._mirror.sync()
    shown = " ".join(f"{k}={scalars[k]:.4g}" for k in self.console_keys if k in scalars)
    console.write(f"step {int(step)} [{time.time() - self._start:.0f}s] {shown}")

  def close(self) -> None:
    if self._profiling:
      self._stop_profile()
    if self.enabled:
      self._file.close()
      self._tensorboard.close()
      if self._wandb is not None:
        self._wandb.finish()
      self._mirror.close()


def _start_wandb(project: str, workdir: str, run_config: dict | None):
  """A W&B run for this workdir (resumed under the same id after a restart), or None without wandb."""
  try:
    import wandb
  except ImportError:
    logging.warning("wandb_project=%r but the wandb package is not installed: pip install wandb; "
                    "metrics still go to metrics.jsonl and TensorBoard", project)
    return None
  id_path = paths.path(workdir) / "wandb_id"
  if id_path.exists():
    run_id = id_path.read_text().strip()
  else:
    run_id = wandb.util.generate_id()
    with atomic.write_file(os.fspath(id_path)) as f:
      f.write(run_id)
  # wandb keeps its files in a local folder: WORKDIR itself, or a temporary one for a URL.
  local = tempfile.mkdtemp(prefix="dsmath_jax_wandb_") if paths.is_remote(workdir) else workdir
  return wandb.init(project=project, id=run_id, resume="allow", dir=local,
                    name=id_path.parent.name, config=run_config or {})


# Dense bf16 peak FLOP/s per chip from the vendors' data sheets (device_kind as jax reports it).
# CPUs have no dependable peak, so a CPU run logs no MFU.
PEAK_FLOPS = {
    "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v5": 459e12,
    "TPU v6 lite": 918e12, "TPU v6e": 918e12,
    "NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H100": 989e12, "NVIDIA H200": 989e12,
    "NVIDIA A100-SXM4-80GB": 312e12, "NVIDIA A100-SXM4-40GB": 312e12, "NVIDIA A100": 312e12,
}


def peak_flops_per_device(configured: float, device_kind: str) -> float:
  """The configured peak if set (> 0), else the data-sheet peak of `device_kind`, else 0 (unknown)."""
  if configured > 0:
    return configured
  for kind, flops in sorted(PEAK_FLOPS.items(), key=lambda item: -len(item[0])):
    if device_kind.startswith(kind):
      return flops
  return 0.0


def mfu_entry(model_flops_per_s: float, peak_flops: float) -> dict:
  """{"mfu": fraction} when it means something: a known peak and a fraction <= 1 (model FLOPs
  above the peak mean the peak is wrong, and such a number would mislead); else {}."""
  if peak_flops <= 0:
    return {}
  mfu = model_flops_per_s / peak_flops
  return {"mfu": mfu} if 0 <= mfu <= 1 else {}


def read_metrics(metrics_jsonl: str) -> list[dict]:
  """One record per step, in step order: records of the same step are merged, later values
  winning (a resumed run logs again the steps after its last checkpoint)."""
  by_step = {}
  with paths.path(metrics_jsonl).open() as f:
    for line in f:
      if line.strip():
        record = json.loads(line)
        by_step.setdefault(record["step"], {}).update(record)
  return [by_step[step] for step in sorted(by_step)]


def grid_shape(panels: int, max_columns: int = 3) -> tuple[int, int]:
  """(rows, columns) of a figure with `panels` panels: at most `max_columns` wide, so that each
  panel stays ~4 inches wide and the figure is readable at 100% zoom (never 6 panels in one row)."""
  columns = min(panels, max_columns)
  return -(-panels // columns), columns


def plot_curves(metrics_jsonl: str, keys, png_path: str) -> None:
  """One panel per key (e.g. loss, eval_loss) against step, from metrics.jsonl, in a grid."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  records = read_metrics(metrics_jsonl)
  keys = [k for k in keys if any(k in r for r in records)]
  if not keys:
    return
  rows, columns = grid_shape(len(keys))
  fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
  for ax in axes.flat[len(keys):]:
    ax.set_visible(False)
  for ax, key in zip(axes.flat, keys):
    points = sorted((r["step"], r[key]) for r in records if key in r)
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None)
    ax.set_xlabel("step")
    ax.set_title(key)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  with atomic.file_path(png_path) as temporary:       # png_path may be a URL
    fig.savefig(temporary, dpi=100)
  plt.close(fig)
