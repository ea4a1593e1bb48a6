"""Removing SFT and RL records whose question appears in a benchmark test set.

Two rules, each counted separately: normalized exact match of the question, and the
paper's n-gram rule (§2.1, used there for the corpus): a question sharing any 10-gram
with a benchmark question is removed; benchmark questions shorter than 10 words (but at
least 3) are matched as whole word sequences. When the corpus engineer's
`dsmath_jax/corpus/decontaminate.py` provides `Decontaminator`, `ngram_rule` below is the
place to use it (CORPUS_NGRAM_HOOK); until then the rule is implemented here on words.
"""
import re
import unicodedata


def normalize(text: str) -> str:
  """NFKC, lower case, whitespace runs -> one space: the key of the exact-match rule."""
  return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


def _words(text: str) -> list[str]:
  return re.findall(r"\w+", normalize(text))


class BenchmarkIndex:
  """Normalized questions and their n-grams of every benchmark test split."""

  def __init__(self, questions: list[str], *, ngram: int = 10, min_words: int = 3):
    self.ngram, self.min_words = ngram, min_words
    self.exact = {normalize(q) for q in questions}
    self.grams, self.short = set(), set()
    for question in questions:
      words = _words(question)
      if ngram and len(words) >= ngram:
        self.grams.update(tuple(words[i:i + ngram]) for i in range(len(words) - ngram + 1))
      elif len(words) >= min_words:
        self.short.add(" ".join(words))

  def reason(self, question: str) -> str | None:
    """'exact', 'ngram' or None (clean)."""
    if normalize(question) in self.exact:
      return "exact"
    if self.ngram and ngram_rule(self, question):
      return "ngram"
    return None


def ngram_rule(index: BenchmarkIndex, question: str) -> bool:
  """CORPUS_NGRAM_HOOK: the §2.1 10-gram rule on one question."""
  words = _words(question)
  n = index.ngram
  if any(tuple(words[i:i + n]) in index.grams for i in range(len(words) - n + 1)):
    return True
  if index.short:
    text = f" {' '.join(words)} "
    return any(f" {short} " in text for short in index.short)
  return False


def decontaminate(records: list[dict], index: BenchmarkIndex | None) -> tuple[list[dict], dict]:
  """(records whose question is clean, counts {'exact': n, 'ngram': m})."""
  removed = {"exact": 0, "ngram": 0}
  if index is None:
    return records, removed
  kept = []
  for record in records:
    reason = index.reason(record["question"])
    if reason:
      removed[reason] += 1
    else:
      kept.append(record)
  return kept, removed
