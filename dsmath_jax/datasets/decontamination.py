"""Removing SFT and RL records whose question appears in a benchmark test set.

Two rules, counted separately: normalized exact match of the question ('exact'), and
the paper's n-gram rule (§2.1, `dsmath_jax/decontaminate.py`, the same class the
corpus uses): a question sharing any 10-gram of words with a benchmark question is
removed, and benchmark questions of 3..9 words match as whole word sequences ('ngram').
The whole question is one segment (a MATH problem's line breaks are layout, not
paragraphs), so a 10-gram may span its lines.
"""
import re
import unicodedata

from dsmath_jax import decontaminate as corpus_decontaminate


def normalize(text: str) -> str:
  """NFKC, lower case, whitespace runs -> one space: the key of the exact-match rule."""
  return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


class BenchmarkIndex:
  """The benchmark test questions, ready for both rules. `ngram=0` turns the n-gram rule off."""

  def __init__(self, questions, *, ngram: int = 10, min_words: int = 3):
    """questions: strings or (benchmark name, question) pairs."""
    pairs = [q if isinstance(q, tuple) else ("benchmark", q) for q in questions]
    self.exact = {normalize(text): name for name, text in pairs}
    self.ngram = ngram
    self.matcher = corpus_decontaminate.Decontaminator(pairs, n=ngram, min_words=min_words) if ngram else None

  def hit(self, question: str) -> dict | None:
    """{'rule': 'exact' | 'ngram', 'benchmark': name, ...} for a contaminated question, else None."""
    name = self.exact.get(normalize(question))
    if name is not None:
      return {"rule": "exact", "benchmark": name}
    if self.matcher is not None:
      found = self.matcher.segment_hit(question)
      if found:
        return dict(found, rule="ngram", matched=found["rule"])
    return None


def decontaminate(records: list[dict], index: BenchmarkIndex | None) -> tuple[list[dict], dict]:
  """(records whose question is clean, counts {'exact': n, 'ngram': m, 'examples': [...]})."""
  removed = {"exact": 0, "ngram": 0, "examples": []}
  if index is None:
    return records, removed
  kept = []
  for record in records:
    found = index.hit(record["question"])
    if found is None:
      kept.append(record)
      continue
    removed[found["rule"]] += 1
    if len(removed["examples"]) < 5:
      removed["examples"].append(dict(id=record["id"], benchmark=found["benchmark"],
                                      ngram=found.get("ngram", ""), question=record["question"][:200]))
  return kept, removed
