"""Stage 2: URL normalization + MinHash LSH near-dup removal, checked against datasketch's own MinHashLSH."""
import gzip
import json
import random
import re

from datasketch import MinHash, MinHashLSH

from dsmath_jax.corpus import dedup, read


def test_normalize_url():
  same = ["https://www.MathOverflow.net/questions/123/?utm_source=x&b=2&a=1#answer-5",
          "http://mathoverflow.net:80/questions//123?a=1&b=2",
          "<http://mathoverflow.net/questions/123?b=2&a=1>"[1:-1]]
  assert len({dedup.normalize_url(u) for u in same}) == 1
  assert dedup.normalize_url(same[0]) == "http://mathoverflow.net/questions/123?a=1&b=2"
  assert dedup.normalize_url("mathoverflow.net/questions/1") == "http://mathoverflow.net/questions/1"
  assert dedup.normalize_url("https://a.org/x?id=1") != dedup.normalize_url("https://a.org/x?id=2")


def _cc_pages(shared_data, n=150):
  path = shared_data / "web" / "dolma_tests" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
  rows = [json.loads(line) for line in gzip.open(path, "rt")]
  rows = [r for r in rows if len(r["text"].split()) > 150][:n]
  return [read.make_page(r["metadata"]["url"], r["text"], "cc") for r in rows]


def _edited(text: str, rng: random.Random, fraction: float) -> str:
  """A near-copy: a few words replaced (what mirrors, reposts and boilerplate changes do)."""
  words = text.split()
  for index in rng.sample(range(len(words)), int(len(words) * fraction)):
    words[index] = "edited"
  return " ".join(words)


def _datasketch_minhash(text: str) -> MinHash:
  words = re.findall(r"\w+", text.lower())          # the documented shingling: lowercased word 5-grams
  signature = MinHash(num_perm=128, seed=1)
  signature.update_batch([" ".join(words[i:i + 5]).encode() for i in range(max(len(words) - 4, 1))])
  return signature


def test_near_duplicates_match_datasketch_lsh(shared_data):
  rng = random.Random(0)
  pages = _cc_pages(shared_data)
  copies = [read.make_page(p["url"] + "?mirror=1", _edited(p["text"], rng, 0.01), "copy") for p in pages[:20]]
  far = [read.make_page(p["url"] + "?v=2", _edited(p["text"], rng, 0.5), "far") for p in pages[20:30]]
  url_dups = [dict(p, id=p["id"][::-1]) for p in pages[30:35]]        # same URL, other content hash
  counts = read.Counts()
  kept = dedup.dedup(pages + copies + far + url_dups, shingle_size=5, num_perm=128, threshold=0.8, counts=counts)
  kept_ids = {p["id"] for p in kept}
  assert counts.counts["dedup/url_duplicate"] == 5
  # Reference: datasketch's MinHashLSH with the same signatures, queried page by page in id order.
  lsh, reference_dups = MinHashLSH(threshold=0.8, num_perm=128), set()
  everything = pages + copies + far + url_dups
  unique = sorted({dedup.url_key(p): p for p in sorted(everything, key=lambda p: p["id"], reverse=True)}
                  .values(), key=lambda p: p["id"])
  signatures = {p["id"]: _datasketch_minhash(p["text"]) for p in unique}
  for page in unique:
    signature = signatures[page["id"]]
    if any(signature.jaccard(signatures[other]) >= 0.8 for other in lsh.query(signature)):
      reference_dups.add(page["id"])
    else:
      lsh.insert(page["id"], signature)
  # The 20 planted copies, plus the real CC pages that are near-copies of each other (license boilerplate).
  assert len(reference_dups) >= 20 and counts.counts["dedup/near_duplicate"] == len(reference_dups)
  assert kept_ids == {p["id"] for p in unique} - reference_dups
  # LSH is probabilistic: at 1% edits (Jaccard ~0.9) at most one planted pair may slip through.
  both_kept = sum(o["id"] in kept_ids and c["id"] in kept_ids for o, c in zip(pages[:20], copies))
  assert both_kept <= 1
  assert all(p["id"] in kept_ids for p in far)                       # 50% edited: not a near-duplicate


def test_minhash_jaccard_estimate_tracks_exact_jaccard(shared_data):
  pages = _cc_pages(shared_data, 40)
  for a, b in zip(pages[::2], pages[1::2]):
    shingles = [set(" ".join(w[i:i + 5]) for i in range(len(w) - 4))
                for w in (dedup._WORD.findall(p["text"].lower()) for p in (a, b))]
    exact = len(shingles[0] & shingles[1]) / len(shingles[0] | shingles[1])
    estimate = dedup.jaccard(dedup.minhash(a["text"], 5, 256), dedup.minhash(b["text"], 5, 256))
    assert abs(exact - estimate) < 0.1
