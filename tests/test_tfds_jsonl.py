"""Bad JSONL input fails with file, line and field, or is counted with skip_bad_records."""
import json

import ml_collections
import pytest

from configs import dataset as dataset_config
from dsmath_jax import jsonl
from dsmath_jax.datasets import gsm8k, hendrycks_math, read_jsonl, task


def _write(path, lines):
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return str(path)


@pytest.fixture
def bad_file(tmp_path):
  return _write(tmp_path / "bad.jsonl", [
      json.dumps({"question": "What is 2+3?", "answer": "5"}),
      json.dumps({"problem": "no question field here", "answer": "1"}),
      '{"question": "truncated',
      json.dumps({"question": "What is 1+1?", "answer": "2"}),
  ])


def test_not_json_names_file_and_line(bad_file):
  rows = read_jsonl(bad_file, {"question": "problem"})
  with pytest.raises(jsonl.BadRecordError) as error:
    list(rows)
  assert error.value.line == 1 and error.value.field == "problem"
  assert f"{bad_file}:1 field 'problem': missing" in str(error.value)
  with pytest.raises(jsonl.BadRecordError, match=rf"{bad_file}:3: not JSON"):
    list(read_jsonl(bad_file, {"answer": "answer"}))


def test_missing_field_names_it(bad_file):
  with pytest.raises(jsonl.BadRecordError) as error:
    list(read_jsonl(bad_file, {"question": "question", "answer": "answer"}))
  assert (error.value.path, error.value.line, error.value.field) == (bad_file, 2, "question")
  assert "keys: ['answer', 'problem']" in str(error.value)


def test_skip_bad_records_counts_and_keeps_the_rest(bad_file):
  report = {}
  rows = list(read_jsonl(bad_file, {"question": "question", "answer": "answer"},
                         skip_bad_records=True, report=report))
  assert [(r["question"], r["_line"]) for r in rows] == [("What is 2+3?", 1), ("What is 1+1?", 4)]
  assert report["read"] == 2 and report["bad"] == 2
  assert any(":2 field 'question'" in m for m in report["bad_examples"])
  assert any(":3: not JSON" in m for m in report["bad_examples"])


def test_nested_field_paths(tmp_path):
  path = _write(tmp_path / "nested.jsonl", [json.dumps(
      {"messages": [{"role": "user", "content": "Q?"}], "ground_truth": {"answer": 51.0}})])
  rows = list(read_jsonl(path, {"q": "messages.0.content", "gold": "ground_truth.answer"}))
  assert rows[0]["q"] == "Q?" and rows[0]["gold"] == 51.0
  with pytest.raises(jsonl.BadRecordError, match="field 'messages.1.content'"):
    list(read_jsonl(path, {"q": "messages.1.content"}))


def test_converters_report_unanswerable_lines(tmp_path):
  path = _write(tmp_path / "gsm.jsonl", [json.dumps({"question": "Q", "answer": "3 + 4 = 7"})])
  with pytest.raises(jsonl.BadRecordError, match=r"gsm.jsonl:1 field 'answer': GSM8K solution has no '#### <answer>' line"):
    list(gsm8k.questions(path, "train"))
  path = _write(tmp_path / "math.jsonl", [json.dumps({"problem": "P", "solution": "It is 3.", "level": "Level 1"})])
  report = {}
  assert list(hendrycks_math.questions(path, "train", skip_bad_records=True, report=report)) == []
  assert report["bad"] == 1 and "math.jsonl:1 field 'solution': no \\boxed{} answer" in report["bad_examples"][0]


def _jsonl_config(path, skip):
  c = dataset_config.get_config("tiny")
  c.questions = ml_collections.ConfigDict(dict(mine=dict(
      reader="jsonl", files=dict(test=path), fields=dict(question="question", answer="answer"),
      answer_from="field")))
  c.sft = ml_collections.ConfigDict({})
  c.decontamination.benchmarks = ("mine/test",)
  c.skip_bad_records = skip
  return c


def test_task_fails_on_bad_line_or_counts_it(bad_file, tmp_path):
  with pytest.raises(jsonl.BadRecordError, match=rf"{bad_file}:2 field 'question'"):
    task.run(_jsonl_config(bad_file, False), str(tmp_path))
  rows = task.run(_jsonl_config(bad_file, True), str(tmp_path))
  assert [(r["dataset"], r["read"], r["bad"], r["written"]) for r in rows] == [("dsmath_questions/mine", 2, 2, 2)]
  assert json.loads((tmp_path / "dataset_counts.json").read_text())["rows"][0]["bad"] == 2


def test_huge_numbers_and_deep_nesting_are_bad_lines_with_a_reason(tmp_path):
  """Python's json raises a bare ValueError (int max str digits) or RecursionError on these; the shared reader
  names file:line and a reason, and good lines parse exactly as json.loads parses them."""
  good = [json.dumps({"question": "Q", "answer": "1", "extra": [[{"x": 1.5e300}], -12, None, "\ud83d\ude00"]}),
          json.dumps({"question": "big but fine", "answer": 10**4000, "deep": [[[[[[]]]]]]})]
  path = _write(tmp_path / "hostile.jsonl", [good[0], '{"question": "Q", "answer": ' + "9" * 5000 + "}",
                                             '{"question": ' + "[" * 5000 + "]" * 5000 + "}",
                                             '{"question": ' + "[" * 129 + "]" * 129 + "}", good[1]])
  report = {}
  rows = list(read_jsonl(path, {"record": None}, skip_bad_records=True, report=report))
  assert [r["record"] for r in rows] == [json.loads(line) for line in good]
  assert report["bad_reasons"] == {"json_number_too_long": 1, "json_too_deep": 2} and report["read"] == 2
  assert f"{path}:2: a number of 5000 digits (limit 4300)" in report["bad_examples"]
  assert f"{path}:4: nested deeper than 128 levels" in report["bad_examples"]
  assert f"{path}:3: nested deeper than Python's recursion limit" in report["bad_examples"]
  with pytest.raises(jsonl.BadRecordError, match=rf"{path}:2: a number of 5000 digits"):
    list(read_jsonl(path, {"record": None}))
