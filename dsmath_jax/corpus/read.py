"""Stage 1 input: pages from WARC (HTML responses), WET (extracted text) and JSONL(.gz), local or fsspec (gs://, s3://).

A page record is a dict `{"id", "url", "text", "source"}`: `id` is a content hash (sha1 of url + text, 16 hex
digits) so every stage can order and deduplicate deterministically, whatever runner produced the records.
Nothing here raises on bad input, because one broken file in a Common Crawl dump must not stop a 100k-file run.
Every input record (a WARC record, a non-blank JSONL line) is counted under `records` and ends as exactly one
of `pages` or `skipped/<reason>`, with up to MAX_ERRORS_PER_REASON examples naming the file and record in
`errors`: records == pages + sum(skipped/*) (`unaccounted` checks it). `damaged/<reason>` counts faults of a
file rather than of a record (a cut or corrupt gzip stream, bytes between records that start no record) and
`repaired/<reason>` records that were kept after a fix (bytes that are not UTF-8). `Limits` bounds what one
record may cost: its size (so memory stays bounded whatever the input), JSON number length and nesting,
MathML nesting.
"""
import collections
import contextlib
import dataclasses
import hashlib
import io
import re
import zlib

import fsspec
from warcio.exceptions import ArchiveLoadFailed

from dsmath_jax import jsonl
from dsmath_jax.corpus import gunzip, html_to_text, warc_framing

_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xhtml")
MAX_ERRORS_PER_REASON = 20
# What warcio, zlib and the codecs raise on one bad record (a generator must not let StopIteration out).
_RECORD_ERRORS = (ArchiveLoadFailed, ValueError, LookupError, EOFError, zlib.error, OSError, StopIteration)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one input record may cost (config `read.*`); a record over a limit is skipped and counted."""
  # A WARC record's block, a JSONL line, a decoded HTTP payload. Common Crawl cuts captures at 1 MiB.
  max_record_bytes: int = 4 << 20
  max_html_depth: int = html_to_text.MAX_DEPTH            # MathML nesting
  max_json_depth: int = jsonl.MAX_DEPTH                   # arrays/objects in a JSONL line
  max_json_number_digits: int = jsonl.MAX_NUMBER_DIGITS   # digits of one integer literal

  @classmethod
  def from_config(cls, read_config) -> "Limits":
    """The limits named in the read section (missing keys keep their defaults)."""
    return cls(**{f.name: int(read_config[f.name]) for f in dataclasses.fields(cls) if f.name in read_config})


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


def unaccounted(counts: dict) -> int:
  """Records neither kept nor skipped with a reason (0 when every record was accounted for). After the read
  stage's language filter (stages.pages_of_file) the kept records are `kept`, the others `skipped/language_*`."""
  skipped = sum(n for reason, n in counts.items() if reason.startswith("skipped/"))
  return counts.get("records", 0) - counts.get("kept", counts.get("pages", 0)) - skipped


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
      except (LookupError, ValueError):            # unknown codec, or one without errors="replace" (idna)
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


def _clean_text(text: str, path: str, where: str, counts: Counts) -> str:
  """Lone surrogates (JSON "\\ud800") replaced by U+FFFD: later stages encode text as UTF-8."""
  if text.isascii() or not _SURROGATE.search(text):
    return text
  counts.add("repaired/lone_surrogates_replaced", path, where, "unpaired UTF-16 surrogate escapes")
  return _SURROGATE.sub("\ufffd", text)


@contextlib.contextmanager
def _open(path: str, counts: Counts):
  """(decompressed byte stream, its first 16 bytes, damage() -> what cut the gzip stream short or None, final
  at the end of the stream); the damage is counted once the stream was read."""
  with fsspec.open(path, "rb") as raw:
    magic = raw.read(2)
    raw.seek(0)
    salvager = None
    if magic == b"\x1f\x8b" or path.endswith(".gz"):
      stream, salvager = gunzip.open_gunzip(raw)
      first_bytes = stream.peek(16)[:16]
    else:
      stream, first_bytes = raw, raw.read(16)
      raw.seek(0)
    yield stream, first_bytes, lambda: salvager.damage if salvager is not None else None
  if salvager is not None and salvager.damage:
    counts.add("damaged/truncated_or_corrupt_gzip", path, "", salvager.damage)


