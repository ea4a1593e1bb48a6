"""Program-of-thought and tool-integrated SFT records: every kept program, run again, prints its answer.

References: the raw PoT/MathCoder/ToRA files read here with json, the sandbox's own
`tool_protocol.last_program` to find the code, and the eval grader for the answers.
"""
import json
import re

import pytest

from dsmath_jax import templates
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading import grader
from dsmath_jax.sandbox import sandbox, tool_protocol
from dsmath_jax.datasets import execute, mathcoder, pot, tora

POT = "pot_svamp/svamp_s0_e-1_11_24_14_38.jsonl"
MATHCODER = "mathcoder_svamp/SVAMP_test_result-20230917-2303-correct.jsonl"


def _rerun(records):
  """(printed output, output block, boxed answer) for each record's last ```python block."""
  codes = [tool_protocol.last_program(r["response"]) for r in records]
  assert all(codes)
  with sandbox.Sandbox(workers=2) as box:
    results = box.run_many(codes)
  return [(result.stdout.strip(), answer_lib.program_output(r["response"]), answer_lib.extract_answer(r["response"]))
          for r, result in zip(records, results)]


@pytest.fixture(scope="module")
def pot_built(shared_data):
  return pot.records(str(shared_data / POT))


def test_pot_svamp_keeps_the_programs_that_print_the_gold_answer(pot_built, shared_data):
  kept, dropped = pot_built
  raw = [json.loads(line) for line in (shared_data / POT).read_text().splitlines()]
  raw = [r for r in raw if "question" in r]
  assert len(raw) == 999
  # SOURCE.md: 851 of 999 have |executed - answer| < 1e-4; 3 of them print the negated answer
  # (PoT's scorer compared absolute values), so 848 programs really print the gold answer.
  recorded = [r for r in raw if r["executed"] is not None and abs(r["executed"] - r["answer"]) < 1e-4]
  assert len(recorded) == 851
  assert len(kept) == 848 and dict(dropped) == {"wrong_answer": 150, "exec_error": 1}
  by_line = {i: r for i, r in enumerate((shared_data / POT).read_text().splitlines(), start=1)}
  for record in kept:
    line = json.loads(by_line[int(record["id"].rsplit("-", 1)[1])])
    assert record["question"] == f"{line['passage'].strip()} {line['question'].strip()}"
    assert record["prompt"] == templates.render(record["question"], "program")
    assert record["format"] == "program" and record["response"].startswith(" ```python\n")
    assert abs(float(answer_lib.extract_answer(record["response"])) - line["answer"]) < 1e-4


def test_pot_kept_programs_reproduce_their_output(pot_built):
  kept, _ = pot_built
  for printed, shown, boxed in _rerun(kept[::8]):                # 106 of the 848
    assert printed == shown and abs(float(printed) - float(boxed)) < 1e-4


def test_mathcoder_cells_become_self_contained_programs():
  cells = ["a = 3\nb = 4\na + b", "c = a * b\nprint('c is', c)", "e = z + 1", "d = c - a\nd, c"]
  programs = mathcoder.standalone_programs(cells, [False, False, True, False])
  assert programs[0].endswith("print(a + b)")
  assert "a + b" not in programs[1] and programs[3].endswith("print((d, c))")
  assert "z + 1" not in programs[3]                              # the failed cell is not carried on
  results = execute.run_programs(programs)
  assert [r.stdout for r in results] == ["7\n", "c is 12\n", "c is 12\n", "c is 12\n(9, 12)\n"]
  assert results[2].status == "error" and "NameError" in results[2].error


def test_mathcoder_slice_kept_records_rerun_to_gold(shared_data, tmp_path):
  lines = (shared_data / MATHCODER).read_text().splitlines()[:60]
  path = tmp_path / "mathcoder.jsonl"
  path.write_text("\n".join(lines) + "\n")
  kept, dropped = mathcoder.records(str(path))
  assert len(kept) + sum(dropped.values()) == 60 and len(kept) >= 50
  golds = {f"mathcoder_svamp-train-{i}": json.loads(l)["ground_truth"]["answer"] for i, l in enumerate(lines, 1)}
  for record, (printed, shown, boxed) in zip(kept, _rerun(kept)):
    gold = golds[record["id"]]
    assert record["format"] == "tool" and record["response"].startswith(" ")
    assert printed == shown                                        # the output block is what the code prints
    assert any(abs(float(x) - gold) < 1e-4 for x in re.findall(r"-?\d+(?:\.\d+)?", printed))
    assert abs(float(boxed) - gold) < 1e-4


def test_tora_kept_trajectories_reproduce_every_output(shared_data, monkeypatch):
  ran = {}                                                       # program -> the sandbox's result
  real_run = execute.run_programs

  def spy(codes, **kwargs):
    results = real_run(codes, **kwargs)
    ran.update(zip(codes, results))
    return results
  monkeypatch.setattr(execute, "run_programs", spy)
  kept, dropped = tora.records(str(shared_data / "tora/examples.jsonl"))
  raw = {f"tora-{json.loads(l)['id']}": json.loads(l) for l in (shared_data / "tora/examples.jsonl").read_text().splitlines()}
  # 30 records: 5 have no program (pure text); math-train-1527-0 shows "4" in the corpus but its
  # f() takes no argument and raises when run; math-train-3460-0 boxes "-2x - 1, 2x + 1" for "-2x-1".
  assert dict(dropped) == {"no_code": 5, "output_differs": 1, "boxed_not_gold": 1} and len(kept) == 23
  assert not {"tora-math-train-1527-0", "tora-math-train-3460-0"} & {r["id"] for r in kept}
  for record in kept:
    codes = re.findall(r"```python\n(.*?)```", record["response"], re.S)
    shown = re.findall(r"```output\n(.*?)```", record["response"], re.S)
    actual = [tool_protocol.format_output(ran[code]) for code in codes]
    assert [" ".join(s.split()) for s in shown] == [" ".join(a[len("```output"):-len("```\n")].split()) for a in actual]
    assert grader.is_equiv(answer_lib.extract_answer(record["response"]), raw[record["id"]]["gt"])
    assert record["response"] == " " + raw[record["id"]]["messages"][1]["content"].strip()
    assert record["prompt"] == templates.render(raw[record["id"]]["messages"][0]["content"], "tool")
