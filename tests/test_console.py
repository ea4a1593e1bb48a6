"""The console filter drops libraries' INFO lines and keeps ours and every warning."""
import logging

from dsmath_jax import console


def _record(path: str, level: int) -> logging.LogRecord:
  return logging.LogRecord("absl", level, path, 1, "message", None, None)


def test_library_info_is_dropped_and_warnings_and_our_info_kept():
  keep = console._FILTER.filter
  orbax = "/usr/lib/python3.11/site-packages/orbax/checkpoint/_src/checkpointers/async_checkpointer.py"
  assert not keep(_record(orbax, logging.INFO))
  assert keep(_record(orbax, logging.WARNING))
  assert keep(_record("/work/main/dsmath_jax/train/trainer.py", logging.INFO))
  assert keep(_record("/usr/lib/python3.11/site-packages/numpy/core/x.py", logging.INFO))


def test_quiet_libraries_installs_and_removes_the_filter():
  from absl import logging as absl_logging
  handler = absl_logging.get_absl_handler()
  console.quiet_libraries()
  assert console._FILTER in handler.filters
  console.quiet_libraries(False)
  assert console._FILTER not in handler.filters
