"""Stage outputs on disk: JSONL.gz shards + `_SUCCESS.json` (fingerprint and counts), so that every stage is
resumable and idempotent: a stage whose `_SUCCESS.json` carries the fingerprint of the same inputs and config
is skipped on re-run; anything else in its directory is replaced.
"""
import glob
import gzip
import hashlib
import json
import os
import shutil

import fsspec

SUCCESS = "_SUCCESS.json"


def fingerprint(*parts) -> str:
  """sha256 of the JSON of `parts` (configs, upstream fingerprints, input file sizes)."""
  blob = json.dumps(parts, sort_keys=True, default=str).encode()
  return hashlib.sha256(blob).hexdigest()[:20]


def file_signature(path: str) -> list:
  """(path, size, mtime) of an input file: a changed file changes the fingerprint of the stages reading it."""
  try:
    info = fsspec.open(path).fs.info(path)
    return [path, info.get("size"), str(info.get("mtime") or info.get("updated") or info.get("LastModified"))]
  except FileNotFoundError:
    return [path, None, None]


def done(directory: str, stage_fingerprint: str) -> dict | None:
  """The `_SUCCESS.json` of a finished stage with this fingerprint, else None."""
  path = os.path.join(directory, SUCCESS)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    status = json.load(f)
  return status if status.get("fingerprint") == stage_fingerprint else None


def start(directory: str):
  """Empties a stage directory before (re)computing it."""
  if os.path.exists(directory):
    shutil.rmtree(directory)
  os.makedirs(directory)


def mark_done(directory: str, stage_fingerprint: str, counts: dict, **extra) -> dict:
  status = dict(fingerprint=stage_fingerprint, counts=counts, **extra)
  with open(os.path.join(directory, SUCCESS + ".tmp"), "w") as f:
    json.dump(status, f, indent=1, sort_keys=True)
  os.replace(os.path.join(directory, SUCCESS + ".tmp"), os.path.join(directory, SUCCESS))
  return status


def write_records(directory: str, records, name: str = "part-00000-of-00001.jsonl.gz") -> int:
  count = 0
  with gzip.open(os.path.join(directory, name), "wt", encoding="utf-8", compresslevel=1) as f:
    for record in records:
      f.write(json.dumps(record, ensure_ascii=False) + "\n")
      count += 1
  return count


def read_records(directory: str, pattern: str = "part-*.jsonl.gz"):
  """Every record of the shards of a stage (in-process or Beam-written), shard by shard."""
  for path in sorted(glob.glob(os.path.join(directory, pattern))):
    with gzip.open(path, "rt", encoding="utf-8") as f:
      for line in f:
        if line.strip():
          yield json.loads(line)


def write_json(path: str, data):
  with open(path, "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1, sort_keys=True, ensure_ascii=False)


def read_json(path: str):
  with open(path, encoding="utf-8") as f:
    return json.load(f)
