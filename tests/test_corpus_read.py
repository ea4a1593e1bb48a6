"""Stage 1: HTML -> text keeps mathematics; WARC/WET/JSONL readers on real Common Crawl files; bad input counted."""
import gzip
import io
import re
import zlib

from dsmath_jax.corpus import html_to_text, langid, read

WEB = "web"


def _pages(path, spec=None):
  counts = read.Counts()
  return list(read.read_file(spec or {}, str(path), counts)), counts


def test_mathjax_katex_mathml_survive_and_boilerplate_goes():
  html = """<html><head><title>T</title><style>p{color:red}</style><script>var tracker=1;</script></head><body>
  <nav><a href="/">Home</a> | <a href="/about">About</a></nav>
  <p>Let <script type="math/tex">x^2+1</script> be given and
     <script type="math/tex; mode=display">\\int_0^1 f(x)\\,dx</script></p>
  <p>KaTeX: <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>a</mi><mo>+</mo><mi>b</mi>
     </mrow><annotation encoding="application/x-tex">a+b</annotation></semantics></math></span>
     <span class="katex-html" aria-hidden="true">a+b</span></span> is rendered once.</p>
  <p>MathML: <math display="block"><mfrac><mi>π</mi><msqrt><mn>2</mn></msqrt></mfrac></math></p>
  <p>Inline TeX \\( E = mc^2 \\) and $y_1$ stay.</p><footer>Copyright 2024 Site</footer></body></html>"""
  text = html_to_text.html_to_text(html)
  assert "$x^2+1$" in text and "$$\\int_0^1 f(x)\\,dx$$" in text
  assert "KaTeX: $a+b$ is rendered once." in text                 # annotation, no duplicate glyphs
  assert "$$\\frac{\\pi}{\\sqrt{2}}$$" in text                      # hand-derived MathML -> LaTeX
  assert "\\( E = mc^2 \\)" in text and "$y_1$" in text
  for junk in ("Home", "About", "Copyright", "tracker", "color:red"):
    assert junk not in text, junk


def test_warc_extraction_agrees_with_common_crawl_wet(shared_data):
  """The same CC capture as WARC (our extractor) and WET (Common Crawl's): every word we extract is in CC's
  extraction, the article body is there, and the navigation CC's extractor keeps is gone."""
  (warc_page,), _ = _pages(shared_data / WEB / "commoncrawl_whirlwind" / "whirlwind.warc.gz")
  (wet_page,), _ = _pages(shared_data / WEB / "commoncrawl_whirlwind" / "whirlwind.warc.wet.gz")
  assert warc_page["url"] == wet_page["url"] == "https://an.wikipedia.org/wiki/Escopete"
  ours = re.findall(r"\w+", warc_page["text"].lower())
  theirs = set(re.findall(r"\w+", wet_page["text"].lower()))
  assert sum(w in theirs for w in ours) / len(ours) > 0.98
  body = "Escopete ye un municipio d'a provincia de Guadalachara"
  assert body in warc_page["text"] and body in wet_page["text"]
  assert "Menú principal" in wet_page["text"] and "Menú principal" not in warc_page["text"]
  assert langid.heuristic_language(wet_page["text"]) == "other"      # Aragonese, not English


def test_real_files_read_with_urls(shared_data):
  pages, counts = _pages(shared_data / WEB / "dolma_tests" / "warc_sample-0001.warc.gz")
  assert len(pages) == counts.counts["pages"] > 10
  assert all(p["url"].startswith("http") and not p["url"].startswith("<") for p in pages)   # wget <url> unwrapped
  pages, _ = _pages(shared_data / WEB / "stackmathqa" / "stackmathqa100k_available_shards.jsonl",
                    {"text_keys": ["Q", "A"], "url_keys": ["meta.url"]})
  assert len(pages) == 987 and pages[0]["url"].startswith("https://") and "$" in pages[0]["text"]
  pages, counts = _pages(shared_data / WEB / "resiliparse_tests" / "warcfile.warc.gz")
  assert len(pages) == 16 and counts.counts["repaired/decoded_as_declared_charset"] > 0


