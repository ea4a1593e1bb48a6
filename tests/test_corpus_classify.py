"""Stage 3-4 on real web data: the fastText math classifier (StackMathQA vs Common Crawl pages, held-out split),
the MathJax fixture page, the token budget, and domain discovery on planted 15% / 5% math domains."""
import glob
import gzip
import json

import numpy as np
import pytest

from dsmath_jax.corpus import classify, domains, read

HELDOUT = 0.2
TRAIN = dict(dim=64, lr=0.5, word_ngrams=3, min_count=1, epoch=5, bucket=100_000, max_chars=3000)


def _read(path, spec=None):
  return list(read.read_file(spec or {}, str(path), read.Counts()))


@pytest.fixture(scope="module")
def data(shared_data, tmp_path_factory):
  web = shared_data / "web"
  math = _read(web / "stackmathqa" / "stackmathqa100k_available_shards.jsonl",
               {"text_keys": ["Q", "A"], "url_keys": ["meta.url"]})
  general = _read(web / "dolma_tests" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
                  {"url_keys": ["metadata.url"]})
  for path in sorted(glob.glob(str(web / "dolma_tests" / "cc_en_head-*.jsonl.gz"))) + sorted(
      glob.glob(str(web / "dolma_tests" / "warc_sample-*.warc.gz"))) + [str(web / "resiliparse_tests" /
                                                                           "warcfile.warc.gz")]:
    general += _read(path)
  # 20 math + 200 general pages are set aside for the planted-domain test.
  planted_math, math = math[:20], math[20:]
  planted_general, general = general[:200], general[200:]
  heldout = lambda p: classify.stable_fraction(p["id"], "split") < HELDOUT
  model = classify.train([p for p in math if not heldout(p)], [p for p in general if not heldout(p)],
                         str(tmp_path_factory.mktemp("clf") / "model.bin"), **TRAIN)
  return dict(scorer=classify.Scorer(model, TRAIN["max_chars"]), test_math=[p for p in math if heldout(p)],
              test_general=[p for p in general if heldout(p)], planted_math=planted_math,
              planted_general=planted_general, web=web)


def test_heldout_precision_recall(data):
  pages = data["test_math"] + data["test_general"]
  labels = [True] * len(data["test_math"]) + [False] * len(data["test_general"])
  metrics = classify.precision_recall(data["scorer"]([p["text"] for p in pages]), labels)
  print("held-out classifier metrics:", json.dumps(metrics))
  assert metrics["positives"] > 150 and metrics["negatives"] > 80
  assert metrics["precision"] >= 0.9 and metrics["recall"] >= 0.9, metrics


def test_mathjax_page_is_kept_and_the_others_are_not(data):
  pages = _read(data["web"] / "dolma_tests" / "science_0.warc.gz") + _read(
      data["web"] / "dolma_tests" / "science_1.warc.gz")
  scores = dict(zip([p["url"].rsplit("/", 1)[-1] for p in pages], data["scorer"]([p["text"] for p in pages])))
  print("science fixture scores:", scores)
  assert set(scores) == {"math.html", "taylor.html", "games.html", "science.html"}
  assert scores["math.html"] >= 0.5
  assert max(scores["taylor.html"], scores["games.html"], scores["science.html"]) < 0.5


def test_domain_discovery_picks_15_percent_math_domain_not_5(data):
  """Two planted domains of 100 pages: 15 / 5 real math pages among real general pages. The classifier decides
  what is collected; discovery must flag the first (> 10% collected) and not the second."""
  def host(page, name, index, kind):
    return dict(page, url=f"https://{name}/{kind}/{index}", id=f"{name}-{index}")
  pool = [host(p, "fifteen.example.org", i, "q") for i, p in enumerate(data["planted_math"][:15])]
  pool += [host(p, "fifteen.example.org", 100 + i, "blog") for i, p in enumerate(data["planted_general"][:85])]
  pool += [host(p, "five.example.org", i, "q") for i, p in enumerate(data["planted_math"][15:20])]
  pool += [host(p, "five.example.org", 100 + i, "blog") for i, p in enumerate(data["planted_general"][85:180])]
  scores = data["scorer"]([p["text"] for p in pool])
  collected = {p["id"] for p, s in zip(pool, scores) if s >= 0.5}
  table = domains.domain_table(pool, collected)
  print({d: (row["collected"], row["total"]) for d, row in table.items()})
  assert domains.math_domains(table, min_fraction=0.10) == ["fifteen.example.org"]
  assert table["fifteen.example.org"]["paths"]["fifteen.example.org/q/"][1] >= 13


