"""Workdirs anywhere: every path a run writes or reads, local or in an object store, goes through here.

`path(p)` turns a local path or a `gs://` / `s3://` URL into an `etils.epath.Path`, the one path
type of the package. Why epath and not fsspec directly: orbax, which writes every checkpoint,
takes and returns epath paths and writes its own metadata through them, and its arrays go through
tensorstore, which reaches exactly the local disk and `gs://` (orbax-checkpoint 0.12
`tensorstore_utils._use_gcs_driver`). One path type therefore means one answer to "where does
this byte go" for our files and orbax's. For `gs://` and `s3://` epath uses fsspec (gcsfs, s3fs:
`pip install gcsfs` / `s3fs`), or tf.io.gfile when TensorFlow is installed.

A scheme epath does not know (`memory://`, `file://`, `hdfs://`) is refused by name: epath would
otherwise read `memory://x` as the relative local folder `memory:/x` and the run would silently
write to the local disk.

Object stores have no rename, no append and no folders. What is atomic there and how each writer
copes: `atomic.py` (single objects are atomic; folder swaps keep a completion marker) and
`local_mirror` (append-only files and libraries that need a local path: metrics.jsonl,
TensorBoard event files, tokenizer files).
"""
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from etils import epath

# URL schemes epath reaches (through fsspec or tf.io.gfile); anything else is refused by name.
URL_SCHEMES = ("gs", "s3", "az", "hf")
# Where orbax can write arrays: tensorstore's gcs kvstore for gs://, its file kvstore otherwise.
ORBAX_SCHEMES = ("gs",)


def scheme(p: str | os.PathLike) -> str:
  """'gs' for 'gs://b/x', '' for a local path."""
  text = os.fspath(p)
  head, sep, _ = text.partition("://")
  return head if sep and "/" not in head else ""


def is_remote(p: str | os.PathLike) -> bool:
  return bool(scheme(p))


def path(p: str | os.PathLike) -> epath.Path:
  """An absolute epath.Path for a local path ('~' expanded) or a gs:// / s3:// URL.

  Raises ValueError for a URL scheme epath cannot reach, instead of a local folder named after it."""
  text = os.fspath(p)
  kind = scheme(text)
  if kind and kind not in URL_SCHEMES:
    raise ValueError(f"{text!r}: unsupported URL scheme {kind}://; workdirs and checkpoints may be local "
                     f"paths or {', '.join(s + '://' for s in URL_SCHEMES)} URLs (mount other stores "
                     f"and pass the mount path)")
  return epath.Path(text) if kind else epath.Path(os.path.abspath(os.path.expanduser(text)))


def check_orbax_dir(p: str | os.PathLike, what: str) -> epath.Path:
  """path(p), refusing a URL orbax cannot write arrays to (s3://: orbax-checkpoint builds a local
  tensorstore kvstore for anything but gs://) with a message naming `what` and the way out."""
  directory = path(p)
  kind = scheme(os.fspath(p))
  if kind and kind not in ORBAX_SCHEMES:
    raise ValueError(f"{what} {os.fspath(p)!r}: orbax-checkpoint writes arrays to local paths and gs:// "
                     f"only (tensorstore kvstores), not {kind}://; mount the bucket (e.g. mountpoint-s3) "
                     f"and pass the mount path, or use gs://")
  return directory


def join(p: str | os.PathLike, *parts: str) -> str:
  """os.path.join that keeps a URL a URL (the string form of path(p) / parts)."""
  return os.fspath(path(p).joinpath(*parts)) if is_remote(p) else os.path.join(os.fspath(p), *parts)


def files(root: str | os.PathLike) -> list[epath.Path]:
  """Every file under `root`, sorted (nothing when `root` does not exist). Not epath's `walk`: for a
  URL it yields fsspec's scheme-less roots ('bucket/x'), which epath reads as local paths."""
  root = path(root)
  if not root.is_dir():
    return []
  found = []
  for child in root.iterdir():
    found += files(child) if child.is_dir() else [child]
  return sorted(found, key=os.fspath)


