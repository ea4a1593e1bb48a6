"""Reading built datasets back: grain random-access sources of plain python dicts.

Reads dataset_info.json + features.json from the build directory, so neither the
builder classes nor TensorFlow are needed (tfds.builder_from_directory).
"""
import os

import tensorflow_datasets as tfds


class DecodedSource:
  """A grain RandomAccessDataSource whose records are dicts of str/int/float (bytes decoded)."""

  def __init__(self, source):
    self._source = source

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index):
    return _decode(self._source[index])

  def __getitems__(self, indices):
    """Many records in one read (grain batches use it; much faster than one by one)."""
    return [_decode(record) for record in self._source.__getitems__(list(indices))]

  def __repr__(self):
    return f"DecodedSource({self._source!r})"


def _decode(record):
  out = {}
  for key, value in record.items():
    if isinstance(value, bytes):
      value = value.decode("utf-8")
    elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
      value = value.item()
    out[key] = value
  return out


def dataset_dir(name: str, data_dir: str) -> str:
  """data_dir/<name>[/<config>]/<newest version>; name is 'dsmath_sft/gsm8k_cot', 'dsmath_corpus', ..."""
  root = os.path.join(data_dir, name)
  if not os.path.isdir(root):
    raise FileNotFoundError(f"dataset {name!r} is not built under {data_dir} (no {root}); "
                            f"run the `dataset` task (configs/dataset.py) first")
  versions = [v for v in os.listdir(root) if os.path.isfile(os.path.join(root, v, "dataset_info.json"))]
  if not versions:
    raise FileNotFoundError(f"{root} holds no built version (dataset_info.json)")
  return os.path.join(root, max(versions, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit())))


def load_source(name: str, split: str, data_dir: str | None = None) -> DecodedSource:
  """A grain RandomAccessDataSource over one split of a built dataset (docs/conventions.md, "Records").

  data_dir None: $TFDS_DATA_DIR, else ~/tensorflow_datasets (tfds' own default).
  """
  if not data_dir:
    data_dir = os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
  builder = tfds.builder_from_directory(dataset_dir(name, data_dir))
  if split not in builder.info.splits:
    raise KeyError(f"{name} has no split {split!r}; splits: {sorted(builder.info.splits)}")
  return DecodedSource(builder.as_data_source(split))
