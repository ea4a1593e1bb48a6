"""Stage 5: 10-gram decontamination (paper §2.1) against the real GSM8K/MATH test sets, on real web text."""
import gzip
import json
import re

import pytest

from dsmath_jax import decontaminate


def _gsm8k(shared_data, n=200):
  rows = [json.loads(line) for line in (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[:n]]
  return rows, [("gsm8k", r["question"]) for r in rows] + [("gsm8k", r["answer"]) for r in rows]


def _web_page(shared_data):
  path = shared_data / "web" / "dolma_tests" / "cc_en_head-0091.jsonl.gz"
  pages = [json.loads(line)["text"] for line in gzip.open(path, "rt")]
  return next(p for p in pages if p.count("\n") >= 10)                  # a long page


def test_planted_gsm8k_question_is_removed_with_its_segment(shared_data):
  rows, texts = _gsm8k(shared_data)
  page = _web_page(shared_data)
  lines = page.split("\n")
  question = rows[7]["question"]
  # The copy is reformatted the way web pages do it: different case, spacing and punctuation.
  planted_segment = "Homework help! " + question.upper().replace(",", " ,").replace("  ", " ") + " Thanks."
  planted = "\n".join(lines[:3] + [planted_segment] + lines[3:])
  decon = decontaminate.Decontaminator(texts)
  assert not decon.is_contaminated(page)                   # the real page itself is clean
  assert decon.clean(page) == page
  assert decon.is_contaminated(planted)
  assert decon.clean(planted) == page.strip()              # exactly the planted segment is gone
  (hit,) = decon.hits(planted)
  assert hit["line"] == 3 and hit["rule"] == "10-gram" and hit["benchmark"] == "gsm8k"
  assert " ".join(hit["ngram"].split()) in " ".join(decontaminate.words(question))


def test_short_benchmark_text_uses_exact_matching(shared_data):
  _, texts = _gsm8k(shared_data, 20)
  short_answer = "three hundred twelve"                   # a 3-gram answer
  decon = decontaminate.Decontaminator(texts + [("cmath", short_answer)])
  hit = decon.segment_hit("The final count was Three Hundred Twelve apples.")
  assert hit == {"benchmark": "cmath", "ngram": "three hundred twelve", "rule": "exact"}
  assert decon.segment_hit("three hundred and twelve") is None        # not the same word sequence
  assert decontaminate.Decontaminator([("x", "two words")]).segment_hit("two words") is None   # < 3 grams
  # 9 words is still "short": only the whole sequence counts, not a part of it.
  nine = "alpha beta gamma delta epsilon zeta eta theta iota"
  decon = decontaminate.Decontaminator([("x", nine)])
  assert decon.segment_hit("pre " + nine + " post") and not decon.segment_hit("alpha beta gamma delta")


def test_gsm8k_calculator_annotations_do_not_hide_a_copy(shared_data):
  """A solutions site shows GSM8K answers without the `<<48/2=24>>` annotations: still a match."""
  rows, texts = _gsm8k(shared_data, 50)
  lines = [line for r in rows for line in r["answer"].split("\n") if "<<" in line and len(line.split()) >= 14]
  shown = re.sub(r"<<[^<>]*>>", "", lines[0])
  assert shown != lines[0]
  assert decontaminate.Decontaminator(texts).is_contaminated("Solution: " + shown)


def test_no_overlap_is_untouched(shared_data):
  _, texts = _gsm8k(shared_data)
  math_texts = [("math", json.loads(l)["problem"]) for l in
                (shared_data / "math" / "math500_test.jsonl").read_text().splitlines()]
  decon = decontaminate.Decontaminator(texts + math_texts)
  page = _web_page(shared_data)
  page, hits = decontaminate.decontaminate_page({"id": "p", "url": "u", "text": page}, decon)
  assert hits == [] and page["text"] == _web_page(shared_data)


def test_benchmark_files_load_and_missing_optional_is_reported(shared_data, tmp_path):
  from dsmath_jax.benchmarks import load
  texts, status = load.decontamination_set([
      dict(name="gsm8k", path=str(shared_data / "gsm8k" / "test.jsonl")),     # problem + solution
      dict(name="cmath", path=str(tmp_path / "absent.jsonl"), optional=True)])
  assert status["gsm8k"]["texts"] == 2 * 1319 and status["cmath"]["missing"]
  assert len(texts) == 2638
  with pytest.raises(FileNotFoundError, match="cmath"):
    load.decontamination_set([dict(name="cmath", path=str(tmp_path / "absent.jsonl"))])
