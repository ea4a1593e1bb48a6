"""A readable console: libraries' INFO chatter off, ours on.

Orbax alone logs ~480 INFO lines in a quickstart (every save, every finalize), drowning the
few lines a person reads. `quiet_libraries()` drops INFO (and DEBUG) records whose source file
lives in one of the noisy libraries; warnings and errors always pass. `--verbosity=1` (absl's
flag) or `quiet_libraries(False)` brings them back.
"""
import logging
import os

NOISY = ("orbax", "grain", "jax", "flax", "etils", "tensorflow_datasets", "absl")


class _LibraryInfoFilter(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return True
    parts = os.path.normpath(record.pathname).split(os.sep)
    if "site-packages" not in parts and "dist-packages" not in parts:
      return True
    return not any(name in parts for name in NOISY)


_FILTER = _LibraryInfoFilter()


def quiet_libraries(quiet: bool = True) -> None:
  """Installs (or removes) the filter on absl's handler and on the root logger's handlers."""
  from absl import logging as absl_logging
  handlers = [absl_logging.get_absl_handler(), *logging.getLogger().handlers]
  for handler in handlers:
    if quiet:
      handler.addFilter(_FILTER)
    else:
      handler.removeFilter(_FILTER)
