"""Decontamination by default against the paper's list (§2.1), read through the benchmark definitions.

With the default corpus config, sentences of benchmark problems (MATH test problems well past
MATH-500, GSM8K, CMATH) planted as paragraphs of real web pages are removed, and every other
line of each page stays.
"""
import gzip
import json
import re

import pytest

from configs import corpus as corpus_config
from configs import dataset as dataset_config
from dsmath_jax import decontaminate
from dsmath_jax.benchmarks import catalog, load


def _pages(shared_data, n=3):
  path = shared_data / "web" / "dolma_tests" / "cc_en_head-0174.jsonl.gz"
  pages = [json.loads(line)["text"] for line in gzip.open(path, "rt")]
  return [p for p in pages if p.count("\n") >= 8][:n]


def _sentence(problem: str) -> str:
  """The longest sentence of a problem (what a forum post would quote)."""
  sentences = re.split(r"(?<=[.?!])\s+", problem.replace("\n", " "))
  return max(sentences, key=lambda s: len(s.split()))


@pytest.fixture(scope="module")
def default_set(shared_data):
  config = corpus_config.get_config()
  return config, load.decontamination_set(config.decontaminate.benchmarks)


def test_default_corpus_config_reads_the_papers_list(default_set):
  config, (_, status) = default_set
  assert set(status) == {"gsm8k", "math", "cmath", "gaokao_mathcloze", "gaokao_mathqa"}
  assert status["math"]["questions"] == 5000 and status["gsm8k"]["questions"] == 1319
  assert status["cmath"]["questions"] == 1098 and not any(s.get("missing") for s in status.values())
  assert {b["name"] for b in dataset_config.get_config().decontamination.sets} == set(status)


def test_planted_benchmark_sentences_are_removed_and_the_rest_kept(shared_data, default_set):
  config, (texts, _) = default_set
  decon = decontaminate.Decontaminator(texts, config.decontaminate.n, config.decontaminate.min_words)
  math = load.questions("math", str(shared_data / catalog.get("math").path))
  math500 = {q["problem"] for q in load.questions("math500", str(shared_data / catalog.get("math500").path))}
  outside_500 = [q for q in math if q["problem"] not in math500]
  gsm8k = load.questions("gsm8k", str(shared_data / catalog.get("gsm8k").path))
  cmath = load.questions("cmath", str(shared_data / catalog.get("cmath").path))
  planted = [_sentence(outside_500[1234]["problem"]), _sentence(outside_500[3210]["problem"]),
             "Can anyone help with this? " + gsm8k[777]["problem"], cmath[500]["problem"]]
  assert all(len(decontaminate.words(p)) >= 10 for p in planted)       # a CJK character is a gram
  for page in _pages(shared_data):
    assert decon.hits(page) == []                                  # the real pages are clean
    lines = page.split("\n")
    mixed = "\n".join(lines[:2] + planted[:2] + lines[2:5] + planted[2:] + lines[5:])
    result, hits = decontaminate.decontaminate_page(dict(id="p", url="u", text=mixed), decon)
    assert sorted(h["benchmark"] for h in hits) == ["cmath", "gsm8k", "math", "math"]
    assert result["text"] == page.strip()                          # exactly the planted lines are gone
