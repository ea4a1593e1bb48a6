"""Multi-member gzip reading that keeps every byte before the damage (Common Crawl .warc.gz, .jsonl.gz).

Python's gzip.GzipFile raises EOFError when a file ends inside a member, and its buffered reader drops what it
had decompressed for that read: the intact records just before the cut were lost, uncounted. `open_gunzip`
hands out every byte that decompressed, then ends the stream cleanly and says what went wrong in `damage`
(None for an intact file), so the readers keep and count every record before the cut and report the cut once.
Decompression runs in steps of at most CHUNK output bytes, so a gzip bomb costs one chunk of memory.
"""
import io
import zlib

CHUNK = 1 << 16
_MAGIC = b"\x1f\x8b"


class SalvagingGunzip(io.RawIOBase):
  """The decompressed bytes of concatenated gzip members; `damage` describes a cut or corrupt file."""

  def __init__(self, raw):
    self.raw = raw
    self.pending = b""           # compressed bytes not yet decompressed
    self.decompressor = None     # set inside a member
    self.compressed_offset = 0   # compressed bytes read so far (for messages)
    self.damage = None
    self.finished = False

  def readable(self):
    return True

  def readinto(self, buffer) -> int:
    while not self.finished:
      data = self._step(len(buffer))
      if data:
        buffer[:len(data)] = data
        return len(data)
    return 0

  def _fill(self) -> bool:
    more = self.raw.read(CHUNK)
    self.compressed_offset += len(more)
    self.pending += more
    return bool(more)

  def _stop(self, damage: str | None) -> bytes:
    self.damage, self.finished, self.pending = damage, True, b""
    return b""

  def _step(self, size: int) -> bytes:
    """Up to `size` decompressed bytes (possibly none, when only headers were consumed)."""
    if not self.pending and not self._fill():
      return self._stop(None if self.decompressor is None else
                        f"file ends inside a gzip member (after {self.compressed_offset} compressed bytes)")
    if self.decompressor is None:
      self.pending = self.pending.lstrip(b"\x00")    # zero padding after a member is allowed (as gzip.py)
      if len(self.pending) < 2 and not self._fill():
        return self._stop(None if not self.pending else "a stray byte after the last gzip member")
      if not self.pending:
        return b""
      if not self.pending.startswith(_MAGIC):
        return self._stop(f"not gzip data at compressed byte {self.compressed_offset - len(self.pending)}")
      self.decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
      data = self.decompressor.decompress(self.pending, size)
    except zlib.error as error:
      return self._stop(f"corrupt gzip member near compressed byte "
                        f"{self.compressed_offset - len(self.pending)}: {error}")
    if self.decompressor.eof:
      self.pending, self.decompressor = self.decompressor.unused_data, None
    else:
      self.pending = self.decompressor.unconsumed_tail
    return data


def open_gunzip(raw) -> tuple[io.BufferedReader, SalvagingGunzip]:
  """(buffered decompressed stream, the salvaging reader whose `damage` is final once the stream is at EOF)."""
  inner = SalvagingGunzip(raw)
  return io.BufferedReader(inner, CHUNK), inner
