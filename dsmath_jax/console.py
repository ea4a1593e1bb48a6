"""A readable console: libraries' INFO chatter off, ours on; one kind of progress bar.

Orbax alone logs ~480 INFO lines in a quickstart (every save, every finalize), drowning the
few lines a person reads. `quiet_libraries()` drops INFO (and DEBUG) records whose source file
lives in one of the noisy libraries; warnings and errors always pass. `--verbosity=1` (absl's
flag) or `quiet_libraries(False)` brings them back.

Every long loop (train steps, GRPO steps, sampling, grading, corpus passes) shows the same bar,
`progress(...)`: done/total, elapsed time and the ETA, on stderr; lines printed while a bar is
up go through `write(...)`, which keeps the bar whole at the bottom of the console.
"""
import contextlib
import logging
import os
import sys

import tqdm

# done/total, then elapsed and the estimated time to finish: what a person waiting reads.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}, ETA {remaining}, {rate_fmt}]"
COUNTER_FORMAT = "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}]"    # no total known: no ETA

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


def progress(desc: str, total: int | None = None, *, iterable=None, unit: str = "step", initial: int = 0,
             leave: bool = True, enabled: bool = True) -> tqdm.tqdm:
  """The project's progress bar (with ETA) over `total` units, or over `iterable` when given.

  `initial`: units already done (a resumed run), which the ETA does not count as this run's speed.
  `enabled=False` (every process but the first of a multi-host run) draws nothing."""
  return tqdm.tqdm(iterable, desc=desc, total=total, unit=unit, initial=initial, leave=leave,
                   disable=not enabled, mininterval=1.0, dynamic_ncols=True, file=sys.stderr,
                   bar_format=BAR_FORMAT if total is not None or hasattr(iterable, "__len__") else COUNTER_FORMAT)


def write(line: str) -> None:
  """Prints a line to stdout without breaking a progress bar that is up (tqdm moves it below)."""
  tqdm.tqdm.write(line, file=sys.stdout)
  sys.stdout.flush()


@contextlib.contextmanager
def warnings_only():
  """absl's INFO lines (ours and the libraries') off inside the block, unless the user asked for
  more (`--verbosity=1`): for a command whose console is its own progress bars and tables."""
  from absl import logging as absl_logging
  verbosity = absl_logging.get_verbosity()
  if verbosity <= absl_logging.INFO:
    absl_logging.set_verbosity(absl_logging.WARNING)
  try:
    yield
  finally:
    absl_logging.set_verbosity(verbosity)
