"""WARC record boundaries, checked against Content-Length instead of trusted (ISO 28500 §4: a version line, header
lines, a blank line, a block of Content-Length bytes, CRLF CRLF, the next record).

warcio reads exactly Content-Length bytes and carries on from there: a value too large swallowed the records
after it into one page; a value too small returned a page cut short (warcio only printed a warning). Here a record
is good only when (1) no record start -- CRLF CRLF, `WARC/<version>`, a header field -- lies inside its block and
(2) its block is followed by blank lines and then the next `WARC/` line or the end of the file. A record that
fails is reported as `content_length_mismatch` and reading resumes at the next record start, so neighbours are
never lost. A block larger than `max_record_bytes` is streamed past in windows (never held in memory, still
checked for record starts inside it) and reported as `record_too_large`. Memory: one block of at most
`max_record_bytes` plus a 64 KiB window.

Caveat: a record whose block is itself a WARC file (a `resource` record archiving a .warc) looks like a record
with a too-large Content-Length, and is reported as one; its inner records are then read as records.
"""
import dataclasses
import re

WINDOW = 1 << 16
MAX_HEADER_BYTES = 1 << 16
_FIELD = rb"[A-Za-z][A-Za-z0-9_-]{0,63}:"
_VERSION = rb"WARC/\d{1,3}\.\d{1,3}"
# A record start at the beginning of a line (where reading resumes after damage).
_RECORD_START = re.compile(rb"(?m)^" + _VERSION + rb"\r?\n" + _FIELD)
# The end of one record and the start of the next, as found inside a block whose Content-Length is too large.
_BOUNDARY = re.compile(rb"\r\n\r\n(?=" + _VERSION + rb"\r\n" + _FIELD + rb")")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_NOT_NEWLINE = re.compile(rb"[^\r\n]")
_LOOKAHEAD = 96                       # bytes a _BOUNDARY match may need past its start


@dataclasses.dataclass
class Frame:
  """One record (`index` counts records from 0) or, with `index` None, bytes skipped between records."""
  index: int | None
  offset: int                         # byte offset in the (decompressed) stream
  head: bytes = b""                   # version line, header lines and the blank line
  block: bytes | None = None          # the Content-Length bytes; None when `problem` is set
  problem: str | None = None          # content_length_mismatch | record_too_large | malformed_warc_record |
  detail: str = ""                    #   truncated_record | junk_between_records (index None)


class _Buffer:
  """A window over the stream: data[pos:] is unread; base is the stream offset of data[0]."""

  def __init__(self, stream):
    self.stream, self.data, self.pos, self.base, self.eof = stream, bytearray(), 0, 0, False

  @property
  def offset(self) -> int:
    return self.base + self.pos

  def available(self) -> int:
    return len(self.data) - self.pos

  def fill(self, size: int) -> bool:
    """At least `size` unread bytes buffered, unless the stream ends first (then False)."""
    if self.pos >= WINDOW and self.available() < size:
      del self.data[:self.pos]
      self.base, self.pos = self.base + self.pos, 0
    while self.available() < size and not self.eof:
      chunk = self.stream.read(max(size - self.available(), WINDOW))
      if chunk:
        self.data += chunk
      else:
        self.eof = True
    return self.available() >= size

  def skip_newlines(self):
    while self.fill(1):
      match = _NOT_NEWLINE.search(self.data, self.pos)
      if match:
        self.pos = match.start()
        return
      self.pos = len(self.data)

  def resync(self, start: int) -> int:
    """Moves to the first record start after buffer index `start`; returns how many bytes that skipped."""
    origin = self.base + self.pos
    self.pos = max(self.pos, start)
    while True:
      self.fill(WINDOW)
      match = _RECORD_START.search(self.data, self.pos)
      if match:
        self.pos = match.start()
        return self.offset - origin
      if self.eof:
        self.pos = len(self.data)
        return self.offset - origin
      # A record start may straddle the window's end: keep its longest possible prefix.
      self.pos = max(self.pos, len(self.data) - _LOOKAHEAD)
      self.fill(self.available() + WINDOW)