def read_warc(path: str, counts: Counts, limits: Limits = Limits()):
  """Pages of a WARC (`response`/`resource` records with HTML) or WET (`conversion` records) file, record by
  record through warc_framing (Content-Length checked, never trusted) and gunzip (every record before a cut
  kept). A legacy ARC file (`filedesc://` first) is read by warcio alone."""
  with _open(path, counts) as (stream, first_bytes, _):
    if first_bytes.startswith(b"filedesc://"):
      yield from _read_arc(stream, path, counts, limits)
      return
    for frame in warc_framing.frames(stream, limits.max_record_bytes):
      if frame.index is None:
        counts.add(f"damaged/{frame.problem}", path, f"byte {frame.offset}", frame.detail)
        continue
      counts.add("records")
      where = f"record {frame.index} at byte {frame.offset}"
      if frame.problem:
        counts.add(f"skipped/{frame.problem}", path, where, frame.detail)
        continue
      try:
        record = _parse_record(frame.head, frame.block)
      except _RECORD_ERRORS as error:
        counts.add("skipped/malformed_warc_record", path, where, repr(error)[:200])
        continue
      page = _page_of_record(record, f"{path}#{frame.index}", path, where, counts, limits)
      if page is not None:
        yield page


def _parse_record(head: bytes, block: bytes):
  """warcio's reading of one framed record (HTTP headers, chunked and gzip/br transfer decoding)."""
  from warcio.archiveiterator import ArchiveIterator
  return next(iter(ArchiveIterator(io.BytesIO(head + block + b"\r\n\r\n"))))


def _read_arc(stream, path, counts, limits):
  from warcio.archiveiterator import ArchiveIterator
  index = -1
  try:
    for index, record in enumerate(ArchiveIterator(stream, arc2warc=True)):
      counts.add("records")
      yield from filter(None, [_page_of_record(record, f"{path}#{index}", path, f"record {index}", counts, limits)])
  except _RECORD_ERRORS as error:
    counts.add("damaged/malformed_arc", path, f"after record {index}", repr(error)[:200])


def _page_of_record(record, source: str, path: str, where: str, counts: Counts, limits: Limits) -> dict | None:
  """The page of one parsed WARC record, or None with the reason counted."""
  kind = record.rec_type
  url = _clean_url(record.rec_headers.get_header("WARC-Target-URI"))
  where = f"{where} ({url or kind})"
  try:
    if kind == "conversion":
      payload = _bounded_payload(record, limits)
      if payload is None:
        counts.add("skipped/record_too_large", path, where, f"text over {limits.max_record_bytes} bytes")
        return None
      text = _decode(payload, "utf-8", path, where, counts).strip()
    elif kind in ("response", "resource"):
      if kind == "response" and record.http_headers is not None:
        status = record.http_headers.get_statuscode()
        content_type = record.http_headers.get_header("Content-Type") or ""
        if status and not status.startswith("2"):
          counts.add("skipped/http_status_not_2xx", path, where, f"HTTP {status}")
          return None
      else:
        content_type = record.rec_headers.get_header("Content-Type") or ""
      if not content_type.lower().strip().startswith(_HTML_TYPES):
        counts.add("skipped/not_html", path, where, content_type[:80])
        return None
      payload = _bounded_payload(record, limits)
      if payload is None:
        counts.add("skipped/record_too_large", path, where, f"decoded HTTP payload over {limits.max_record_bytes} "
                   "bytes")
        return None
      charset = _charset(content_type) or _sniff_charset(payload)
      html = _decode(payload, charset, path, where, counts)
      text = html_to_text.html_to_text(html, limits.max_html_depth)
    else:
      counts.add("skipped/not_a_page_record", path, where, kind)      # warcinfo, request, metadata, revisit
      return None
  except html_to_text.TooComplex as error:
    counts.add(f"skipped/{error.reason}", path, where, str(error))
    return None
  except _RECORD_ERRORS as error:                  # HTTP headers or transfer encoding that do not parse
    counts.add("skipped/malformed_warc_record", path, where, repr(error)[:200])
    return None
  if not text:
    counts.add("skipped/empty_text", path, where, "no text after extraction")
    return None
  counts.add("pages")
  return make_page(_clean_text(url, path, where, counts), text, source)


