"""Does the grader decide real model-style answers correctly? Ours vs math-verify on the same pairs, and speed.

  python benchmarks/grader.py [--math 400 --math_train 200 --gsm8k 300] [--workers 2] [--out grader.json]

Pairs (model output, gold answer, is it right?) built from real data, not from the grader's rules:
- gold answers of MATH (test and train; train was never looked at while writing the rules) and
  GSM8K, each after its record's own reference reasoning (the \\boxed{} unwrapped, so the text
  holds many other numbers), stated the ways models state a final answer: boxed, "The answer
  is", "Answer:", "**Answer:**", "Final answer:", Minerva's "The final answer is $x$. I hope it is
  correct.", PRM800K's "# Answer", Chinese "所以答案是"; equivalent spellings of the gold
  (a/b for \\frac{a}{b}, decimals, \\dfrac, thousands separators, units, \\left( \\right), spaces,
  "x = ..."); label true;
- the same outputs with another record's gold (label: whether the two golds are the same string
  or number), and near misses of the gold (off by one, sign, x100 without a percent sign,
  reciprocal, swapped or comma-dropped tuple); label false;
- real model outputs: MathCoder-L-7B on SVAMP (filtered correct by its authors), ToRA corpus
  trajectories (correct), PRM800K phase-2 GPT-4 solutions whose final answer humans marked wrong.
Each pair is judged end to end by both graders: ours extracts (grading/answer.py) and compares
(Grader pool, strict rules); math-verify 0.9.0 parses the whole output and the boxed gold and
verifies. Prints accuracy per kind of rewrite for both, the pairs where either is wrong, and
answers/s of ours in one process on gold-like outputs (extraction + comparison, no worker).
"""
import argparse
import collections
import fractions
import json
import logging
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from dsmath_jax.benchmarks import readers  # noqa: E402
from dsmath_jax.grading import answer, kinds  # noqa: E402
from dsmath_jax.grading.grader import Grader  # noqa: E402

