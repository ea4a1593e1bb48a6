"""Corpus fuzz (issue 16): mutated real pages and archives never crash a reader or a stage, and every input record
is accounted for (pages + skipped-with-reason = records read). Stronger where the mutation allows it: a wrong
Content-Length costs only its own record (every neighbour reads as it did unmutated), a cut archive keeps every
record whose bytes arrived before the cut, a bad JSONL line costs only itself. Seeded, so every run draws the same
cases; record boundaries of the real files come from their own headers and expected outcomes from reading each
record alone, not from the reader under test reading the mutated archive."""
import gzip
import hashlib
import json
import random
import zlib

import pytest

from dsmath_jax import decontaminate, tokenizer
from dsmath_jax.corpus import classify, dedup, domains, langid, read, stages, store

SEED = 16
LIMITS = read.Limits(max_record_bytes=256 << 10)       # small, so an oversized record is cheap to build
WARC_FILES = ["web/commoncrawl_whirlwind/whirlwind.warc.gz", "web/commoncrawl_whirlwind/whirlwind.warc.wet.gz",
              "web/dolma_tests/science_0.warc.gz", "web/dolma_tests/science_1.warc.gz",
              "web/dolma_tests/warc_sample-0000.warc.gz", "web/resiliparse_tests/warcfile.warc.gz",
              "web/warcio_tests/example.warc.gz"]
JSONL_FILES = ["web/dolma_tests/cc_en_head-0091.jsonl.gz", "web/dolma_tests/topic_classification_dev.jsonl.gz"]
ASSETS = ["pages.warc.gz", "web.jsonl.gz", "random_pages.jsonl.gz", "seed.jsonl.gz"]


