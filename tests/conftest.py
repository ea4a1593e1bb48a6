"""Test setup: 8 simulated CPU devices, set before anything imports jax."""
import os
import pathlib
import sys

_FLAGS = os.environ.get("XLA_FLAGS", "")
if "--xla_force_host_platform_device_count" not in _FLAGS:   # xdist workers inherit it
  os.environ["XLA_FLAGS"] = (_FLAGS + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

# ../shared/data, or wherever DSMATH_SHARED_DATA points (as in configs/common.py): a git worktree elsewhere.
SHARED_DATA = pathlib.Path(os.environ.get("DSMATH_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """../shared/data: the real datasets tests compare against (skip where absent)."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"{SHARED_DATA} not present")
  return SHARED_DATA
