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

In an object store (a gs:// or s3:// path, see paths.py) there is no rename. A single object is
atomic there (an upload becomes visible only once complete), so `file_path` and `write_file` write a
local temporary file and upload it in one object write: the old object or the new one, never a torn
one, as on a disk. A folder is many objects and cannot be swapped: `directory` stages locally, then
deletes the old folder (its `marker` file first) and uploads the new one with `marker` last. What is
lost is the old folder during that upload (a killed upload leaves a partial folder, not the previous
output); what is kept is that a partial folder never carries its marker, so a reader that requires it
(model.json for a saved model, summary.json for a report) refuses it instead of reading it.
"""
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO

from dsmath_jax import paths


def _temporary_name(path: str, tag: str) -> str:
  """A sibling of `path`, unique to this process, that keeps its suffix (savefig reads it)."""
  folder, name = os.path.split(os.path.abspath(path))
  stem, suffix = os.path.splitext(name)
  return os.path.join(folder, f".{stem}.{tag}-{os.getpid()}{suffix}")


@contextlib.contextmanager
def file_path(path: str) -> Iterator[str]:
  """Yields a temporary path to write; renames it to `path` when the block ends without error
  (in an object store: uploads it to `path` in one object write)."""
  if paths.is_remote(path):
    with tempfile.TemporaryDirectory(prefix="dsmath_jax_atomic_") as local:
      temporary = os.path.join(local, os.path.basename(os.fspath(path)))
      yield temporary
      paths.upload_tree(local, paths.path(path).parent)
    return
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


def replace_dir(staging: str, path: str, *, marker: str | None = None) -> None:
  """Moves the complete (local) folder `staging` to `path`, replacing what was there.

  `path` in an object store: the old folder is deleted (`marker`, a relative file name, first) and
  `staging` uploaded with `marker` last (see the module docstring for what that keeps)."""
  if paths.is_remote(path):
    target = paths.path(path)
    if marker and (target / marker).exists():
      (target / marker).unlink()
    target.rmtree(missing_ok=True)
    paths.upload_tree(staging, target, last=marker)
    shutil.rmtree(staging, ignore_errors=True)
    return
  aside = _temporary_name(path, "old") if os.path.lexists(path) else None
  if aside:
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(path, aside)
  os.rename(staging, path)
  if aside:
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def directory(path: str, staging: str | None = None, *, marker: str | None = None) -> Iterator[str]:
  """Yields an empty staging folder (default: a hidden sibling of `path` unique to this process;
  a local temporary folder when `path` is in an object store); it replaces `path` when the block
  ends without error, and is removed when it raises. A given `staging` name (one every host of a
  multi-host job agrees on) is emptied first. `marker`: see replace_dir."""
  if staging is None and paths.is_remote(path):
    staging = tempfile.mkdtemp(prefix="dsmath_jax_staging_")
  staging = staging or _temporary_name(path, "tmp")
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(staging)
  try:
    yield staging
    replace_dir(staging, path, marker=marker)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