def _warc_response(url: str, html: bytes, declared_length: int | None = None) -> bytes:
  http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
  length = len(http) if declared_length is None else declared_length
  return (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {url}\r\n"
          f"Content-Type: application/http; msgtype=response\r\nContent-Length: {length}\r\n\r\n").encode() + \
      http + b"\r\n\r\n"


def test_bad_input_is_counted_with_reasons(tmp_path, shared_data):
  real = (shared_data / WEB / "dolma_tests" / "science_0.warc.gz").read_bytes()
  (tmp_path / "truncated.warc.gz").write_bytes(real[: len(real) // 2])
  (tmp_path / "garbage.warc").write_bytes(
      _warc_response("http://a.org/ok", b"<p>first page</p>") + b"NOT-A-WARC-HEADER\r\nfoo: bar\r\n\r\n" +
      _warc_response("http://a.org/next", b"<p>after the garbage</p>"))
  (tmp_path / "short.warc").write_bytes(_warc_response("http://a.org/cut", b"<p>cut short</p>", 500)[:-4])
  (tmp_path / "pages.warc").write_bytes(
      _warc_response("http://a.org/latin1", "<p>caf\xe9 au lait</p>".encode("latin-1")) +
      _warc_response("http://a.org/empty", b"<html><body><script>x()</script></body></html>"))
  (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(
      b'{"text": "caf\xe9 ok", "url": "http://a.org/1"}\n{not json}\n'
      b'{"text": "   ", "url": "http://a.org/2"}\n{"body": "x"}\n[1]\n'))
  (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"text": "one", "url": "u1"}\n' * 200)[:60])
  counts, pages = read.Counts(), []
  for name in ("truncated.warc.gz", "garbage.warc", "short.warc", "pages.warc", "bad.jsonl.gz", "cut.jsonl.gz"):
    pages += read.read_file({}, str(tmp_path / name), counts)
  got = counts.counts
  assert got["damaged/truncated_or_corrupt_gzip"] == 2, got
  # Junk after a record means its Content-Length does not frame it: that record is dropped, the next one read.
  assert got["skipped/content_length_mismatch"] == 1 and got["skipped/truncated_record"] == 3, got
  assert got["repaired/non_utf8_bytes_replaced"] == 2 and got["skipped/bad_json"] == 1, got
  assert got["skipped/empty_text"] == 2 and got["skipped/missing_text_field"] == 1, got
  assert got["skipped/not_a_json_object"] == 1 and read.unaccounted(got) == 0, got
  assert any("bad.jsonl.gz line 2" in e for e in counts.errors["skipped/bad_json"])
  assert any("garbage.warc record 0 at byte 0" in e for e in counts.errors["skipped/content_length_mismatch"])
  assert any("short.warc record 0" in e and "Content-Length of 500" in e
             for e in counts.errors["skipped/truncated_record"])
  texts = {p["url"]: p["text"] for p in pages}
  assert texts["http://a.org/1"] == "caf\ufffd ok" and texts["http://a.org/latin1"] == "caf\ufffd au lait"
  assert texts["http://a.org/next"] == "after the garbage"               # the neighbour after the damage
  assert "http://a.org/ok" not in texts and "http://a.org/cut" not in texts
  # Every complete line before the gzip cut is kept; the cut line is counted, not parsed.
  intact = zlib.decompressobj(31).decompress((tmp_path / "cut.jsonl.gz").read_bytes()).count(b"\n")
  assert sum(url == "u1" for url in (p["url"] for p in pages)) == intact > 0


def test_one_record_over_a_limit_is_skipped_with_file_record_and_reason(tmp_path):
  """Each limit of read.Limits on the record that breaks it, the records around it read as usual."""
  good = b'{"text": "kept", "url": "http://a.org/k"}'
  lines = [good, b'{"text": "n", "x": ' + b"7" * 5000 + b"}", b'{"text": "d", "x": ' + b"[" * 200 + b"]" * 200 + b"}",
           b'{"text": "r", "x": ' + b"[" * 10**5 + b"]" * 10**5 + b"}", b'{"text": "' + b"w" * 400_000 + b'"}', good]
  (tmp_path / "limits.jsonl").write_bytes(b"\n".join(lines) + b"\n")
  deep = b"<p>a <math>" + b"<mrow>" * 300 + b"<mi>x</mi>" + b"</mrow>" * 300 + b"</math></p>"
  (tmp_path / "limits.warc").write_bytes(
      _warc_response("http://a.org/deep", deep) +
      _warc_response("http://a.org/big", b"<p>" + b"y" * 400_000 + b"</p>") +
      _warc_response("http://a.org/ok", b"<p>fine</p>"))
  counts, limits = read.Counts(), read.Limits(max_record_bytes=300_000)
  pages = [p["url"] for name in ("limits.jsonl", "limits.warc")
           for p in read.read_file({}, str(tmp_path / name), counts, limits)]
  assert pages == ["http://a.org/k", "http://a.org/k", "http://a.org/ok"]
  got, errors = counts.counts, counts.errors
  assert got["skipped/json_number_too_long"] == 1 and got["skipped/json_too_deep"] == 2, got
  assert got["skipped/record_too_large"] == 2 and got["skipped/html_too_deep"] == 1, got
  assert got["records"] == 9 and read.unaccounted(got) == 0, got
  assert errors["skipped/json_number_too_long"] == [f"{tmp_path}/limits.jsonl line 2: a number of 5000 digits "
                                                    "(limit 4300)"]
  assert errors["skipped/json_too_deep"][0] == f"{tmp_path}/limits.jsonl line 3: nested deeper than 128 levels"
  assert f"{tmp_path}/limits.jsonl line 5: 400013 bytes > max_record_bytes 300000" in \
      errors["skipped/record_too_large"]
  assert errors["skipped/html_too_deep"] == [f"{tmp_path}/limits.warc record 0 at byte 0 (http://a.org/deep): "
                                             "MathML nested deeper than 128 elements"]


def test_content_length_damage_costs_only_its_record(tmp_path):
  """Too large (swallowing the next record), too small (a page cut short), not a number: each record is counted
  as such and its neighbours are read."""
  pages = [_warc_response(f"http://a.org/{i}", f"<p>page {i} says hello</p>".encode()) for i in range(4)]
  for declared, reason in ((400, "content_length_mismatch"), (70, "content_length_mismatch"),
                           ("x", "malformed_warc_record")):
    damaged = re.sub(rb"Content-Length: \d+", f"Content-Length: {declared}".encode(), pages[1], count=1)
    assert damaged != pages[1]
    for name, data in (("cl.warc", b"".join([pages[0], damaged] + pages[2:])),
                       ("cl.warc.gz", b"".join(gzip.compress(p) for p in [pages[0], damaged] + pages[2:]))):
      (tmp_path / name).write_bytes(data)
      counts = read.Counts()
      urls = [p["url"] for p in read.read_file({}, str(tmp_path / name), counts)]
      assert urls == ["http://a.org/0", "http://a.org/2", "http://a.org/3"], (declared, name, urls)
      assert counts.counts["records"] == 4 and counts.counts[f"skipped/{reason}"] == 1, counts.counts
      assert counts.errors[f"skipped/{reason}"][0].startswith(f"{tmp_path}/{name} record 1 at byte {len(pages[0])}")


def test_language_heuristic():
  assert langid.heuristic_language("Let $x$ be a prime. We show that the sum of the digits is even.") == "en"
  assert langid.heuristic_language("设 $x$ 为素数，证明各位数字之和为偶数。这是一个数学问题。") == "zh"
  assert langid.heuristic_language("Der Satz des Pythagoras gilt für jedes rechtwinklige Dreieck.") == "other"