def _bounded_payload(record, limits: Limits) -> bytes | None:
  """The decoded payload, or None when it is over max_record_bytes (a gzip-encoded page may expand 1000x)."""
  payload = record.content_stream().read(limits.max_record_bytes + 1)
  return None if len(payload) > limits.max_record_bytes else payload


def _lookup(record: dict, dotted: str):
  value = record
  for key in dotted.split("."):
    if not isinstance(value, dict) or key not in value:
      return None
    value = value[key]
  return value


def read_jsonl(path: str, counts: Counts, text_keys=("text",), url_keys=("url", "metadata.url", "meta.url", "id"),
               limits: Limits = Limits()):
  """Pages of a JSONL(.gz) file: text = the `text_keys` values joined by a blank line; url = first `url_keys` hit.
  Lines go through the shared parser (dsmath_jax/jsonl.py: number and nesting limits); a line longer than
  max_record_bytes is skipped without being held in memory."""
  with _open(path, counts) as (stream, _, damage):
    for line_number, line, size in _lines(stream, limits.max_record_bytes):
      where = f"line {line_number}"
      counts.add("records")
      if line is None:
        counts.add("skipped/record_too_large", path, where, f"{size} bytes > max_record_bytes "
                   f"{limits.max_record_bytes}")
        continue
      if not line.endswith(b"\n") and damage():
        counts.add("skipped/truncated_record", path, where, "the last line, cut by the damaged gzip stream")
        continue
      try:
        record = jsonl.parse_line(path, line_number, _decode(line, None, path, where, counts),
                                  max_depth=limits.max_json_depth, max_number_digits=limits.max_json_number_digits)
      except jsonl.BadRecordError as error:
        counts.add(f"skipped/{error.reason}", path, where, error.message[:160])
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
      yield make_page(_clean_text(_clean_url(url), path, where, counts), _clean_text(text, path, where, counts),
                      f"{path}#{line_number}")


def _lines(stream, max_bytes: int):
  """(line number, line bytes or None when longer than max_bytes, its size) for the non-blank lines."""
  line_number = 0
  while True:
    line = stream.readline(max_bytes + 1)
    if not line:
      return
    line_number += 1
    size = len(line)
    if size > max_bytes and not line.endswith(b"\n"):
      while not line.endswith(b"\n"):           # stream past the rest of the line
        line = stream.readline(1 << 16)
        if not line:
          break
        size += len(line)
      yield line_number, None, size
    elif line.strip():
      yield line_number, line, size


def read_file(spec: dict, path: str, counts: Counts, limits: Limits = Limits()):
  """Pages of one file of an input spec `{path, format="auto", text_keys, url_keys}`."""
  fmt = spec.get("format", "auto")
  fmt = detect_format(path) if fmt == "auto" else fmt
  if fmt not in ("warc", "wet", "jsonl"):
    raise ValueError(f"{path}: unknown format {fmt!r} (warc, wet, jsonl)")
  counts.add("files")
  try:
    if fmt in ("warc", "wet"):
      yield from read_warc(path, counts, limits)
    else:
      yield from read_jsonl(path, counts, tuple(spec.get("text_keys", ("text",))),
                            tuple(spec.get("url_keys", ("url", "metadata.url", "meta.url", "id"))), limits)
  except OSError as error:                         # a missing, unreadable or unreachable file
    counts.add("damaged/unreadable_file", path, "", repr(error)[:200])