DATA = os.environ.get("DSMATH_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))

STYLES = {
    "boxed": lambda g: f"Therefore, the final result is $\\boxed{{{g}}}$.",
    "answer_is": lambda g: f"Putting this together, the answer is ${g}$.",
    "answer_colon": lambda g: f"\n\nAnswer: ${g}$",
    "bold_answer": lambda g: f"\n\n**Answer:** ${g}$",
    "final_answer": lambda g: f"\n\nFinal answer: ${g}$",
    "minerva": lambda g: f"\nFinal Answer: The final answer is ${g}$. I hope it is correct.",
    "prm800k": lambda g: f"\n\n# Answer\n\n{g}",
    "chinese": lambda g: f"\n所以答案是 ${g}$。",
}


def _same(a: str, b: str) -> bool:
  """The label of a shuffled pair, from the gold strings alone."""
  def plain(s):
    return re.sub(r"\s|\$|\\left|\\right|\\!|\\,", "", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
  try:
    return float(a.replace(",", "")) == float(b.replace(",", ""))
  except ValueError:
    return plain(a) == plain(b)


def equivalents(gold: str, problem: str) -> list[tuple[str, str]]:
  """(rule, the gold spelt another way models spell it)."""
  out = []
  if (m := re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold)) and int(m[3]) != 0:
    out += [("slash_fraction", f"{m[1]}{m[2]}/{m[3]}"), ("dfrac", f"{m[1]}\\dfrac{{{m[2]}}}{{{m[3]}}}")]
    value = fractions.Fraction(int(m[2]), int(m[3]))
    denominator = value.denominator
    while denominator % 2 == 0:
      denominator //= 2
    while denominator % 5 == 0:
      denominator //= 5
    if denominator == 1 and len(str(float(value))) <= 8:
      out.append(("decimal", f"{m[1]}{float(value)}"))
  if re.fullmatch(r"-?\d+", gold):
    if abs(int(gold)) >= 1000:
      out.append(("thousands", f"{int(gold):,}"))
    out += [("decimal_zeros", f"{gold}.00"), ("units", f"{gold}\\text{{ units}}")]
  if re.fullmatch(r"\(.*,.*\)", gold):
    out += [("tuple_spaces", re.sub(r"\s*,\s*", ", ", gold)), ("left_right", f"\\left({gold[1:-1]}\\right)")]
  if re.search(r"[+\-]", gold[1:]) and "\\" not in gold and len(gold) < 40:
    out.append(("spaces", re.sub(r"(?<=\S)([+\-])", r" \1 ", gold)))
  if "\\sqrt{" in gold and re.search(r"\\sqrt\{\d\}", gold):
    out.append(("sqrt_shorthand", re.sub(r"\\sqrt\{(\d)\}", r"\\sqrt\1", gold)))
  if "$x$" in problem and "x" not in gold and "=" not in gold and "," not in gold:
    out.append(("x_equals", f"x = {gold}"))
  return out


def near_misses(gold: str) -> list[tuple[str, str]]:
  """(rule, a wrong answer close to the gold)."""
  out = []
  if re.fullmatch(r"-?\d+", gold):
    n = int(gold)
    out.append(("off_by_one", str(n + 1)))
    if n != 0:
      out += [("sign", str(-n)), ("times_100", str(100 * n))]
  if (m := re.fullmatch(r"\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold)) and m[1] != m[2]:
    out.append(("reciprocal", f"\\frac{{{m[2]}}}{{{m[1]}}}"))
  if (m := re.fullmatch(r"\((-?\d+),\s*(-?\d+)\)", gold)):
    if m[1] != m[2]:
      out.append(("swapped_tuple", f"({m[2]}, {m[1]})"))
    if m[2] != "0" or m[1] != "0":
      out.append(("comma_dropped", f"{m[1]}{m[2].lstrip('-')}"))
  return out


def _body_math(solution: str) -> str:
  """A reference solution with its \\boxed{} unwrapped: reasoning full of other numbers."""
  for boxed in answer.boxed_answers(solution):
    solution = solution.replace(f"\\boxed{{{boxed}}}", boxed)
  return solution.strip()


def rewrite_pairs(records: list[dict], source: str, seed: int) -> list[dict]:
  rng = random.Random(seed)
  order = list(range(len(records)))
  rng.shuffle(order)
  others = {i: records[order[(k + 1) % len(order)]] for k, i in enumerate(order)}
  pairs = []
  for i, r in enumerate(records):
    gold, body = r["answer"], r["body"]

    def add(kind, final, label):
      pairs.append(dict(kind=kind, source=source, output=body + ("\n" if final[:1] != "\n" else "") + final,
                        gold=gold, label=label))
    for style, phrase in STYLES.items():
      add(style, phrase(gold), True)
    for rule, spelt in equivalents(gold, r["question"]):
      add(f"equivalent:{rule}", rng.choice([STYLES["boxed"], STYLES["answer_is"], STYLES["bold_answer"]])(spelt), True)
    other = others[i]["answer"]
    for style in rng.sample(sorted(STYLES), 2):
      add("shuffled", STYLES[style](other), _same(gold, other))
    for rule, wrong in near_misses(gold):
      add(f"near_miss:{rule}", rng.choice([STYLES["boxed"], STYLES["answer_colon"], STYLES["answer_is"]])(wrong), False)
  return pairs


def real_outputs() -> list[dict]:
  """Model outputs as their authors released them."""
  pairs = []
  with open(os.path.join(DATA, "mathcoder_svamp", "SVAMP_test_result-20230917-2303-correct.jsonl")) as f:
    for line in f:
      r = json.loads(line)
      parts = []
      for turn in r["debug_result"][2:]:
        fence = {"code": "```python\n{}\n```", "execution": "```output\n{}\n```"}.get(turn["role"], "{}")
        parts.append(fence.format(turn["content"]))
      gold = r["ground_truth"]["answer"]
      gold = str(int(gold)) if float(gold).is_integer() else str(gold)
      pairs.append(dict(kind="real:mathcoder_svamp", source="mathcoder", output="\n".join(parts), gold=gold, label=True))
  with open(os.path.join(DATA, "tora", "examples.jsonl")) as f:
    for line in f:
      r = json.loads(line)
      pairs.append(dict(kind="real:tora", source="tora", output=r["messages"][-1]["content"], gold=r["gt"], label=True))
  with open(os.path.join(DATA, "prm800k", "phase2_example_records.jsonl")) as f:
    for line in f:
      q = json.loads(line)["question"]
      pairs.append(dict(kind="real:prm800k_wrong", source="prm800k", output="\n\n".join(q["pre_generated_steps"]),
                        gold=q["ground_truth_answer"], label=False))
  return pairs


def ours(pairs, workers: int) -> list[bool]:
  extracted = [kinds.extract(p["output"], "math") for p in pairs]
  with Grader(workers=workers, timeout_s=10.0) as grader:
    return [v.correct for v in grader.grade_many([(e, p["gold"]) for e, p in zip(extracted, pairs)])]


def math_verify(pairs) -> list[bool]:
  import math_verify as mv
  logging.getLogger("math_verify").setLevel(logging.ERROR)
  verdicts = []
  for p in pairs:
    try:
      gold = mv.parse(f"\\boxed{{{p['gold']}}}", parsing_timeout=5)
      verdicts.append(bool(mv.verify(gold, mv.parse(p["output"], parsing_timeout=5), timeout_seconds=5)))
    except Exception:  # noqa: BLE001 -- a crash is a wrong decision for a right answer
      verdicts.append(False)
  return verdicts


def throughput(pairs, repeats: int = 3) -> float:
  """Answers/s of extraction + comparison in this process (no worker), on gold-like outputs."""
  with Grader(workers=1, timeout_s=10.0) as grader:
    grader.grade_many([(kinds.extract(p["output"], "math"), p["gold"]) for p in pairs[:50]])   # imports, caches
    best = 0.0
    for _ in range(repeats):
      start = time.perf_counter()
      verdicts = grader.grade_many([(kinds.extract(p["output"], "math"), p["gold"]) for p in pairs])
      best = max(best, len(pairs) / (time.perf_counter() - start))
    workers_used = grader.restarts + len(grader._workers)  # noqa: SLF001 -- 0: nothing left this process
  return best, workers_used, sum(v.correct for v in verdicts)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--math", type=int, default=400, help="MATH test records (every n-th of 5,000)")
  parser.add_argument("--math_train", type=int, default=200, help="MATH train records")
  parser.add_argument("--gsm8k", type=int, default=300, help="GSM8K test records")
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="")
  args = parser.parse_args()

  def sample(records, n):
    step = max(1, len(records) // n) if n else 1
    return records[::step][:n]

  def math_records(path, n):
    return [dict(answer=q["answer"], body=_body_math(q["solution"]), question=q["question"])
            for q in sample(list(readers.hendrycks_math(path)), n)]
  sources = {
      "math_test": math_records(os.path.join(DATA, "math", "test.jsonl"), args.math),
      "math_train": math_records(os.path.join(DATA, "math", "train.jsonl"), args.math_train),
      "gsm8k": [dict(answer=q["answer"], body=q["solution"], question=q["question"])
                for q in sample(list(readers.gsm8k(os.path.join(DATA, "gsm8k", "test.jsonl"))), args.gsm8k)]}
  pairs = [p for name, records in sources.items() for p in rewrite_pairs(records, name, args.seed)] + real_outputs()
  print(f"{len(pairs)} pairs ({sum(p['label'] for p in pairs)} right answers) from "
        + ", ".join(f"{name} {len(r)} records" for name, r in sources.items()) + " and real outputs")

  start = time.time()
  our_verdicts = ours(pairs, args.workers)
  our_seconds = time.time() - start
  start = time.time()
  mv_verdicts = math_verify(pairs)
  mv_seconds = time.time() - start

  by_kind = collections.defaultdict(lambda: [0, 0, 0])
  for p, o, m in zip(pairs, our_verdicts, mv_verdicts):
    group = p["kind"].split(":")[0] if p["kind"].startswith(("equivalent", "near_miss")) else p["kind"]
    for key in (group, p["kind"]) if group != p["kind"] else (group,):
      by_kind[key][0] += 1
      by_kind[key][1] += o == p["label"]
      by_kind[key][2] += m == p["label"]
  total = len(pairs)
  ours_right = sum(o == p["label"] for p, o in zip(pairs, our_verdicts))
  mv_right = sum(m == p["label"] for p, m in zip(pairs, mv_verdicts))
  print(f"\n{'kind':32s} {'pairs':>6s} {'ours %':>8s} {'math-verify %':>14s}")
  for kind in sorted(by_kind):
    n, o, m = by_kind[kind]
    flag = "  <-- ours below math-verify" if o < m else ""
    print(f"{kind:32s} {n:6d} {100 * o / n:8.2f} {100 * m / n:14.2f}{flag}")
  print(f"{'all':32s} {total:6d} {100 * ours_right / total:8.2f} {100 * mv_right / total:14.2f}")
  print(f"time: ours {our_seconds:.1f} s ({args.workers} workers), math-verify {mv_seconds:.1f} s (one process)")

  wrong = [(p["kind"], p["gold"], p["output"][-90:], o, m) for p, o, m in zip(pairs, our_verdicts, mv_verdicts)
           if o != p["label"]]
  print(f"\nours wrong on {len(wrong)} pairs:")
  for kind, gold, tail, o, m in wrong[:40]:
    print(f"  [{kind}] gold={gold!r} ours={o} math_verify={m} ...{tail!r}")

  gold_like = [p for p in pairs if p["kind"] in ("boxed", "answer_is") and p["label"]]
  per_s, processes, correct = throughput(gold_like)
  print(f"\nthroughput in one process on {len(gold_like)} gold-like outputs (boxed / 'The answer is'): "
        f"{per_s:.0f} answers/s, {correct} graded correct, worker processes started: {processes}")
  result = dict(pairs=total, right_answers=sum(p["label"] for p in pairs), ours_accuracy=round(100 * ours_right / total, 2),
                math_verify_accuracy=round(100 * mv_right / total, 2),
                by_kind={k: dict(pairs=v[0], ours=round(100 * v[1] / v[0], 2), math_verify=round(100 * v[2] / v[0], 2))
                         for k, v in sorted(by_kind.items())},
                answers_per_second_one_process=round(per_s), gold_like_pairs=len(gold_like),
                records={k: len(v) for k, v in sources.items()})
  print(json.dumps(result))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
