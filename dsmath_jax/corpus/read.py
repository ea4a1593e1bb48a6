"""Stage 1 input: pages from WARC (HTML responses), WET (extracted text) and JSONL(.gz), local or fsspec (gs://, s3://).

A page record is a dict `{"id", "url", "text", "source"}`: `id` is a content hash (sha1 of url + text, 16 hex
digits) so every stage can order and deduplicate deterministically, whatever runner produced the records.
Nothing here raises on bad input: truncated gzip, malformed WARC records, undecodable bytes, bad JSON and empty
pages are counted under a reason (`counts["skipped/<reason>"]`, `counts["repaired/<reason>"]`) with the file and
record position kept in `errors`, because one broken file in a Common Crawl dump must not stop a 100k-file run.
"""
import collections
import gzip
import hashlib
import json
import re
import zlib

import fsspec

from dsmath_jax.corpus import html_to_text

_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xhtml")
MAX_ERRORS_PER_REASON = 20


class Counts:
  """Reason -> count, plus up to MAX_ERRORS_PER_REASON examples `(file, where, detail)` per reason."""

  def __init__(self):
    self.counts = collections.Counter()
    self.errors = collections.defaultdict(list)

  def add(self, reason: str, path: str = "", where: str = "", detail: str = "", n: int = 1):
    self.counts[reason] += n
    if path and len(self.errors[reason]) < MAX_ERRORS_PER_REASON:
      self.errors[reason].append(f"{path} {where}: {detail}".strip())

  def merge(self, other: "Counts"):
    self.counts.update(other.counts)
    for reason, examples in other.errors.items():
      room = MAX_ERRORS_PER_REASON - len(self.errors[reason])
      self.errors[reason].extend(examples[:max(room, 0)])
    return self

  def to_json(self) -> dict:
    return {"counts": dict(sorted(self.counts.items())),
            "errors": {k: v for k, v in sorted(self.errors.items()) if v}}

  @classmethod
  def from_json(cls, data: dict) -> "Counts":
    result = cls()
    result.counts.update(data.get("counts", {}))
    for reason, examples in data.get("errors", {}).items():
      result.errors[reason] = list(examples)
    return result


def page_id(url: str, text: str) -> str:
  return hashlib.sha1(f"{url}\n{text}".encode("utf-8", "replace")).hexdigest()[:16]


def make_page(url: str, text: str, source: str) -> dict:
  return {"id": page_id(url, text), "url": url, "text": text, "source": source}


def detect_format(path: str) -> str:
  name = path.lower().rsplit("/", 1)[-1]
  if ".wet" in name:
    return "wet"
  if ".warc" in name or name.endswith(".arc.gz"):
    return "warc"
  if ".jsonl" in name or ".json" in name:
    return "jsonl"
  raise ValueError(f"{path}: cannot tell the format from the name; set `format` to warc, wet or jsonl")


def expand(pattern: str) -> list[str]:
  """Files matching a local path or glob, or an fsspec URL glob (gs://bucket/crawl/*.warc.gz); sorted."""
  if not any(ch in pattern for ch in "*?["):
    return [pattern]
  fs, _, paths = fsspec.get_fs_token_paths(pattern)
  protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
  prefix = "" if protocol in ("file", "local") else protocol + "://"
  return sorted(prefix + p for p in paths)


def _decode(payload: bytes, charset: str | None, path: str, where: str, counts: Counts) -> str:
  try:
    return payload.decode("utf-8")
  except UnicodeDecodeError as error:
    if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
      if charset.lower() in ("gb2312", "gbk"):
        charset = "gb18030"                         # pages labelled gb2312 are routinely gbk/gb18030
      try:
        text = payload.decode(charset, errors="replace")
        counts.add("repaired/decoded_as_declared_charset")
        return text
      except LookupError:
        pass
    counts.add("repaired/non_utf8_bytes_replaced", path, where, str(error)[:120])
    return payload.decode("utf-8", errors="replace")


def _charset(content_type: str | None) -> str | None:
  for part in (content_type or "").split(";")[1:]:
    key, _, value = part.strip().partition("=")
    if key.lower() == "charset":
      return value.strip().strip('"\'') or None
  return None


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def _sniff_charset(payload: bytes) -> str | None:
  """The `<meta charset>` / `http-equiv` charset in the first 4 KB of an HTML page, if any."""
  match = _META_CHARSET.search(payload[:4096])
  return match.group(1).decode("ascii") if match else None


def _clean_url(url: str) -> str:
  url = (url or "").strip()
  return url[1:-1] if url.startswith("<") and url.endswith(">") else url   # wget writes <url>


