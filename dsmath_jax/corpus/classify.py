"""Stage 3: the fastText math classifier (paper §2.1) — train on seed positives vs random pages, score every page,
keep the best pages within a token budget.

Paper defaults: vector dimension 256, learning rate 0.1, word n-grams 3, minimum word count 3, 3 epochs; seed =
500K OpenWebMath positives vs 500K random Common Crawl negatives; round 1 kept the top-scoring 40B tokens.
Training uses one thread by default so that a run is reproducible bit for bit (fastText's Hogwild updates make
multi-threaded training order-dependent); scoring is deterministic either way.

The budget is applied through a histogram of tokens over `SCORE_BINS` score bins, so a Beam run (one small
combine over all pages) and the in-process run pick the same threshold: pages with score >= the lowest bin whose
tokens-above still fit the budget are kept (and they must reach `min_score`).
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

MATH, OTHER = "__label__math", "__label__other"
SCORE_BINS = 10000
# Characters split off as their own tokens: LaTeX and code punctuation are the strongest math signal.
# A backslash starts a token (`\int`, `\frac` stay whole); \( \) \[ \] become `$` like the other delimiters.
# One bytes.replace per character is ~2x faster than str.translate with multi-character targets; the four
# two-byte delimiters are one regex pass (a two-byte bytes.replace scans ~5x slower than a one-byte one).
_DELIMITERS = re.compile(rb"\\[()[\]]")
_SPLIT = tuple((ch.encode(), f" {ch} ".encode()) for ch in "${}^_=+-*/()[]|<>,.;:!?'\"&%#@~`")
_SPACES = ((b"\\", b" \\"), (b"\n", b" "), (b"\r", b" "), (b"\t", b" "))


def fasttext_bytes(text: str, max_chars: int = 20000) -> bytes:
  """The text as fastText reads it, UTF-8 without a newline: lowercased, punctuation split off, one line.

  The replacements run on the UTF-8 bytes: every target is ASCII, and an ASCII byte never occurs inside a
  multi-byte UTF-8 sequence, so they give the bytes of the same replacements on the str. Scanning one byte per
  ASCII character is ~2x faster than str scans of pages with any non-ASCII character (2 or 4 bytes per
  character), and fastText reads these bytes without a second encoding. Lowercasing first is the same as
  last: no letter lowercases to or from a target.
  """
  line = _DELIMITERS.sub(b"$", text[:max_chars].lower().encode())
  for old, new in _SPLIT + _SPACES:
    line = line.replace(old, new)
  return line


def fasttext_line(text: str, max_chars: int = 20000) -> str:
  """`fasttext_bytes` as a str (the training file's lines)."""
  return fasttext_bytes(text, max_chars).decode()


def stable_fraction(key: str, salt: str = "") -> float:
  """A uniform number in [0, 1) from a string: deterministic sampling that every worker agrees on."""
  digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
  return int.from_bytes(digest, "little") / 2.0**64


def training_lines(positives: list[dict], negatives: list[dict], max_chars: int) -> list[str]:
  lines = [f"{MATH} {fasttext_line(p['text'], max_chars)}" for p in positives]
  lines += [f"{OTHER} {fasttext_line(p['text'], max_chars)}" for p in negatives]
  keys = [p["id"] for p in positives] + [p["id"] for p in negatives]
  order = sorted(range(len(lines)), key=lambda i: stable_fraction(keys[i], "shuffle"))
  return [lines[i] for i in order]


def train(positives: list[dict], negatives: list[dict], model_path: str, *, dim=256, lr=0.1, word_ngrams=3,
          min_count=3, epoch=3, bucket=2000000, threads=1, max_chars=20000, seed=0):
  """Trains and saves a fastText classifier (`model_path`, .bin); returns the loaded model."""
  import fasttext
  if not positives or not negatives:
    raise ValueError(f"classifier needs positives and negatives; got {len(positives)} and {len(negatives)}")
  directory = os.path.dirname(model_path) or "."
  os.makedirs(directory, exist_ok=True)
  with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=directory, delete=False, encoding="utf-8") as f:
    f.write("\n".join(training_lines(positives, negatives, max_chars)) + "\n")
    train_file = f.name
  kwargs = dict(input=train_file, dim=dim, lr=lr, wordNgrams=word_ngrams, minCount=min_count, epoch=epoch,
                bucket=bucket, thread=threads, seed=seed, verbose=0)
  try:
    # A fresh process: fastText's float results depend on the process's floating-point state (a Beam
    # DirectRunner run in the same process changed the trained weights), and the runners must agree.
    result = subprocess.run([sys.executable, "-c", _FIT, json.dumps(kwargs), model_path],
                            capture_output=True, text=True)
    if result.returncode != 0:
      raise RuntimeError(f"fastText training on {train_file} failed:\n{result.stderr[-2000:]}")
  finally:
    os.remove(train_file)
  return fasttext.load_model(model_path)


