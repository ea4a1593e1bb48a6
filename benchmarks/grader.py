"""Grading throughput of the worker pool, and agreement with math-verify, on MATH-500.

  python benchmarks/grader.py [--workers 2] [--repeats 3] [--data ../shared/data/math/math500_test.jsonl]

Three workloads from the 500 MATH-500 records: "gold" grades each reference solution's boxed
answer against the record's answer (what a good model produces: decided in-process by the
string/numeric rules), "deranged" grades it against another record's answer (every pair is
unequal), "symbolic" keeps the pairs of 5 derangements that only sympy can decide (they all
go to the workers, so this one shows the pool's scaling). Each is timed on a warm pool (worker start-up
excluded) with 1 worker and with --workers, and once more with math-verify asked for a
second opinion (every pair then goes to the workers). Prints
answers graded per second, the pool speed-up, math-verify's agreement with our grader and
the pairs where they disagree, then one JSON line.
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from dsmath_jax.eval import benchmark  # noqa: E402
from dsmath_jax.grading import answer  # noqa: E402
from dsmath_jax.grading.grader import Grader, quick_compare  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "math", "math500_test.jsonl")


def derange(items: list, seed: int = 0) -> list:
  order = list(range(len(items)))
  random.Random(seed).shuffle(order)
  result = list(items)
  for k, i in enumerate(order):
    result[i] = items[order[(k + 1) % len(order)]]
  return result


def timed(pairs, workers: int, second_opinion: bool = False, repeats: int = 1, warm_pairs=()):
  """(verdicts, answers per second: the best of `repeats` fresh pools, each started and warm).

  `warm_pairs` (other answers: MATH train) are graded first: the LaTeX parser (antlr) builds its
  prediction caches as it meets new input, which halves the cost per answer after a few hundred
  answers; a long evaluation runs warm, so the timing should too.
  """
  best = 0.0
  for _ in range(repeats):
    with Grader(workers=workers, timeout_s=10.0, second_opinion=second_opinion) as grader:
      grader.start()                                          # every worker started
      grader.grade_many(list(warm_pairs))
      start = time.perf_counter()
      verdicts = grader.grade_many(pairs)
      best = max(best, len(pairs) / (time.perf_counter() - start))
  return verdicts, best


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--data", default=DATA)
  parser.add_argument("--warm_data", default=os.path.join(os.path.dirname(DATA), "train.jsonl"),
                      help="MATH train: answers graded before each timing to warm the parser")
  parser.add_argument("--repeats", type=int, default=3, help="fresh pools per timing; the best counts")
  args = parser.parse_args()
  questions = benchmark.load_questions(args.data)
  extracted = [answer.extract_answer(q["solution"]) for q in questions]
  deranged = list(zip(extracted, derange([q["answer"] for q in questions])))
  workloads = {"gold": list(zip(extracted, [q["answer"] for q in questions])), "deranged": deranged,
               # pairs only sympy can decide, from 5 derangements: ~500 distinct pairs
               "symbolic": sorted({pair for seed in range(5) for pair in zip(extracted, derange(
                   [q["answer"] for q in questions], seed)) if quick_compare(*pair) is None})}
  train = benchmark.load_questions(args.warm_data, split="train", limit=3000)  # other answers, no cache hits
  warm = [pair for pair in zip([q["answer"] for q in train], derange([q["answer"] for q in train]))
          if quick_compare(*pair) is None][:300]
  result = {"answers": len(questions), "workers": args.workers, "warm_up_pairs": len(warm)}
  for name, pairs in workloads.items():
    _, one = timed(pairs, 1, repeats=args.repeats, warm_pairs=warm)
    verdicts, many = timed(pairs, args.workers, repeats=args.repeats, warm_pairs=warm)
    both, with_mv = timed(pairs, args.workers, second_opinion=True)
    accuracy = 100.0 * sum(v.correct for v in verdicts) / len(verdicts)
    disagree = [(p, g, v.correct, v.math_verify) for (p, g), v in zip(pairs, both) if v.math_verify != v.correct]
    agreement = 100.0 * (1 - len(disagree) / len(pairs))
    timeouts = sum(v.status == "timeout" for v in verdicts)
    print(f"{name:9s} ({len(pairs)} pairs) ours: {accuracy:5.1f}% correct, {timeouts} timeouts | {one:7.1f} answers/s with 1 worker, "
          f"{many:7.1f} with {args.workers} (x{many / one:.2f}) | with math-verify too: {with_mv:6.1f}/s | "
          f"agreement with math-verify {agreement:.1f}% ({len(disagree)} pairs)")
    for prediction, gold, ours, theirs in disagree:
      print(f"    ours={ours!s:5} math_verify={theirs!s:5}  pred={prediction!r}  gold={gold!r}")
    result[name] = dict(pairs=len(pairs), accuracy=round(accuracy, 2), timeouts=timeouts, per_s_1_worker=round(one, 1),
                        per_s_workers=round(many, 1), speedup=round(many / one, 2),
                        per_s_with_math_verify=round(with_mv, 1), math_verify_agreement=round(agreement, 2),
                        disagreements=len(disagree))
  print(json.dumps(result))


if __name__ == "__main__":
  main()