def frames(stream, max_record_bytes: int):
  """The records of an uncompressed WARC byte stream (anything with `read(n)`), as Frames; never raises on
  bad framing (the problem is in the Frame)."""
  buffer, index = _Buffer(stream), 0
  while True:
    buffer.skip_newlines()
    if not buffer.fill(1):
      return
    start = buffer.offset
    buffer.fill(16)
    if buffer.eof and buffer.available() < 5 and b"WARC/".startswith(bytes(buffer.data[buffer.pos:])):
      yield Frame(index, start, problem="truncated_record", detail="the file ends inside the WARC version line")
      return
    if not buffer.data.startswith(b"WARC/", buffer.pos):
      skipped = buffer.resync(buffer.pos + 1)
      yield Frame(None, start, problem="junk_between_records", detail=f"{skipped} bytes that start no WARC record")
      continue
    frame = Frame(index, start)
    index += 1
    end = _find_header_end(buffer)
    if end is None:
      if buffer.eof and buffer.available() < MAX_HEADER_BYTES:
        frame.problem, frame.detail = "truncated_record", "the file ends inside the WARC header"
        yield frame
        return
      frame.problem, frame.detail = "malformed_warc_record", f"no blank line within {MAX_HEADER_BYTES} header bytes"
      buffer.resync(buffer.pos + 1)
      yield frame
      continue
    frame.head = bytes(buffer.data[buffer.pos:end])
    buffer.pos = end
    length = _content_length(frame.head)
    if length is None:
      frame.problem, frame.detail = "malformed_warc_record", "no valid Content-Length header"
      buffer.resync(buffer.pos)
      yield frame
      continue
    problem = None
    if length <= max_record_bytes:
      complete = buffer.fill(length + _LOOKAHEAD) or buffer.available() >= length
      inside = _BOUNDARY.search(buffer.data, buffer.pos, min(len(buffer.data), buffer.pos + length + _LOOKAHEAD))
      if inside and inside.start() < buffer.pos + length:
        problem = ("content_length_mismatch", f"the next record starts {inside.start() - buffer.pos} bytes "
                         f"into the declared Content-Length of {length}")
        buffer.pos = inside.end()
      elif not complete:
        problem = ("truncated_record", f"the file ends {buffer.available()} bytes into the declared "
                         f"Content-Length of {length}")
        buffer.pos = len(buffer.data)
      else:
        frame.block = bytes(buffer.data[buffer.pos:buffer.pos + length])
        buffer.pos += length
    else:
      problem = _stream_past(buffer, length, max_record_bytes)
    if problem is None or problem[0] == "record_too_large":
      trailer_problem = _check_trailer(buffer, length)
      if trailer_problem:
        problem, frame.block = trailer_problem, None
    if problem:
      frame.problem, frame.detail = problem
    yield frame


def _find_header_end(buffer: _Buffer) -> int | None:
  """Buffer index just past the blank line ending the header, or None (none within MAX_HEADER_BYTES)."""
  searched = 0
  while True:
    match = _HEADER_END.search(buffer.data, buffer.pos + max(searched - 4, 0),
                               buffer.pos + min(buffer.available(), MAX_HEADER_BYTES))
    if match:
      return match.end()
    searched = buffer.available()
    if searched >= MAX_HEADER_BYTES or not buffer.fill(searched + 4096):
      match = _HEADER_END.search(buffer.data, buffer.pos, buffer.pos + min(buffer.available(), MAX_HEADER_BYTES))
      return match.end() if match else None


def _content_length(head: bytes) -> int | None:
  for line in head.split(b"\n")[1:]:
    name, _, value = line.partition(b":")
    if name.strip().lower() == b"content-length":
      value = value.strip()
      return int(value) if value.isdigit() and len(value) < 19 else None
  return None


def _stream_past(buffer: _Buffer, length: int, max_record_bytes: int):
  """Skips a block too large to hold, window by window, still looking for a record start inside it."""
  end = buffer.offset + length
  while buffer.offset < end:
    buffer.fill(min(end - buffer.offset, WINDOW) + _LOOKAHEAD)
    if buffer.available() == 0:
      return "truncated_record", f"the file ends {length - (end - buffer.offset)} bytes into the declared " \
                                 f"Content-Length of {length}"
    window_end = buffer.pos + min(end - buffer.offset, buffer.available())
    inside = _BOUNDARY.search(buffer.data, buffer.pos, min(len(buffer.data), window_end + _LOOKAHEAD))
    if inside and inside.start() < window_end:
      at = buffer.base + inside.start() - (end - length)
      buffer.pos = inside.end()
      return "content_length_mismatch", f"the next record starts {at} bytes into the declared Content-Length " \
                                        f"of {length}"
    buffer.pos = window_end
  return "record_too_large", f"Content-Length {length} > max_record_bytes {max_record_bytes}"


def _check_trailer(buffer: _Buffer, length: int):
  """After a block: blank lines, then a `WARC/` line or the end of the file; else the length was wrong."""
  block_end = buffer.pos
  buffer.skip_newlines()
  buffer.fill(5)
  if buffer.available() == 0 or buffer.data.startswith(b"WARC/", buffer.pos):
    return None
  skipped = buffer.resync(block_end)
  return "content_length_mismatch", f"the declared Content-Length of {length} is not followed by the next " \
                                    f"record ({skipped} bytes to the next record start)"