_FIT = "import fasttext, json, sys; fasttext.train_supervised(**json.loads(sys.argv[1])).save_model(sys.argv[2])"


class Scorer:
  """P(math | page) for batches of texts with a trained model; `load` once per worker."""

  def __init__(self, model_or_path, max_chars: int = 20000):
    if isinstance(model_or_path, str):
      import fasttext
      model_or_path = fasttext.load_model(model_or_path)
    self.model = model_or_path
    self.max_chars = max_chars

  def __call__(self, texts: list[str]) -> np.ndarray:
    """[len(texts)] float32 probabilities of the math label."""
    if not texts:
      return np.zeros([0], np.float32)
    # fastText's own batch loop (C++), which `model.predict(list)` calls after copying every line to check it
    # for a newline and append one; these lines have none inside and end in theirs. The newline matters:
    # fastText reads it as the end-of-sentence token `</s>`, a word of every line it was trained on.
    lines = [fasttext_bytes(text, self.max_chars) + b"\n" for text in texts]
    labels, probs = self.model.f.multilinePredict(lines, 2, 0.0, "strict")
    return np.array([p[0] if l[0] == MATH else (p[1] if len(l) > 1 and l[1] == MATH else 1.0 - p[0])
                     for l, p in zip(labels, probs)], np.float32).clip(0.0, 1.0)


def score_bin(score: float) -> int:
  return min(int(score * SCORE_BINS), SCORE_BINS - 1)


def token_histogram(scores, num_tokens) -> np.ndarray:
  """[SCORE_BINS] int64 tokens per score bin (combinable by summing across workers)."""
  histogram = np.zeros([SCORE_BINS], np.int64)
  np.add.at(histogram, [score_bin(s) for s in scores], np.asarray(num_tokens, np.int64))
  return histogram


def budget_bin(histogram: np.ndarray, token_budget: int) -> int:
  """The lowest score bin such that the tokens of all bins at or above it fit `token_budget` (<= 0: no
  budget, bin 0). Pages with `score_bin(score) >= budget_bin` and `score >= min_score` are kept."""
  if token_budget <= 0:
    return 0
  total, lowest = 0, SCORE_BINS
  for index in range(SCORE_BINS - 1, -1, -1):
    if total + histogram[index] > token_budget:
      break
    total += histogram[index]
    lowest = index
  return lowest


def keep(score: float, threshold_bin: int, min_score: float) -> bool:
  return score_bin(score) >= threshold_bin and score >= min_score


def precision_recall(scores, labels, threshold: float = 0.5) -> dict:
  """Held-out precision/recall/F1 of `score >= threshold` against boolean labels."""
  predicted = np.asarray(scores) >= threshold
  labels = np.asarray(labels, bool)
  true_positive = int(np.sum(predicted & labels))
  precision = true_positive / max(int(predicted.sum()), 1)
  recall = true_positive / max(int(labels.sum()), 1)
  f1 = 2 * precision * recall / max(precision + recall, 1e-12)
  return dict(precision=precision, recall=recall, f1=f1, positives=int(labels.sum()),
              negatives=int((~labels).sum()), threshold=threshold)