def _reference_line(text: str, max_chars: int) -> str:
  """The preprocessing spelled out on str (the scorer runs it on UTF-8 bytes, lowercasing first)."""
  text = text[:max_chars]
  for delimiter in ("\\(", "\\)", "\\[", "\\]"):
    text = text.replace(delimiter, "$")
  text = text.lower()
  for ch in "${}^_=+-*/()[]|<>,.;:!?'\"&%#@~`":
    text = text.replace(ch, f" {ch} ")
  return text.replace("\\", " \\").replace("\n", " ").replace("\r", " ").replace("\t", " ")


def test_scorer_equals_raw_fasttext_predict(data):
  """Scores of real pages (and uppercase non-ASCII, Windows newlines, tabs) equal raw fastText `predict` on the
  str lines, bit for bit: the scorer's bytes path and direct batch call change nothing."""
  pages = data["test_math"] + data["test_general"] + _read(data["web"] / "dolma_tests" / "science_0.warc.gz")
  texts = [p["text"] for p in pages] + ["ÀÉÎ İstanbul \u212a Straße ΣΑΣ \\(X^2\\)\tand\r\n\\[\\Int_A^B\\]",
                                        "日本語の\\frac{A}{B}ページ", "", " \n\n "]
  assert sum(not t.isascii() for t in texts) > 50 and sum("\\" in t for t in texts) > 50
  assert sum("\\(" in t or "\\[" in t for t in texts) >= 3
  assert sum(len(t) > TRAIN["max_chars"] and not t[:TRAIN["max_chars"]].isascii() for t in texts) > 10
  lines = [_reference_line(t, TRAIN["max_chars"]) for t in texts]
  assert [classify.fasttext_line(t, TRAIN["max_chars"]) for t in texts] == lines
  labels, probs = data["scorer"].model.predict(lines, k=2)
  expected = np.float32([dict(zip(l, p))[classify.MATH] for l, p in zip(labels, probs)]).clip(0.0, 1.0)
  scores = data["scorer"](texts)
  np.testing.assert_array_equal(scores, expected)
  assert [l[0] == classify.MATH for l in labels] == list(scores >= 0.5)
  assert 0 < (scores >= 0.5).sum() < len(texts)


def test_budget_threshold_matches_brute_force():
  rng = np.random.default_rng(0)
  scores, tokens = rng.random(5000), rng.integers(10, 2000, 5000)
  for budget in (0, 10_000, 1_000_000, 10**9):
    threshold_bin = classify.budget_bin(classify.token_histogram(scores, tokens), budget)
    kept = np.array([classify.keep(s, threshold_bin, 0.0) for s in scores])
    if budget == 0:
      assert kept.all()
      continue
    # Brute force: sort by score; bins are kept whole, so take whole bins from the top while they fit.
    bins = np.minimum((scores * classify.SCORE_BINS).astype(int), classify.SCORE_BINS - 1)
    per_bin = np.bincount(bins, weights=tokens, minlength=classify.SCORE_BINS)[::-1]
    fits = np.cumsum(per_bin) <= budget
    expected_bins = np.flatnonzero(fits[::-1]) if fits.all() else \
        classify.SCORE_BINS - 1 - np.arange(np.argmin(fits))
    assert set(np.unique(bins[kept])) == set(expected_bins) & set(np.unique(bins))
    assert tokens[kept].sum() <= budget


def test_fasttext_line_keeps_latex_tokens():
  line = classify.fasttext_line("Let \\(x^2\\) and\n\\[\\int_a^b f\\]")
  assert "\n" not in line and "\\int" in line.split() and line.split().count("$") == 4
