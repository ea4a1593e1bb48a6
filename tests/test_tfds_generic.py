"""The configurable JSONL converters (DeepSeek-Math eval files, CMATH, MathInstruct, a user's own)."""
import json

import pytest

from dsmath_jax import templates
from dsmath_jax import jsonl
from dsmath_jax.datasets import generic, gsm8k


def test_generic_questions_read_gsm8k_like_gsm8k_reader(shared_data):
  path = str(shared_data / "gsm8k/test.jsonl")
  mine = list(generic.questions(path, "test", source="gsm8k", fields=dict(question="question", answer="answer"),
                                answer_from="gsm8k"))
  assert [(r["id"], r["question"], r["answer"]) for r in mine] == [
      (r["id"], r["question"], r["answer"]) for r in gsm8k.questions(path, "test")]
  assert len(mine) == 1319


def test_generic_questions_boxed_and_optional_fields(shared_data):
  path = str(shared_data / "math/math500_test.jsonl")
  rows = list(generic.questions(path, "test", source="m500", answer_from="boxed", fields=dict(
      question="problem", answer="solution", subject="subject", level="level", id="unique_id")))
  raw = [json.loads(line) for line in open(path)]
  assert [(r["id"], r["subject"], r["level"]) for r in rows] == [(x["unique_id"], x["subject"], x["level"]) for x in raw]
  assert sum(r["answer"] == x["answer"] for r, x in zip(rows, raw)) >= 499   # one is "10\%" vs "10"


def test_generic_sft_program_and_cot(tmp_path):
  # MathInstruct's PoT lines are bare programs that print their answer (no ```python fence).
  lines = [
      {"instruction": "A shop sells 3 pens for 5 dollars. What do 12 pens cost?", "output":
       "n0 = 3.0\nn1 = 5.0\nn2 = 12.0\nt0 = n1 / n0\nanswer = n2 * t0\nprint(answer)", "gold": "20"},
      {"instruction": "What is 7 times 6?", "output": "print(7 * 5)", "gold": "42"},        # wrong answer
      {"instruction": "What is 1 / 0?", "output": "print(1 / 0)", "gold": "0"},              # fails
      {"instruction": "What is 2 + 2?", "output": "```python\nprint(2 + 2)\n```", "gold": "4"},
  ]
  path = tmp_path / "mathinstruct.jsonl"
  path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
  kept, dropped = generic.sft_records(str(path), source="mi", format="program",
                                      fields=dict(question="instruction", response="output", answer="gold"))
  assert [r["id"] for r in kept] == ["mi-train-1", "mi-train-4"]
  assert dict(dropped) == {"wrong_answer": 1, "exec_error": 1}
  assert kept[0]["response"].startswith(" ```python\nn0 = 3.0") and "```output\n20.0\n```" in kept[0]["response"]
  assert kept[0]["response"].endswith("The answer is $\\boxed{20}$.")
  assert kept[0]["prompt"] == templates.render(lines[0]["instruction"], "program")
  cot, _ = generic.sft_records(str(path), source="mi", format="cot", fields=dict(question="instruction", response="output"))
  assert len(cot) == 4 and cot[1]["response"] == " print(7 * 5)" and cot[1]["format"] == "cot"
  with pytest.raises(jsonl.BadRecordError, match=r"mathinstruct.jsonl:1 field 'input'"):
    generic.sft_records(str(path), source="mi", fields=dict(question="input", response="output"))


def test_load_source_reads_the_corpus_dataset(tmp_path):
  """`load_source("dsmath_corpus", ...)` reads what the corpus task writes (contracts.md)."""
  from dsmath_jax.corpus import write
  from dsmath_jax.datasets import load_source
  pages = [dict(id=f"p{i}", text=f"Let $x = {i}$.", url=f"https://a.org/{i}", domain="a.org", score=0.5 + i / 10,
                round=1, num_tokens=3 + i) for i in range(3)]
  write.write_dataset(pages, str(tmp_path))
  source = load_source("dsmath_corpus", "train", str(tmp_path))
  records = sorted((source[i] for i in range(len(source))), key=lambda r: r["id"])
  assert [(r["id"], r["text"], r["round"]) for r in records] == [(p["id"], p["text"], 1) for p in pages]
  assert abs(records[2]["score"] - 0.7) < 1e-6 and isinstance(records[2]["score"], float)
