"""benchmarks/scale_7b.py at a toy shape on the 8 simulated devices: its bytes against the
hand-computed sharded state, its layer extrapolation of FLOPs against a compiled deeper model."""
import dataclasses
import importlib.util
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "scale_7b.py")


@pytest.fixture(scope="module")
def scale():
  spec = importlib.util.spec_from_file_location("scale_7b", _PATH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_bytes_and_flops_of_a_toy_sft_step(scale):
  args = scale.parse_args(["--preset", "tiny", "--sft_rows", "16", "--sft_seq", "64"])
  setting = scale.Setting("toy", "sft", (1, 8, 1), "full", 2)
  report = scale.analyse(setting, args)
  # Arguments: float32 params + AdamW mu and nu, sharded 8 ways over fsdp (tiny's vocabulary and
  # widths divide by 8; norms are replicated), plus the batch and scalars.
  state = 3 * 4 * report["params"]
  assert state / 8 <= report["argument_bytes"] <= state / 8 + 3 * 4 * 64 * 5 + 16 * 64 * 16 // 8 + 4096
  assert report["temp_bytes"] > 0 and report["fits"]["16 GB TPU v5e"]
  # FLOPs extrapolated from 1 and 2 unrolled layers == a 4-layer unrolled model compiled whole.
  deep = dataclasses.replace(setting, num_microbatches=1)
  args4 = scale.parse_args(["--preset", "tiny", "--sft_rows", "8", "--sft_seq", "64"])
  compiled = [scale.compile_step(deep, args4, num_layers=n, scan_layers=False)[0] for n in (1, 2, 4)]
  f1, f2, f4 = (c.cost_analysis()["flops"] for c in compiled)
  assert f1 + 3 * (f2 - f1) == pytest.approx(f4, rel=1e-3)
  assert 0.5 < report["mfu_ceiling"] < 1.0
