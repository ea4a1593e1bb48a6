"""Test setup: 8 simulated CPU devices and one persistent XLA compilation cache, set before
anything imports jax."""
import os
import pathlib
import shutil
import sys
import tempfile

_FLAGS = os.environ.get("XLA_FLAGS", "")
if "--xla_force_host_platform_device_count" not in _FLAGS:   # xdist workers inherit it
  os.environ["XLA_FLAGS"] = (_FLAGS + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The :tiny configs compile the same programs in many tests, in the python subprocesses the tests
# start (a run, then its resume) and in both xdist workers; one cache folder for the session lets
# each program compile once (a subprocess inherits the variables). Set here in the controller, so
# the workers share it; a cache folder given from outside is used and kept. max_size turns on
# jax's file lock, so two processes never read an entry half written.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="dsmath_jax_tests_xla_cache_")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


def pytest_unconfigure(config):
  """The session's compilation cache goes when the session that made it ends (not an xdist worker)."""
  if _OWN_CACHE and not hasattr(config, "workerinput"):
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)

# ../shared/data, or wherever DSMATH_SHARED_DATA points (as in configs/common.py): a git worktree elsewhere.
SHARED_DATA = pathlib.Path(os.environ.get("DSMATH_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """../shared/data: the real datasets tests compare against (skip where absent)."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"{SHARED_DATA} not present")
  return SHARED_DATA
