"""Curves a person can read and an MFU that is never a made-up number."""
import json

import matplotlib.image
import pytest

from dsmath_jax.train import metrics


def test_six_curves_form_a_grid_readable_at_full_size(tmp_path):
  keys = ["reward_mean", "accuracy", "kl", "loss", "response_length", "entropy"]
  with open(tmp_path / "metrics.jsonl", "w") as f:
    for step in range(1, 6):
      f.write(json.dumps({"step": step, **{k: step * (i + 1) for i, k in enumerate(keys)}}) + "\n")
  metrics.plot_curves(str(tmp_path / "metrics.jsonl"), keys, str(tmp_path / "curves.png"))
  height, width, _ = matplotlib.image.imread(tmp_path / "curves.png").shape
  assert width <= 1300 and 550 <= height <= 700, (width, height)      # 2 rows x 3 columns at dpi 100
  assert metrics.grid_shape(1) == (1, 1) and metrics.grid_shape(4) == (2, 3)
  assert metrics.grid_shape(7) == (3, 3)


@pytest.mark.parametrize("kind, expected", [("TPU v4", 275e12), ("TPU v5 lite", 197e12), ("TPU v5p", 459e12),
                                            ("NVIDIA H100 80GB HBM3", 989e12), ("cpu", 0.0)])
def test_peak_from_the_data_sheet_unless_configured(kind, expected):
  assert metrics.peak_flops_per_device(0.0, kind) == expected
  assert metrics.peak_flops_per_device(1e12, kind) == 1e12


def test_mfu_only_when_meaningful():
  assert metrics.mfu_entry(1e12, 0.0) == {}                  # unknown peak (CPU): no MFU at all
  assert metrics.mfu_entry(1.3e12, 1e12) == {}               # above 100%: the peak is wrong
  assert metrics.mfu_entry(0.4e12, 1e12) == {"mfu": pytest.approx(0.4)}


def test_wandb_absent_is_a_warning_not_a_crash(tmp_path, monkeypatch, caplog):
  import sys
  monkeypatch.setitem(sys.modules, "wandb", None)             # import wandb -> ImportError
  writer = metrics.MetricsWriter(str(tmp_path), wandb_project="dsmath")
  writer.write(1, {"loss": 2.0})
  writer.close()
  assert metrics.read_metrics(str(tmp_path / "metrics.jsonl")) == [{"step": 1, "loss": 2.0}]
  assert "wandb package is not installed" in caplog.text


def test_wandb_run_gets_every_record_and_resumes_its_id(tmp_path, monkeypatch):
  import sys
  import types
  calls = []

  class Run:
    def log(self, scalars, step):
      calls.append(("log", step, scalars))

    def finish(self):
      calls.append(("finish",))

  fake = types.SimpleNamespace(util=types.SimpleNamespace(generate_id=lambda: "abc123"),
                               init=lambda **kwargs: calls.append(("init", kwargs)) or Run())
  monkeypatch.setitem(sys.modules, "wandb", fake)
  for step in (1, 2):                                         # second writer: a resumed run
    writer = metrics.MetricsWriter(str(tmp_path), wandb_project="dsmath", run_config={"lr": 0.1})
    writer.write(step, {"loss": 1.0 / step})
    writer.close()
  inits = [c[1] for c in calls if c[0] == "init"]
  assert [i["id"] for i in inits] == ["abc123", "abc123"] and inits[0]["config"] == {"lr": 0.1}
  assert [c[1:] for c in calls if c[0] == "log"] == [(1, {"loss": 1.0}), (2, {"loss": 0.5})]


def test_profile_steps_write_a_trace(tmp_path):
  import jax
  import jax.numpy as jnp
  step_fn = jax.jit(lambda x: jnp.tanh(x @ x))
  writer = metrics.MetricsWriter(str(tmp_path), profile_steps=(1, 2))
  x = jnp.ones((64, 64))
  for step in range(4):
    writer.step(step)
    x = step_fn(x)
  writer.close()
  traces = list((tmp_path / "profile").rglob("*.xplane.pb"))
  assert len(traces) == 1 and traces[0].stat().st_size > 0
