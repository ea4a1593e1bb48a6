"""Language identification for stage 1 (paper §2.1 keeps English and Chinese math pages).

With `model_path` set, fastText's lid.176 model (https://fasttext.cc/docs/en/language-identification.html)
labels each page. Without it, a documented heuristic that needs no file:
  - "zh" when CJK ideographs are >= 30% of the letters (ja/ko pages, with kana/hangul, are "ja"/"ko");
  - "en" when >= 80% of the letters are ASCII and >= 8% of the words are among 60 common English function
    words (math text full of LaTeX still passes: its prose has "the", "of", "is", "we", "let");
  - otherwise "other" (Latin-script non-English such as Spanish or German, Cyrillic, ...).
The heuristic is good enough to drop the non-English/Chinese junk of a small crawl; use lid.176 at scale.
"""
import re

_WORDS = re.compile(r"[A-Za-z]+")
_ENGLISH = frozenset(
    "the of and to a in is that it for as with was on be by this are we at from or an not have which can "
    "but if has its their they all there so one will then let be were been these when where what than "
    "some our more into only also any each such how who would".split())


def heuristic_language(text: str) -> str:
  sample = text[:5000]
  letters = cjk = kana = hangul = ascii_letters = 0
  for ch in sample:
    if ch.isalpha():
      letters += 1
      code = ord(ch)
      if code < 128:
        ascii_letters += 1
      elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
        cjk += 1
      elif 0x3040 <= code <= 0x30FF:
        kana += 1
      elif 0xAC00 <= code <= 0xD7AF:
        hangul += 1
  if not letters:
    return "other"
  if kana >= 0.1 * letters:
    return "ja"
  if hangul >= 0.3 * letters:
    return "ko"
  if cjk >= 0.3 * letters:
    return "zh"
  words = _WORDS.findall(sample)
  if ascii_letters >= 0.8 * letters and words:
    common = sum(1 for w in words if w.lower() in _ENGLISH)
    if common >= 0.08 * len(words):
      return "en"
  return "other"


class LanguageIdentifier:
  """`lang(text) -> str` with lid.176 (`model_path`) or the heuristic above (`model_path` empty)."""

  def __init__(self, model_path: str | None = None):
    self.model = None
    if model_path:
      import fasttext
      self.model = fasttext.load_model(model_path)

  def __call__(self, text: str) -> str:
    if self.model is None:
      return heuristic_language(text)
    labels, _ = self.model.predict(" ".join(text[:5000].split()), k=1)
    return labels[0].replace("__label__", "") if labels else "other"
