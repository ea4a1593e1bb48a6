"""Task `sample`: configs/sample.py:tiny end to end, prompt files and their errors."""
import json

import pytest

from configs import sample as sample_config
from dsmath_jax import templates
from dsmath_jax.sample import task
from dsmath_jax.tokenizer import ByteTokenizer


def test_tiny_config_writes_samples(tmp_path):
  config = sample_config.get_config("tiny")
  prompts = tmp_path / "prompts.jsonl"
  prompts.write_text("\n".join(json.dumps(r) for r in [
      {"id": "a", "question": "What is 2 + 3?"},
      {"id": "b", "prompt": "raw text prompt"},
      {"id": "c", "prompt_ids": [1, 50, 60, 70]}]) + "\n")
  config.prompts = str(prompts)
  summary = task.run(config, str(tmp_path / "work"))
  lines = [json.loads(l) for l in (tmp_path / "work" / "samples.jsonl").read_text().splitlines()]
  tokenizer = ByteTokenizer()
  assert len(lines) == 3 * config.num_samples == summary["samples"]
  assert [l["id"] for l in lines] == ["a", "a", "b", "b", "c", "c"]
  assert [l["sample_index"] for l in lines] == [0, 1] * 3
  expected_ids = [[1] + tokenizer.encode(templates.render("What is 2 + 3?", "cot")),
                  [1] + tokenizer.encode("raw text prompt"), [1, 50, 60, 70]]
  for line in lines:
    assert line["prompt_ids"] == expected_ids[line["prompt_index"]]
    n = len(line["token_ids"])
    assert 0 < n <= config.max_new_tokens and len(line["logprobs"]) == len(line["tool_mask"]) == n
    assert all(lp <= 0 for lp in line["logprobs"])
    assert line["completion"] == tokenizer.decode(line["token_ids"])
    assert line["finish_reason"] in ("eos", "length")
  assert summary["new_tokens"] == sum(len(l["token_ids"]) for l in lines)
  # The workdir holds the resolved config of the run, overrides included.
  assert json.loads((tmp_path / "work" / "config.json").read_text())["prompts"] == str(prompts)


@pytest.mark.parametrize("content,message", [
    ('{"question": "ok"}\n{"question": 3}\n', "prompts.jsonl:2: needs a string field 'prompt'"),
    ('{"prompt_ids": []}\n', "prompts.jsonl:1: field 'prompt_ids'"),
    ('{"prompt": "x"}\nnot json\n', "prompts.jsonl:2: not JSON"),
])
def test_bad_prompt_files_name_file_line_and_field(tmp_path, content, message):
  path = tmp_path / "prompts.jsonl"
  path.write_text(content)
  with pytest.raises(ValueError, match=message):
    task.read_prompts(str(path))
