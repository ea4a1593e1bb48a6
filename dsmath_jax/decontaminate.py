"""Stage 5: benchmark decontamination (paper §2.1).

"Any text segment containing a 10-gram string that matches exactly with any sub-string from the evaluation
benchmarks is removed from our math training corpus. For benchmark texts that are shorter than 10 grams but have
at least 3 grams, we employ exact matching." Here a gram is a lowercased word (`\\w+`), or one CJK character
(Chinese has no spaces: as words, a CMATH question would be 2-4 "grams" and never match), so spacing,
punctuation and case do not hide a copy; a segment is a line of the page; GSM8K's calculator annotations `<<48/2=24>>` are
removed before matching. Short benchmark texts (3..9 words) match when they occur as a whole word sequence in a
segment. The dataset builders use the same class: `Decontaminator(texts).is_contaminated(text)` / `.clean(text)`.
The benchmark texts come from the benchmark definitions (`benchmarks.load.decontamination_set`).
"""
import re

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")
_CALCULATOR = re.compile(r"<<[^<>]*>>")


def words(text: str) -> list[str]:
  return _WORD.findall(_CALCULATOR.sub(" ", text).lower())


class Decontaminator:
  """Exact n-gram matcher against benchmark texts.

  `benchmark_texts`: an iterable of strings or of (name, string) pairs (the name is reported in hits).
  """

  def __init__(self, benchmark_texts, n: int = 10, min_words: int = 3):
    self.n, self.min_words = n, min_words
    self.ngrams = {}                 # "w1 ... wn" -> benchmark name
    self.short = {}                  # length -> {"w1 ... wk": benchmark name} for min_words <= k < n
    for item in benchmark_texts:
      name, text = item if isinstance(item, tuple) else ("benchmark", item)
      tokens = words(text)
      if len(tokens) >= n:
        for i in range(len(tokens) - n + 1):
          self.ngrams.setdefault(" ".join(tokens[i:i + n]), name)
      elif len(tokens) >= min_words:
        self.short.setdefault(len(tokens), {}).setdefault(" ".join(tokens), name)

  def segment_hit(self, segment: str) -> dict | None:
    """The first match in one segment: {"benchmark", "ngram", "rule": "10-gram" | "exact"}, or None."""
    tokens = words(segment)
    n = self.n
    for i in range(len(tokens) - n + 1):
      gram = " ".join(tokens[i:i + n])
      if gram in self.ngrams:
        return {"benchmark": self.ngrams[gram], "ngram": gram, "rule": f"{n}-gram"}
    for length, table in self.short.items():
      for i in range(len(tokens) - length + 1):
        gram = " ".join(tokens[i:i + length])
        if gram in table:
          return {"benchmark": table[gram], "ngram": gram, "rule": "exact"}
    return None

  def hits(self, text: str) -> list[dict]:
    """Every contaminated segment: its hit plus `line` (0-based) and the first 200 characters."""
    found = []
    for line_number, segment in enumerate(text.split("\n")):
      hit = self.segment_hit(segment)
      if hit:
        found.append(dict(hit, line=line_number, segment=segment[:200]))
    return found

  def is_contaminated(self, text: str) -> bool:
    return any(self.segment_hit(segment) for segment in text.split("\n"))

  def clean(self, text: str) -> str:
    """The text without its contaminated segments (unchanged when there is none)."""
    segments = text.split("\n")
    kept = [s for s in segments if not self.segment_hit(s)]
    return text if len(kept) == len(segments) else "\n".join(kept).strip()


def decontaminate_page(page: dict, decontaminator: Decontaminator) -> tuple[dict | None, list[dict]]:
  """(the cleaned page or None when nothing is left, the hits with the page's id and url)."""
  hits = decontaminator.hits(page["text"])
  if not hits:
    return page, []
  removed = {h["line"] for h in hits}
  text = "\n".join(s for i, s in enumerate(page["text"].split("\n")) if i not in removed).strip()
  hits = [dict(h, id=page["id"], url=page["url"]) for h in hits]
  return (dict(page, text=text) if text else None), hits
