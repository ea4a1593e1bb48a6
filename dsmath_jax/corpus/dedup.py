"""Stage 2: URL normalization + exact URL dedup, then MinHash-LSH near-duplicate removal (paper §2.1).

Both steps are written as "key -> group -> decide" so that the in-process run and a Beam run (GroupByKey on the
same keys) make the same decisions whatever order records arrive in:
  - exact URL dedup: group by normalized URL, keep the page with the smallest `id`;
  - near dedup: a page's MinHash (word shingles of `shingle_size`, `num_perm` permutations, seed 1) is cut into
    the LSH bands datasketch picks for `threshold`; a page is a near-duplicate when some band bucket holds a page
    with a smaller `id` whose estimated Jaccard similarity is >= `threshold`. Chains A~B~C drop B and C even
    when A and C are not similar; that is the usual connected-component behaviour of CC-scale dedup.
"""
import hashlib
import re
import struct
import urllib.parse

import numpy as np
from datasketch import MinHash
from datasketch.lsh import _optimal_param

_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|mc_cid$|mc_eid$|sessionid$|sid$|phpsessid$)", re.I)
_WORD = re.compile(r"\w+")


def normalize_url(url: str) -> str:
  """Canonical form used as the exact-dedup key: lowercase scheme/host, no `www.`, default port, fragment,
  tracking parameters or trailing slash; query parameters sorted. Non-URLs (ids) and URLs that do not parse
  (`http://[::1`, a port of 99999) are returned stripped, with `://` escaped so no caller parses them again."""
  url = url.strip()
  if "://" not in url:
    if "/" in url and "." in url.split("/", 1)[0]:
      url = "http://" + url                      # "host/path" without a scheme (some CC dumps)
    else:
      return url
  try:
    parts = urllib.parse.urlsplit(url)
    port = parts.port                            # raises on a port that is not a number in 0..65535
  except ValueError:
    return url.replace("://", ":%2F%2F", 1)
  host = (parts.hostname or "").lower()
  if host.startswith("www."):
    host = host[4:]
  port = port if port not in (None, 80, 443) else None
  netloc = f"{host}:{port}" if port else host
  path = re.sub(r"/{2,}", "/", parts.path or "/")
  if len(path) > 1 and path.endswith("/"):
    path = path[:-1]
  query = urllib.parse.urlencode(sorted((k, v) for k, v in urllib.parse.parse_qsl(parts.query, True)
                                        if not _TRACKING.match(k)))
  scheme = "http" if parts.scheme.lower() in ("http", "https") else parts.scheme.lower()
  return urllib.parse.urlunsplit((scheme, netloc, path, query, ""))


def url_key(page: dict) -> str:
  return normalize_url(page["url"]) or "id:" + page["id"]


def pick_first(pages: list[dict]) -> tuple[dict, list[dict]]:
  """The page kept for one URL group (smallest id) and the ones dropped."""
  ordered = sorted(pages, key=lambda p: p["id"])
  return ordered[0], ordered[1:]


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
  """(bands, rows) minimizing false positives + negatives at `threshold`, as datasketch.MinHashLSH picks them."""
  return _optimal_param(threshold, num_perm, 0.5, 0.5)


def minhash(text: str, shingle_size: int, num_perm: int) -> np.ndarray:
  """MinHash signature [num_perm] uint64 of the word `shingle_size`-grams of the lowercased text."""
  words = _WORD.findall(text.lower())
  shingles = {" ".join(words[i:i + shingle_size]) for i in range(max(len(words) - shingle_size + 1, 1))}
  signature = MinHash(num_perm=num_perm, seed=1)
  signature.update_batch([s.encode("utf-8") for s in shingles])
  return signature.hashvalues


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[str]:
  """One bucket key per band: band index + a hash of its rows (the LSH "AND" within a band, "OR" across)."""
  keys = []
  for band in range(bands):
    chunk = signature[band * rows:(band + 1) * rows].astype(np.uint64).tobytes()
    keys.append(f"{band}:" + hashlib.blake2b(chunk, digest_size=8).hexdigest())
  return keys


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.mean(a == b))


def near_duplicates_in_bucket(members: list[tuple[str, np.ndarray]], threshold: float) -> list[tuple[str, str]]:
  """(dropped id, kept id) for every member with a smaller-id member at estimated Jaccard >= threshold."""
  members = sorted(members, key=lambda m: m[0])
  dropped = []
  for index in range(1, len(members)):
    page_id, signature = members[index]
    for earlier_id, earlier in members[:index]:
      if jaccard(signature, earlier) >= threshold:
        dropped.append((page_id, earlier_id))
        break
  return dropped


def signature_bytes(signature: np.ndarray) -> bytes:
  return struct.pack(f"<{len(signature)}Q", *signature.tolist())


def signature_from_bytes(data: bytes) -> np.ndarray:
  return np.frombuffer(data, dtype="<u8").astype(np.uint64)


def dedup(pages: list[dict], *, shingle_size: int, num_perm: int, threshold: float, counts, progress=None):
  """In-process stage 2: the pages kept, sorted by id. `counts` gets dedup/url_duplicate, dedup/near_duplicate."""
  groups = {}
  for page in pages:
    groups.setdefault(url_key(page), []).append(page)
  unique = []
  for group in groups.values():
    kept, dropped = pick_first(group)
    unique.append(kept)
    counts.add("dedup/url_duplicate", n=len(dropped))
  bands, rows = lsh_params(threshold, num_perm)
  buckets = {}
  for page in (progress(unique) if progress else unique):
    signature = minhash(page["text"], shingle_size, num_perm)
    for key in band_keys(signature, bands, rows):
      buckets.setdefault(key, []).append((page["id"], signature))
  duplicates = {}
  for members in buckets.values():
    if len(members) > 1:
      for dropped_id, kept_id in near_duplicates_in_bucket(members, threshold):
        duplicates.setdefault(dropped_id, kept_id)
  counts.add("dedup/near_duplicate", n=len(duplicates))
  kept = sorted((p for p in unique if p["id"] not in duplicates), key=lambda p: p["id"])
  counts.add("dedup/kept", n=len(kept))
  counts.add("dedup/kept_tokens", n=sum(p.get("num_tokens", 0) for p in kept))
  return kept
