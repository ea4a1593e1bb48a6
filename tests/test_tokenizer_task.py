"""Task `tokenizer`: `:tiny` through the entry point; GSM8K files named in the config."""
import json
import pathlib
import subprocess
import sys

from configs import tokenizer as tokenizer_config
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax import tokenizer_task

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_tiny_config_runs_through_main(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "dsmath_jax.main", "--config=configs/tokenizer.py:tiny",
       f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  stats = json.loads((tmp_path / "tokenizer_stats.json").read_text())
  assert stats["vocab_size"] == 320 and stats["round_trip_exact"] == 1.0
  assert json.loads((tmp_path / "config.json").read_text())["vocab_size"] == 320   # resolved config
  tok = tokenizers.load_tokenizer(str(tmp_path / "tokenizer"))
  assert tok.vocab_size == 320 and tok.decode(tok.encode("What is 7 * 8?")) == "What is 7 * 8?"


def test_gsm8k_files_from_the_config(shared_data, tmp_path):
  config = tokenizer_config.get_config("tiny,vocab_size=600")
  config.data.files = (str(shared_data / "gsm8k" / "train.jsonl"),)
  config.data.text_fields = ("question", "answer")
  config.data.generated_size = 0
  stats = tokenizer_task.run(config, str(tmp_path))
  assert stats["vocab_size"] == 600 and stats["texts"] == 200 and stats["round_trip_exact"] == 1.0
  assert stats["chars_per_token"] > 1.8, stats       # vs 1.0 for bytes; digits are split
  config.data.files = (str(tmp_path / "missing.jsonl"),)
  try:
    tokenizer_task.run(config, str(tmp_path))
  except FileNotFoundError as e:
    assert "missing.jsonl" in str(e)
  else:
    raise AssertionError("a missing input file must fail")
