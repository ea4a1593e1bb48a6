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


def test_progress_bar_shows_done_total_and_eta_and_a_counter_without_total(capsys):
  bar = console.progress("sft", 4, initial=1)                    # a resumed run: 1 of 4 done before
  for _ in range(3):
    console.write("step line")                                   # the bar stays whole below it
    bar.update(1)
  bar.close()
  for _ in console.progress("read pool", iterable=iter(range(3)), unit="page"):
    pass
  out, err = capsys.readouterr()
  drawings = [d.strip() for d in err.replace("\r", "\n").split("\n") if d.strip()]
  assert drawings[0].startswith("sft:  25%|") and "1/4 [" in drawings[0]
  assert [d for d in drawings if d.startswith("sft: 100%|") and "4/4 [" in d and ", ETA 00:00, " in d]
  assert drawings[-1].startswith("read pool: 3 page [") and "ETA" not in drawings[-1]
  assert out == "step line\n" * 3


def test_warnings_only_silences_info_and_restores_the_verbosity():
  from absl import logging as absl_logging
  before = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    with console.warnings_only():
      assert absl_logging.get_verbosity() == absl_logging.WARNING
    assert absl_logging.get_verbosity() == absl_logging.INFO
    absl_logging.set_verbosity(absl_logging.DEBUG)                 # --verbosity=1: the user asked for more
    with console.warnings_only():
      assert absl_logging.get_verbosity() == absl_logging.DEBUG
  finally:
    absl_logging.set_verbosity(before)