def upload_tree(local_dir: str, target: str | os.PathLike, *, last: str | None = None) -> None:
  """Copies every file under `local_dir` to the same relative place under `target`. The file named
  `last` (relative) is copied after all others: a reader that waits for it never sees a partial tree."""
  target = path(target)
  files = []
  for root, _, names in os.walk(local_dir):
    files += [os.path.relpath(os.path.join(root, name), local_dir) for name in names]
  files.sort(key=lambda rel: (rel == last, rel))
  for rel in files:
    destination = target / rel
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(os.path.join(local_dir, rel), "rb") as source, destination.open("wb") as sink:
      shutil.copyfileobj(source, sink, 1 << 20)


def download_tree(source: str | os.PathLike, local_dir: str) -> str:
  """Copies the file or folder `source` to `local_dir` (a folder's files keep their relative paths)."""
  source = path(source)
  if not source.is_dir():
    local = os.path.join(local_dir, source.name)
    os.makedirs(local_dir, exist_ok=True)
    with source.open("rb") as remote, open(local, "wb") as sink:
      shutil.copyfileobj(remote, sink, 1 << 20)
    return local
  for remote_file in files(source):
    local = os.path.join(local_dir, os.path.relpath(os.fspath(remote_file), os.fspath(source)))
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with remote_file.open("rb") as remote, open(local, "wb") as sink:
      shutil.copyfileobj(remote, sink, 1 << 20)
  return local_dir


@contextlib.contextmanager
def local_copy(p: str | os.PathLike) -> Iterator[str]:
  """A local path to read `p` (a file or folder) through: `p` itself when local, else a temporary
  download removed at exit. For readers that need a real file (sentencepiece, tokenizers, mmap)."""
  if not is_remote(p):
    yield os.fspath(p)
    return
  with tempfile.TemporaryDirectory(prefix="dsmath_jax_download_") as local:
    yield download_tree(p, os.path.join(local, "copy"))


class LocalMirror:
  """A local folder whose files are copied to a remote folder on `sync()`: for writers that append
  (metrics.jsonl) or need a local path (TensorBoard's event files), which object stores cannot serve.

  For a local `target` the mirror is `target` itself and sync does nothing. For a URL the folder is
  temporary; `files` already at the target are downloaded first, so an append after a resume
  continues the remote file. Each sync re-uploads the changed files whole (one object write each:
  a reader sees the previous or the new version, never a torn one)."""

  def __init__(self, target: str | os.PathLike, files: tuple[str, ...] = ()):
    self.target = os.fspath(target)
    self.remote = is_remote(self.target)
    if not self.remote:
      self.local = self.target
      os.makedirs(self.local, exist_ok=True)
      return
    self.local = tempfile.mkdtemp(prefix="dsmath_jax_mirror_")
    self._uploaded: dict[str, tuple[int, int]] = {}
    for name in files:
      remote = path(self.target) / name
      if remote.exists():
        download_tree(remote, os.path.dirname(os.path.join(self.local, name)))
        self._uploaded[name] = self._signature(name)

  def _signature(self, rel: str) -> tuple[int, int]:
    stat = os.stat(os.path.join(self.local, rel))
    return stat.st_size, stat.st_mtime_ns

  def sync(self) -> None:
    """Uploads every file that changed since the last sync."""
    if not self.remote:
      return
    target = path(self.target)
    for root, _, names in os.walk(self.local):
      for name in names:
        rel = os.path.relpath(os.path.join(root, name), self.local)
        signature = self._signature(rel)
        if self._uploaded.get(rel) == signature:
          continue
        destination = target / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        with open(os.path.join(self.local, rel), "rb") as source, destination.open("wb") as sink:
          shutil.copyfileobj(source, sink, 1 << 20)
        self._uploaded[rel] = signature

  def close(self) -> None:
    """Last sync, then the temporary folder is removed."""
    if self.remote:
      self.sync()
      shutil.rmtree(self.local, ignore_errors=True)