def _warc_records(data: bytes) -> list[bytes]:
  """The records of an intact WARC, cut at `header + Content-Length + CRLF CRLF` (the file's own framing)."""
  records, at = [], 0
  while at < len(data):
    head_end = data.index(b"\r\n\r\n", at) + 4
    length = int(next(line.split(b":", 1)[1] for line in data[at:head_end].split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    end = head_end + length + 4
    assert data.startswith(b"WARC/", at) and data[end - 4:end] == b"\r\n\r\n", at
    records.append(data[at:end])
    at = end
  return records


def _gunzip_prefix(data: bytes) -> bytes:
  """What zlib decompresses from (possibly cut) concatenated gzip members, stopping at the first fault."""
  out = []
  while data:
    decompressor = zlib.decompressobj(31)
    try:
      out.append(decompressor.decompress(data) + decompressor.flush())
    except zlib.error:
      break
    if not decompressor.eof:
      break
    data = decompressor.unused_data
  return b"".join(out)


@pytest.fixture(scope="module")
def pools(shared_data):
  root = shared_data
  from configs import corpus as corpus_config
  warc_paths = [root / p for p in WARC_FILES] + [f"{corpus_config.ASSETS}/{ASSETS[0]}"]
  jsonl_paths = [root / p for p in JSONL_FILES] + [f"{corpus_config.ASSETS}/{name}" for name in ASSETS[1:]]
  records = [r for p in warc_paths for r in _warc_records(gzip.decompress(open(p, "rb").read())) if len(r) < 40_000]
  lines = [line for p in jsonl_paths for line in gzip.decompress(open(p, "rb").read()).splitlines()[:60]
           if line.strip() and len(line) < 20_000]
  stackmathqa = (root / "web" / "stackmathqa" / "stackmathqa100k_available_shards.jsonl").read_bytes()
  lines += [json.dumps({"text": row["Q"] + "\n\n" + row["A"], "url": row["meta"]["url"]}).encode()
            for row in map(json.loads, stackmathqa.splitlines()[:40])]
  return records, lines


def _read(tmp_path, name: str, data: bytes, counts: read.Counts):
  path = tmp_path / name
  path.write_bytes(data)
  pages = list(read.read_file({}, str(path), counts, LIMITS))
  return [(p["url"], p["text"]) for p in pages]


class _Reference:
  """The outcome of each record read alone (a page or none): what it must give inside any archive."""

  def __init__(self, tmp_path):
    self.tmp_path, self.cache = tmp_path, {}

  def __call__(self, record: bytes, kind: str) -> list:
    key = (kind, hashlib.sha1(record).hexdigest())
    if key not in self.cache:
      counts = read.Counts()
      name = "alone.warc" if kind == "warc" else "alone.jsonl"
      self.cache[key] = _read(self.tmp_path, name, record if kind == "warc" else record + b"\n", counts)
      assert counts.counts["records"] == 1 and read.unaccounted(counts.counts) == 0, counts.counts
    return self.cache[key]


# --- Hostile payloads: a record each, with a correct Content-Length.

def _http(body: bytes, headers: bytes = b"Content-Type: text/html; charset=utf-8\r\n", status=b"200 OK") -> bytes:
  return b"HTTP/1.1 " + status + b"\r\n" + headers + b"\r\n" + body


def _warc(block: bytes, url: str = "http://fuzz.example/x", kind: str = "response") -> bytes:
  return (f"WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Target-URI: {url}\r\nContent-Type: application/http; "
          f"msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n").encode() + block + b"\r\n\r\n"


def _hostile_pages(rng: random.Random) -> list[bytes]:
  p = b"<p>The sum $\\sum_{k=1}^n k$ is even when n = 4m.</p>"
  return [
      _warc(_http(b"<math>" + b"<mrow>" * 5000 + b"<mi>x</mi>" + b"</mrow>" * 5000 + b"</math>" + p)),
      _warc(_http(b"<math>" + b"<mi>x</mi><mo>+</mo>" * 6000 + b"</math>" + p)),
      _warc(_http(b"<nav>" + b"<li><div>" * 20000 + b"</div>" * 20000 + b"</nav>" + p)),
      _warc(_http(b"<div>" * 50000 + p + b"</div>" * 50000)),
      _warc(_http(p + b"</" * 2000 + b"<!--" + b"x" * 3000)),
      _warc(_http(p + bytes(rng.randrange(256) for _ in range(3000)))),
      _warc(_http(p, b"Content-Type: text/html; charset=idna\r\n")),
      _warc(_http(p.replace(b"sum", b"\xff\xfe\xfd"), b"Content-Type: text/html; charset=x-no-such-codec\r\n")),
      _warc(_http(p, b"Content-Type: text/html; charset=rot13\r\n")),
      _warc(_http(p + b"<meta charset=utf-16>", b"Content-Type: text/html\r\n")),
      _warc(_http(b"this is not gzip" + p, b"Content-Type: text/html\r\nContent-Encoding: gzip\r\n")),
      _warc(_http(gzip.compress(b"<p>" + b"a" * (1 << 20) + b"</p>"), b"Content-Type: text/html\r\n"
                  b"Content-Encoding: gzip\r\n")),                          # expands past max_record_bytes
      _warc(_http(b"zz\r\n" + p + b"\r\n0\r\n\r\n", b"Content-Type: text/html\r\nTransfer-Encoding: chunked\r\n")),
      _warc(_http(p, status=b"9999999999999999999 ?")),
      _warc(b"not an http response at all\r\n\r\n" + p),
      _warc(_http(p), url="http://[::1/x"),
      _warc(_http(p), url="http://a.example:99999/y"),
      _warc(_http(p), url="http://a.example/" + "z" * 5000),
      _warc(_http(b"<p>" + b"x" * (300 << 10) + b"</p>")),                 # over max_record_bytes
      _warc(_http(p), kind="resource"),
      _warc(p, kind="conversion"),
      _warc(b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n" + _http(p), kind="resource"),
  ]


def _hostile_lines(rng: random.Random, line: bytes) -> list[bytes]:
  obj = json.loads(line)
  text_key = "text" if "text" in obj else next(iter(obj))
  return [
      line[:-1] + b', "n": ' + b"9" * 5000 + b"}",
      line[:-1] + b', "n": ' + b"[" * 300 + b"]" * 300 + b"}",
      line[:-1] + b', "n": ' + b"[" * 100000 + b"]" * 100000 + b"}",
      json.dumps({"text": [[["nested"]]] * 3, "url": {"a": [1, 2]}}).encode(),
      json.dumps({"text": 12345, "url": None}).encode(),
      b'{"text": "lone \\ud800 surrogate \\udfff", "url": "http://a.example/\\udc80"}',
      json.dumps({"text": "x", "url": "http://[::1"}).encode(),
      json.dumps({"text": "y", "url": "http://a:99999"}).encode(),
      b"\xef\xbb\xbf" + line, line.replace(b'"', b"", 1), line[: len(line) // 2], b"[1, 2, 3]", b'"just a string"',
      line[:-1] + b', "f": NaN, "g": -Infinity, "h": 1e99999}',
      line.replace(b" ", b"\xff", 3), line + b"\r", b"\x00" * 100, json.dumps({text_key: "t" * (300 << 10)}).encode(),
      bytes(rng.randrange(256) for _ in range(500)).replace(b"\n", b" "),
  ]


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
  data = bytearray(data)
  for _ in range(rng.choice([1, 1, 2, 5])):
    at = rng.randrange(max(len(data), 1))
    action = rng.choice(["flip", "delete", "insert", "duplicate"])
    if action == "flip" and data:
      data[at] ^= 1 << rng.randrange(8)
    elif action == "delete":
      del data[at:at + rng.randrange(1, 200)]
    elif action == "insert":
      data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 50)))
    else:
      data[at:at] = data[at:at + rng.randrange(1, 2000)]
  return bytes(data)


def _set_content_length(record: bytes, rng: random.Random) -> bytes:
  head_end = record.index(b"\r\n\r\n") + 4
  lines = record[:head_end].split(b"\r\n")
  index = next(i for i, line in enumerate(lines) if line.lower().startswith(b"content-length:"))
  length = int(lines[index].split(b":", 1)[1])
  new = rng.choice([length + 1, length + 13, length + 200, length * 2, length + 10**7, length - 1, length - 9,
                    length // 2, 0, "abc", "-5", "", str(10**30)])
  lines[index] = b"Content-Length: " + str(new).encode()
  return b"\r\n".join(lines) + record[head_end:]


def _check(counts: read.Counts, case: str):
  assert read.unaccounted(counts.counts) == 0, (case, dict(counts.counts))
  for reason in counts.counts:
    if reason.startswith(("skipped/", "damaged/")) and reason not in ("skipped/not_a_page_record",):
      assert counts.errors[reason], (case, reason)          # every fault names its file and place


def test_fuzz_readers_and_stages(tmp_path, pools):
  rng = random.Random(SEED)
  records, lines = pools
  reference = _Reference(tmp_path)
  totals = read.Counts()
  all_pages, tally = [], {"cases": 0, "crashes": 0, "records_in": 0}

  def run(name, data, case, expect_records=None, expect_pages=None):
    counts = read.Counts()
    pages = _read(tmp_path, name, data, counts)
    _check(counts, case)
    if expect_records is not None:
      assert counts.counts["records"] == expect_records, (case, dict(counts.counts))
    if expect_pages is not None:
      assert pages == expect_pages, case
    totals.merge(counts)
    tally["cases"] += 1
    all_pages.extend(pages)
    return counts

  hostile = _hostile_pages(rng)
  mutations = ["hostile"] * len(hostile) + [rng.choice(["content_length", "truncate", "bytes"]) for _ in range(60)]
  for case_index, mutation in enumerate(mutations):        # WARC archives of 6 real records, one mutation each
    chosen = rng.sample(records, 6)
    target = rng.randrange(len(chosen))
    case = f"warc case {case_index}: {mutation} on record {target}"
    expected = [reference(r, "warc") for r in chosen]
    if mutation in ("content_length", "hostile"):
      chosen[target] = _set_content_length(chosen[target], rng) if mutation == "content_length" else \
          hostile[case_index]
      others = [page for i, pages in enumerate(expected) if i != target for page in pages]
      for name, data in (("case.warc", b"".join(chosen)),
                         ("case.warc.gz", b"".join(gzip.compress(r, mtime=0) for r in chosen))):
        counts = read.Counts()
        pages = _read(tmp_path, name, data, counts)
        _check(counts, case)
        assert counts.counts["records"] == len(chosen), (case, name, dict(counts.counts))
        assert [p for p in pages if p in others] == others, (case, name)     # no neighbour lost or changed
        totals.merge(counts)
        all_pages.extend(pages)
        tally["cases"] += 1
    elif mutation == "truncate":
      members = [gzip.compress(r, mtime=0) for r in chosen]
      data = b"".join(members)
      cut = rng.randrange(len(data))
      arrived = _gunzip_prefix(data[:cut])
      ends = [sum(len(r) for r in chosen[:i + 1]) for i in range(len(chosen))]
      whole = sum(1 for end in ends if end - 4 <= len(arrived))     # block complete (its CRLF CRLF may be cut)
      partial = int(whole < len(chosen) and len(arrived) > (ends[whole - 1] if whole else 0))
      run("cut.warc.gz", data[:cut], case, expect_records=whole + partial,
          expect_pages=[p for pages in expected[:whole] for p in pages])
      plain = b"".join(chosen)
      cut = rng.randrange(len(plain))
      whole = sum(1 for end in ends if end - 4 <= cut)
      partial = int(whole < len(chosen) and cut > (ends[whole - 1] if whole else 0))
      run("cut.warc", plain[:cut], case, expect_records=whole + partial,
          expect_pages=[p for pages in expected[:whole] for p in pages])
    else:
      members = b"".join(gzip.compress(r, mtime=0) for r in chosen)
      run("bytes.warc.gz", _mutate_bytes(rng, members), case)
      run("bytes.warc", _mutate_bytes(rng, b"".join(chosen)), case)
      run("whole.warc.gz", _mutate_bytes(rng, gzip.compress(b"".join(chosen), mtime=0)), case)
    tally["records_in"] += len(chosen)

  kinds = len(_hostile_lines(rng, lines[0]))
  mutations = ["hostile"] * kinds + [rng.choice(["hostile", "truncate", "bytes"]) for _ in range(40)]
  for case_index, mutation in enumerate(mutations):        # JSONL files of 12 real lines, one mutation each
    chosen = rng.sample(lines, 12)
    target = rng.randrange(len(chosen))
    case = f"jsonl case {case_index}: {mutation} on line {target + 1}"
    expected = [reference(line, "jsonl") for line in chosen]
    if mutation == "hostile":
      hostile_lines = _hostile_lines(rng, chosen[target])
      chosen[target] = hostile_lines[case_index] if case_index < kinds else rng.choice(hostile_lines)
      others = [page for i, pages in enumerate(expected) if i != target for page in pages]
      data = b"\n".join(chosen) + b"\n"
      for name, blob in (("case.jsonl", data), ("case.jsonl.gz", gzip.compress(data, mtime=0))):
        counts = read.Counts()
        pages = _read(tmp_path, name, blob, counts)
        _check(counts, case)
        assert counts.counts["records"] == len(chosen), (case, name, dict(counts.counts))
        assert [p for p in pages if p in others] == others, (case, name)
        totals.merge(counts)
        all_pages.extend(pages)
        tally["cases"] += 1
    elif mutation == "truncate":
      data = gzip.compress(b"\n".join(chosen) + b"\n", mtime=0)
      cut = rng.randrange(len(data))
      arrived = _gunzip_prefix(data[:cut])
      whole = arrived.count(b"\n")
      partial = int(bool(arrived) and not arrived.endswith(b"\n"))
      run("cut.jsonl.gz", data[:cut], case, expect_records=whole + partial,
          expect_pages=[p for pages in expected[:whole] for p in pages])
    else:
      run("bytes.jsonl.gz", _mutate_bytes(rng, gzip.compress(b"\n".join(chosen) + b"\n", mtime=0)), case)
      run("bytes.jsonl", _mutate_bytes(rng, b"\n".join(chosen) + b"\n"), case)
    tally["records_in"] += len(chosen)

  # Every stage after reading takes every surviving page, however strange.
  assert read.unaccounted(totals.counts) == 0 and tally["cases"] > 200
  for reason in ("content_length_mismatch", "truncated_record", "record_too_large", "json_number_too_long",
                 "json_too_deep", "html_too_deep", "mathml_too_large", "malformed_warc_record", "bad_json"):
    assert totals.counts[f"skipped/{reason}"] > 0, reason      # each limit and fault was exercised
  pages = [read.make_page(url, text, "fuzz") for url, text in all_pages]
  byte_tokenizer = tokenizer.load_tokenizer("byte")
  for page in pages:
    page.update(lang=langid.heuristic_language(page["text"]), domain=domains.domain_of(page["url"]),
                num_tokens=len(byte_tokenizer.encode(page["text"])))
    classify.fasttext_line(page["text"], 3000)
  kept = dedup.dedup(pages, shingle_size=5, num_perm=32, threshold=0.8, counts=read.Counts())
  table = domains.domain_table(kept, {p["id"] for p in kept[::2]})
  domains.math_domains(table, 0.1, 1)
  store.write_records(str(tmp_path), kept)
  assert list(store.read_records(str(tmp_path))) == kept
  decontaminator = decontaminate.Decontaminator([("gsm8k", "Natalia sold clips to 48 of her friends in April")])
  survivors, _ = stages.decontaminate_pages(kept, decontaminator, read.Counts(), byte_tokenizer)
  half = len(survivors) // 2
  model = classify.train(survivors[:half], survivors[half:], str(tmp_path / "fuzz.bin"), dim=8, epoch=1,
                         min_count=1, bucket=1000, max_chars=3000)
  scores = classify.Scorer(model, 3000)([p["text"] for p in survivors])
  assert scores.shape == (len(survivors),) and ((scores >= 0) & (scores <= 1)).all()
  print(f"fuzz: {tally['cases']} cases, {tally['records_in']} records drawn, 0 crashes, "
        f"{totals.counts['records']} records read = {totals.counts['pages']} pages + "
        f"{totals.counts['records'] - totals.counts['pages']} skipped with a reason, 0 unaccounted; "
        f"reasons: {dict(sorted((k, v) for k, v in totals.counts.items() if '/' in k))}")



# --- Peak memory of a reader is bounded by the configured record size, whatever the input.

# The child's peak resident memory. Linux carries ru_maxrss across fork+exec (the forked copy of this pytest
# process, which just built a 50 MB page, would count), so the child reports VmHWM, which exec resets, and
# ru_maxrss only where there is no /proc.
_CHILD = """
import json, resource, sys
from dsmath_jax.corpus import read
counts = read.Counts()
pages = list(read.read_file({}, sys.argv[1], counts, read.Limits(max_record_bytes=int(sys.argv[2]))))
try:
  peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) * 1024
except OSError:
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak, "counts": dict(counts.counts)}))
"""
# Measured worst case: ~15 bytes of peak memory per byte of page at the limit (4 MiB of "a\\t" or 1 MiB of
# "<p>数学题</p>"); 24 leaves room for allocator noise.
BYTES_PER_RECORD_BYTE = 24


def _page(unit: bytes, size: int, body: bytes = b"<body>") -> bytes:
  http = _http(b"<html>" + body + unit * ((size - 200) // len(unit)) + b"</body></html>")
  return _warc(http, "http://big.example/page")


def _peak(path, limit: int) -> tuple[int, dict]:
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(limit)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=root), check=True)
  out = json.loads(result.stdout.strip().splitlines()[-1])
  return out["peak"], out["counts"]


def test_peak_memory_is_bounded_by_the_record_limit(tmp_path):
  """A 50 MB page (WARC and JSONL) is skipped without being held; pages just under a 1 MiB limit, built to be
  as costly as we found (tiny tags, tabs, CJK, one huge formula), stay within BYTES_PER_RECORD_BYTE x limit
  of the peak of reading a tiny page."""
  (tmp_path / "tiny.warc").write_bytes(_page(b"<p>a b</p>", 1000))
  baseline, _ = _peak(tmp_path / "tiny.warc", read.Limits().max_record_bytes)
  paragraph = b"<p>Let <script type=\"math/tex\">x^2+y^2=z^2</script> be a triple; then <b>x</b> or y is even.</p>\n"
  (tmp_path / "big.warc.gz").write_bytes(gzip.compress(_page(paragraph, 50 << 20), 1))
  (tmp_path / "big.jsonl.gz").write_bytes(gzip.compress(json.dumps({"text": "x = 1. " * (50 << 17)}).encode(), 1))
  limit = read.Limits().max_record_bytes
  for name in ("big.warc.gz", "big.jsonl.gz"):
    peak, counts = _peak(tmp_path / name, limit)
    assert counts["skipped/record_too_large"] == 1 and counts["records"] == 1, counts
    assert peak - baseline < BYTES_PER_RECORD_BYTE * limit, (name, peak, baseline)
    print(f"{name} (50 MiB page): peak {peak / 2**20:.1f} MiB, tiny page {baseline / 2**20:.1f} MiB")
  limit = 1 << 20
  for index, unit in enumerate([b"<p>a</p>", b"a\t", "<p>数学题</p>".encode(), b"<b>ab</b>", paragraph]):
    (tmp_path / f"edge{index}.warc").write_bytes(_page(unit, limit))
    peak, counts = _peak(tmp_path / f"edge{index}.warc", limit)
    assert counts["pages"] == 1, (unit, counts)
    assert peak - baseline < BYTES_PER_RECORD_BYTE * limit, (unit, peak - baseline)
    print(f"peak over baseline for 1 MiB of {unit[:12]!r}: {(peak - baseline) / 2**20:.1f} MiB")
  (tmp_path / "formula.warc").write_bytes(_page(b"<mi>x</mi><mo>+</mo>", limit, b"<body><math>"))
  peak, counts = _peak(tmp_path / "formula.warc", limit)
  assert counts["skipped/mathml_too_large"] == 1 and peak - baseline < BYTES_PER_RECORD_BYTE * limit, counts
