"""Corpus pipeline speed: pages/s per stage, and the classify stage against raw fastText `predict`.

  python benchmarks/corpus.py [--data /work/shared/data] [--repeat 3] [--classify_repeat 7]

Pages: the real web files in DATA/web (Common Crawl docs and WARC pages, StackMathQA), ~1.7k pages. The
classifier uses the paper's shape (dim 256, word n-grams 3; bucket 200K instead of 2M to spare memory).
"classify vs raw predict" = our scoring stage (preprocessing, batching, score records) divided by
`model.predict` alone on the same preprocessed lines (target <= 1.2x), and on the raw texts with only the
newlines removed (what a bare fastText call would see). The three run in turns (A B C A B C ..., --classify_repeat each), so
load from other jobs falls on all of them alike; the ratios are of the medians, and the load average is
printed with them. Prints one line per stage, then one JSON line.
"""
import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dsmath_jax import decontaminate  # noqa: E402
from dsmath_jax.corpus import classify, dedup, langid, read, stages  # noqa: E402


def _timed(function, repeat):
  best = float("inf")
  for _ in range(repeat):
    start = time.perf_counter()
    result = function()
    best = min(best, time.perf_counter() - start)
  return best, result


def _interleaved(functions: dict, repeat: int) -> dict:
  """Median seconds of each function, run in turns so that a load spike falls on all of them alike."""
  seconds = {name: [] for name in functions}
  for _ in range(repeat):
    for name, function in functions.items():
      start = time.perf_counter()
      function()
      seconds[name].append(time.perf_counter() - start)
  return {name: statistics.median(values) for name, values in seconds.items()}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data", default="/work/shared/data")
  parser.add_argument("--repeat", type=int, default=3)
  parser.add_argument("--classify_repeat", type=int, default=7)
  args = parser.parse_args()
  web = os.path.join(args.data, "web")
  files = [({"text_keys": ["Q", "A"], "url_keys": ["meta.url"]},
            os.path.join(web, "stackmathqa", "stackmathqa100k_available_shards.jsonl"))]
  files += [({}, p) for p in sorted(glob.glob(os.path.join(web, "dolma_tests", "CC-MAIN-*.jsonl.gz")))]
  warcs = [({}, p) for p in sorted(glob.glob(os.path.join(web, "*", "*.warc.gz")))]
  results = {}

  def read_all(specs):
    counts, pages = read.Counts(), []
    for spec, path in specs:
      pages += read.read_file(spec, path, counts)
    return pages

  seconds, pages = _timed(lambda: read_all(files), args.repeat)
  results["read_jsonl"] = len(pages) / seconds
  seconds, warc_pages = _timed(lambda: read_all(warcs), args.repeat)
  results["read_warc_html"] = len(warc_pages) / seconds
  pages += warc_pages
  identify = langid.LanguageIdentifier()
  seconds, _ = _timed(lambda: [identify(p["text"]) for p in pages], args.repeat)
  results["langid_heuristic"] = len(pages) / seconds
  tokenizer = stages.load_tokenizer("byte")
  for page in pages:
    page["num_tokens"] = len(tokenizer.encode(page["text"]))
  seconds, _ = _timed(lambda: dedup.dedup(pages, shingle_size=5, num_perm=128, threshold=0.8,
                                          counts=read.Counts()), 1)
  results["dedup_minhash"] = len(pages) / seconds

  math = [p for p in pages if "stackexchange" in p["url"] or "mathoverflow" in p["url"]]
  other = [p for p in pages if p not in math]
  with tempfile.TemporaryDirectory() as directory:
    model = classify.train(math, other, os.path.join(directory, "model.bin"), dim=256, lr=0.1, word_ngrams=3,
                           min_count=3, epoch=3, bucket=200_000, max_chars=20000)
  scorer = classify.Scorer(model, 20000)
  texts = [p["text"] for p in pages]

  def stage():
    scored = []
    for start in range(0, len(pages), 1024):
      batch = pages[start:start + 1024]
      scored += map(stages.score_record, batch, scorer([p["text"] for p in batch]))
    return scored

  lines = [classify.fasttext_line(t, 20000) for t in texts]
  raw_texts = [t.replace("\n", " ") for t in texts]
  load_before = os.getloadavg()[0]
  median = _interleaved({"stage": stage, "raw": lambda: model.predict(lines, k=2),
                         "bare": lambda: model.predict(raw_texts, k=2)}, args.classify_repeat)
  results["classify_stage"] = len(pages) / median["stage"]
  results["raw_predict_same_lines"] = len(pages) / median["raw"]
  results["classify_vs_raw_predict"] = median["stage"] / median["raw"]
  results["classify_vs_bare_predict_raw_texts"] = median["stage"] / median["bare"]
  results["classify_load_average_before"], results["classify_load_average_after"] = load_before, os.getloadavg()[0]

  rows = [json.loads(line) for line in open(os.path.join(args.data, "gsm8k", "test.jsonl"))]
  decon = decontaminate.Decontaminator([r["question"] for r in rows] + [r["answer"] for r in rows])
  seconds, _ = _timed(lambda: [decon.hits(p["text"]) for p in pages], args.repeat)
  results["decontaminate_gsm8k"] = len(pages) / seconds

  print(f"pages: {len(pages)} ({len(math)} math)")
  for name, value in results.items():
    unit = "x" if name.startswith("classify_vs") else "" if "load_average" in name else "pages/s"
    print(f"{name:40s} {value:12.2f} {unit}")
  print(json.dumps({"benchmark": "corpus", "pages": len(pages), **{k: round(v, 3) for k, v in results.items()}}))


if __name__ == "__main__":
  main()
