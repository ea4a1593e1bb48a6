"""Outputs appear under their final name only when complete (issue 16: nothing half-written looks
finished).

A run killed while writing (preemption, OOM, a bug) must leave either the previous complete
output or nothing under the final name, never a torn file or a folder of old and new files.
Everything is written under a temporary name in the same folder (so the final rename stays on
one filesystem) and moved into place by rename(2), which is atomic for a file; a folder is
swapped by two renames (old aside, new in) with a window of microseconds instead of the
whole write.

  with atomic.write_file(path) as f:          # text or binary file
    json.dump(summary, f)
  with atomic.file_path(png) as tmp:          # any writer that takes a path; tmp keeps png's suffix
    figure.savefig(tmp)
  with atomic.directory(out_dir) as staging:  # a folder written whole; replaces out_dir at the end
    write_everything_into(staging)

On an exception the temporary file or folder is removed and the previous output is untouched.
"""
import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import IO


def _temporary_name(path: str, tag: str) -> str:
  """A sibling of `path`, unique to this process, that keeps its suffix (savefig reads it)."""
  folder, name = os.path.split(os.path.abspath(path))
  stem, suffix = os.path.splitext(name)
  return os.path.join(folder, f".{stem}.{tag}-{os.getpid()}{suffix}")


@contextlib.contextmanager
def file_path(path: str) -> Iterator[str]:
  """Yields a temporary path to write; renames it to `path` when the block ends without error."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  temporary = _temporary_name(path, "tmp")
  try:
    yield temporary
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(temporary)
    raise


@contextlib.contextmanager
def write_file(path: str, mode: str = "w", **open_kwargs) -> Iterator[IO]:
  """open(path, mode) whose contents reach `path` only once the block completes (flushed to disk)."""
  if not mode.startswith(("w", "x")):
    raise ValueError(f"atomic.write_file({path!r}, mode={mode!r}): only a fresh write can be atomic")
  with file_path(path) as temporary:
    with open(temporary, mode, **open_kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())


def replace_dir(staging: str, path: str) -> None:
  """Moves the complete folder `staging` to `path`, replacing what was there."""
  aside = _temporary_name(path, "old") if os.path.lexists(path) else None
  if aside:
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(path, aside)
  os.rename(staging, path)
  if aside:
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def directory(path: str, staging: str | None = None) -> Iterator[str]:
  """Yields an empty staging folder (default: a hidden sibling of `path` unique to this process);
  it replaces `path` when the block ends without error, and is removed when it raises. A given
  `staging` name (one every host of a multi-host job agrees on) is emptied first."""
  staging = staging or _temporary_name(path, "tmp")
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(staging)
  try:
    yield staging
    replace_dir(staging, path)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