def read_warc(path: str, counts: Counts, fmt: str = "warc"):
  """Pages of a WARC (`response`/`resource` records with HTML) or WET (`conversion` records) file."""
  from warcio.archiveiterator import ArchiveIterator
  from warcio.exceptions import ArchiveLoadFailed
  index = -1
  try:
    with fsspec.open(path, "rb") as raw:
      # Python's gzip (not warcio's lenient inflater) so that a file cut inside a gzip member raises EOFError.
      stream = _StrictGzip(gzip.GzipFile(fileobj=raw)) if _is_gzip(raw) else raw
      for index, record in enumerate(ArchiveIterator(stream, arc2warc=True)):
        kind = record.rec_type
        url = _clean_url(record.rec_headers.get_header("WARC-Target-URI"))
        where = f"record {index} ({url or kind})"
        if kind == "conversion":
          text = _decode(record.content_stream().read(), "utf-8", path, where, counts).strip()
        elif kind in ("response", "resource"):
          if kind == "response" and record.http_headers is not None:
            status = record.http_headers.get_statuscode()
            content_type = record.http_headers.get_header("Content-Type") or ""
            if status and not status.startswith("2"):
              counts.add("skipped/http_status_not_2xx")
              continue
          else:
            content_type = record.rec_headers.get_header("Content-Type") or ""
          if not content_type.lower().strip().startswith(_HTML_TYPES):
            counts.add("skipped/not_html")
            continue
          payload = record.content_stream().read()
          if getattr(record.raw_stream, "limit", 0) > 0:   # fewer bytes than Content-Length: cut record
            counts.add("skipped/malformed_warc_record", path, where, "payload shorter than Content-Length")
            continue
          charset = _charset(content_type) or _sniff_charset(payload)
          html = _decode(payload, charset, path, where, counts)
          text = html_to_text.html_to_text(html)
        else:
          continue                                  # warcinfo, request, metadata, revisit: not pages
        if not text:
          counts.add("skipped/empty_text", path, where, "no text after extraction")
          continue
        counts.add("pages")
        yield make_page(url, text, f"{path}#{index}")
  except (TruncatedGzip, EOFError, zlib.error, gzip.BadGzipFile) as error:
    counts.add("skipped/truncated_or_corrupt_gzip", path, f"after record {index}", repr(error)[:200])
  except ArchiveLoadFailed as error:
    counts.add("skipped/malformed_warc_record", path, f"after record {index}", str(error)[:200])
  except (ValueError, OSError) as error:
    counts.add("skipped/malformed_warc_record", path, f"after record {index}", repr(error)[:200])


class TruncatedGzip(Exception):
  """A gzip stream ended inside a member (warcio would take the EOFError for a clean end of file)."""


class _StrictGzip:
  """A GzipFile whose EOFError (file cut inside a member) is raised as TruncatedGzip."""

  def __init__(self, gzip_file):
    self.gzip_file = gzip_file

  def read(self, size=-1):
    try:
      return self.gzip_file.read(size)
    except EOFError as error:
      raise TruncatedGzip(str(error)) from None

  def readline(self, size=-1):
    try:
      return self.gzip_file.readline(size)
    except EOFError as error:
      raise TruncatedGzip(str(error)) from None

  def tell(self):
    return self.gzip_file.tell()


def _is_gzip(stream) -> bool:
  magic = stream.read(2)
  stream.seek(0)
  return magic == b"\x1f\x8b"


def _lookup(record: dict, dotted: str):
  value = record
  for key in dotted.split("."):
    if not isinstance(value, dict) or key not in value:
      return None
    value = value[key]
  return value


def read_jsonl(path: str, counts: Counts, text_keys=("text",), url_keys=("url", "metadata.url", "meta.url", "id")):
  """Pages of a JSONL(.gz) file: text = the `text_keys` values joined by a blank line; url = first `url_keys` hit."""
  line_number = 0
  try:
    with fsspec.open(path, "rb") as raw:
      stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
      for line_number, line in enumerate(stream, 1):
        where = f"line {line_number}"
        if not line.strip():
          continue
        try:
          record = json.loads(_decode(line, None, path, where, counts))
        except json.JSONDecodeError as error:
          counts.add("skipped/bad_json", path, where, str(error)[:120])
          continue
        if not isinstance(record, dict):
          counts.add("skipped/bad_json", path, where, "not a JSON object")
          continue
        parts = [_lookup(record, key) for key in text_keys]
        if all(p is None for p in parts):
          counts.add("skipped/missing_text_field", path, where, f"none of {list(text_keys)}")
          continue
        text = "\n\n".join(str(p).strip() for p in parts if p is not None and str(p).strip())
        if not text:
          counts.add("skipped/empty_text", path, where, "empty text")
          continue
        url = next((str(u) for u in (_lookup(record, k) for k in url_keys) if u), "")
        counts.add("pages")
        yield make_page(_clean_url(url), text, f"{path}#{line_number}")
  except (EOFError, zlib.error, gzip.BadGzipFile) as error:
    counts.add("skipped/truncated_or_corrupt_gzip", path, f"after line {line_number}", repr(error)[:200])


def read_file(spec: dict, path: str, counts: Counts):
  """Pages of one file of an input spec `{path, format="auto", text_keys, url_keys}`."""
  fmt = spec.get("format", "auto")
  fmt = detect_format(path) if fmt == "auto" else fmt
  counts.add("files")
  if fmt in ("warc", "wet"):
    yield from read_warc(path, counts, fmt)
  elif fmt == "jsonl":
    yield from read_jsonl(path, counts, tuple(spec.get("text_keys", ("text",))),
                          tuple(spec.get("url_keys", ("url", "metadata.url", "meta.url", "id"))))
  else:
    raise ValueError(f"{path}: unknown format {fmt!r} (warc, wet, jsonl)")
