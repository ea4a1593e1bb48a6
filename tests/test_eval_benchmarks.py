"""Every built-in benchmark, read from its released file and graded through the eval task in
predictions mode (no field override): its gold answers, phrased the ways models phrase them,
grade 100% correct; each record given another record's gold (a derangement) grades incorrect,
except where the two gold answers are the same (the expected hits are computed from the gold
strings alone, not by the grader).

Phrasings (written here from how models answer, not from the extractor): boxed; "The answer
is X"; "**Answer:** X"; "Final answer: X"; Minerva's "The final answer is $X$. I hope it is
correct."; for multiple choice the letter ("(B)", "\\boxed{B}", "答案是 B"), the option text,
or both; for Chinese sets "所以答案是 X。" / "答案：X"; for several blanks one box per blank or
"答案是 $a$；$b$".
"""
import json
import random
import re

import pytest

from configs import eval as eval_config
from dsmath_jax.benchmarks import catalog, load
from dsmath_jax.eval import task

MATH_PHRASINGS = (
    lambda g: f"Putting it together we get $\\boxed{{{g}}}$.",
    lambda g: f"We simplify.\nThe answer is ${g}$.",
    lambda g: f"Step 1: compute.\n\n**Answer:** ${g}$",
    lambda g: f"So that is it.\nFinal answer: ${g}$",
    lambda g: f"Final Answer: The final answer is ${g}$. I hope it is correct.",
)
ZH_PHRASINGS = (lambda g: f"计算可得结果。\n所以答案是 ${g}$。", lambda g: f"解：略。\n答案：${g}$")
LETTER_PHRASINGS = (
    lambda letters, text: f"Checking each option, the answer is ({letters}).",
    lambda letters, text: f"Only one works.\n\n**Answer:** {letters}",
    lambda letters, text: f"$\\boxed{{{letters}}}$",
    lambda letters, text: f"综上所述。\n答案是 {letters}",
)
TEXT_PHRASINGS = (
    lambda letters, text: f"Solving, the answer is {text}.",
    lambda letters, text: f"**Answer:** ({letters}) {text}",
)
SIZES = {"math": 1000, "mmlu_stem": 1000}     # every 5th / 3rd record of the two largest: the test stays short


def _derange(items: list, seed: int = 0) -> list:
  order = list(range(len(items)))
  random.Random(seed).shuffle(order)
  result = list(items)
  for k, i in enumerate(order):
    result[i] = items[order[(k + 1) % len(order)]]
  return result


def _plain(gold: str) -> str:
  """The gold answer as compared for the expected hits: no spaces, no $, no \\left/\\right."""
  return re.sub(r"\s|\$|\\left|\\right", "", gold)


def _same(a: str, b: str) -> bool:
  try:
    return float(a) == float(b)
  except ValueError:
    return _plain(a) == _plain(b)


def _phrasings(benchmark, record: dict) -> list[str]:
  """Model-style outputs that state `record`'s gold answer."""
  gold = record["answer"]
  if benchmark.answer == "choice":
    letters = "".join(sorted(set(re.findall(r"[A-Z]", gold))))
    outputs = [p(letters if len(letters) == 1 else ", ".join(letters), "") for p in LETTER_PHRASINGS]
    texts = list(record["options"].values())
    text = record["options"][letters] if len(letters) == 1 else ""
    if text and texts.count(text) == 1 and not re.fullmatch(r"\(?[A-E]\)?", text.strip()):  # "B" as a text: ambiguous
      outputs += [p(letters, record["options"][letters]) for p in TEXT_PHRASINGS]
    return outputs
  if benchmark.answer == "cloze" and ";" in gold:
    blanks = [b.strip().strip("$") for b in gold.split(";")]
    return [" ".join(f"第{i + 1}空为 $\\boxed{{{b}}}$。" for i, b in enumerate(blanks)),
            "答案是 " + "；".join(f"${b}$" for b in blanks)]
  bare = gold.strip().strip("$") if benchmark.answer == "cloze" else gold
  phrasings = MATH_PHRASINGS + (ZH_PHRASINGS if benchmark.language == "zh" else ())
  return [p(bare) for p in phrasings]


def _questions(shared_data, name):
  benchmark = catalog.get(name)
  questions = load.questions(benchmark, str(shared_data / benchmark.path))
  step = max(1, len(questions) // SIZES.get(name, len(questions)))
  return benchmark, questions[::step]


def _run(tmp_path, name, questions, outputs, folder):
  predictions = tmp_path / f"{folder}.jsonl"
  with open(predictions, "w", encoding="utf-8") as f:
    for q in questions:
      for text in outputs[q["id"]]:
        f.write(json.dumps(dict(id=q["id"], output=text), ensure_ascii=False) + "\n")
  config = eval_config.get_config(name)
  config.predictions = str(predictions)
  config.grader.update(workers=2, timeout_s=10.0)
  return task.run(config, str(tmp_path / folder))[name]


@pytest.mark.parametrize("name", catalog.PAPER_TABLE + ("math500",))
def test_gold_answers_as_models_write_them(shared_data, tmp_path, name):
  benchmark, questions = _questions(shared_data, name)
  outputs = {q["id"]: _phrasings(benchmark, q) for q in questions}
  summary = _run(tmp_path, name, questions, outputs, "gold")
  assert summary["questions"] == len(questions) and summary["bad_lines"] == []
  rows = [json.loads(line) for line in (tmp_path / "gold" / "eval" / name / "samples.jsonl").open()]
  wrong = [(r["id"], r["prediction"][-80:], r["extracted"], r["gold"]) for r in rows if not r["correct"]]
  assert not wrong, f"{len(wrong)} of {len(rows)} wrong: {wrong[:10]}"
  assert summary["accuracy"] == 100.0

  # Another record's gold: correct only where the two gold answers are the same.
  moved = dict(zip([q["id"] for q in questions], _derange(questions)))
  shuffled = {q["id"]: _phrasings(benchmark, moved[q["id"]])[:3] for q in questions}
  summary = _run(tmp_path, name, questions, shuffled, "shuffled")
  rows = [json.loads(line) for line in (tmp_path / "shuffled" / "eval" / name / "samples.jsonl").open()]
  by_id = {q["id"]: q for q in questions}

  def expected(row):
    own, other = by_id[row["id"]]["answer"], moved[row["id"]]["answer"]
    if benchmark.answer == "choice":
      return set(re.findall(r"[A-Z]", own)) == set(re.findall(r"[A-Z]", other))
    return _same(own, other)
  unexpected = [(r["id"], r["extracted"], r["gold"]) for r in rows if r["correct"] != expected(r)]
  # a few gold pairs are equal in value though written differently ("0.5" and "\frac{1}{2}"):
  assert len(unexpected) <= 0.01 * len(rows), unexpected[:20]
  assert all(r["correct"] for r in rows if expected(r)) or benchmark.answer != "choice"
