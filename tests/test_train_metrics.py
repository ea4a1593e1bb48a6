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
