"""The GGUF (llama.cpp) container: metadata and tensor locations, read without the `gguf` package.

A file-format library under both the tokenizer (a GGUF carries its vocabulary) and the model
(`model/gguf.py` dequantizes its tensors), so neither imports the other for it.
"""
import mmap
import struct

import numpy as np


# GGUF metadata value types (gguf spec): id -> numpy scalar type; 8 = string, 9 = array.
_SCALARS = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32,
            6: np.float32, 7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}


def read_gguf(path: str) -> tuple[dict, dict, np.ndarray]:
  """(metadata, tensors {name: (numpy shape, ggml type id, byte offset)}, file bytes (mmap)).

  A direct reader of the GGUF v2/v3 layout: gguf.GGUFReader builds a numpy view per string,
  which takes seconds for a 49K-token vocabulary; this reads it in a fraction of a second.
  """
  with open(path, "rb") as f:
    blob = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)
  buffer = blob.data
  if bytes(buffer[:4]) != b"GGUF":
    raise ValueError(f"{path}: not a GGUF file (magic {bytes(buffer[:4])!r})")
  version, tensor_count, kv_count = struct.unpack_from("<IQQ", buffer, 4)
  if version not in (2, 3):
    raise ValueError(f"{path}: GGUF version {version} is not supported (2 or 3)")
  pos = 24

  def read_string(at):
    (length,) = struct.unpack_from("<Q", buffer, at)
    return bytes(buffer[at + 8:at + 8 + length]).decode("utf-8", errors="replace"), at + 8 + length

  def read_value(kind, at):
    if kind in _SCALARS:
      value = np.frombuffer(buffer, _SCALARS[kind], 1, at)[0].item()
      return value, at + np.dtype(_SCALARS[kind]).itemsize
    if kind == 8:
      return read_string(at)
    if kind == 9:
      item_kind, count = struct.unpack_from("<IQ", buffer, at)
      at += 12
      if item_kind in _SCALARS:
        values = np.frombuffer(buffer, _SCALARS[item_kind], count, at)
        return values.tolist(), at + values.nbytes
      items = []
      for _ in range(count):
        item, at = read_value(item_kind, at)
        items.append(item)
      return items, at
    raise ValueError(f"{path}: unknown metadata value type {kind} at byte {at}")

  metadata = {}
  for _ in range(kv_count):
    key, pos = read_string(pos)
    (kind,) = struct.unpack_from("<I", buffer, pos)
    metadata[key], pos = read_value(kind, pos + 4)
  infos = {}
  for _ in range(tensor_count):
    name, pos = read_string(pos)
    (ndim,) = struct.unpack_from("<I", buffer, pos)
    dims = struct.unpack_from(f"<{ndim}Q", buffer, pos + 4)
    kind, offset = struct.unpack_from("<IQ", buffer, pos + 4 + 8 * ndim)
    pos += 4 + 8 * ndim + 12
    infos[name] = (tuple(int(d) for d in reversed(dims)), kind, offset)
  alignment = int(metadata.get("general.alignment", 32))
  data_start = -(-pos // alignment) * alignment
  tensors = {name: (shape, kind, data_start + offset) for name, (shape, kind, offset) in infos.items()}
  return metadata, tensors, blob
