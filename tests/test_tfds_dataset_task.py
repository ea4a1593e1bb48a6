"""`python -m dsmath_jax.main --config=configs/dataset.py:tiny` builds the shipped sample end to end."""
import json
import subprocess
import sys

from dsmath_jax import templates
from dsmath_jax.datasets import load_source
from tests.conftest import ROOT


def test_tiny_dataset_task_builds_and_reads_back(tmp_path):
  done = subprocess.run([sys.executable, "-m", "dsmath_jax.main", "--config=configs/dataset.py:tiny",
                         f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "dsmath_sft/pot_svamp" in done.stdout and "decontam exact/ngram" in done.stdout
  resolved = json.loads((tmp_path / "config.json").read_text())        # the run's resolved config
  assert resolved["task"] == "dataset" and set(resolved["sft"]) == {"gsm8k_cot", "math_cot", "tora", "pot_svamp"}
  rows = {(r["dataset"], r["split"]): r for r in json.loads((tmp_path / "dataset_counts.json").read_text())["rows"]}
  data_dir = str(tmp_path / "tfds")
  written = {key: len(load_source(key[0], key[1], data_dir)) for key in rows}
  assert written == {key: row["written"] for key, row in rows.items()}
  # The sample (dsmath_jax/assets/math_sample/SOURCE.md): 13 GSM8K train lines, one sharing a
  # 10-gram with a test question; MATH train/algebra/98.json shares one with a MATH-500 problem;
  # 10 PoT programs of which the orchids one prints -4 for the gold 4; ToRA math-train-1527-0 fails.
  assert written[("dsmath_questions/gsm8k", "train")] == 13 and written[("dsmath_sft/gsm8k_cot", "train")] == 12
  assert rows[("dsmath_sft/gsm8k_cot", "train")]["removed"]["ngram"] == 1
  assert rows[("dsmath_sft/math_cot", "train")]["removed"]["ngram"] == 1
  assert written[("dsmath_questions/math", "test")] == 9
  pot = load_source("dsmath_sft/pot_svamp", "train", data_dir)
  pot_records = [pot[i] for i in range(len(pot))]
  assert rows[("dsmath_sft/pot_svamp", "train")]["read"] == 10
  assert "How many orchids did she cut?" not in {r["question"].rsplit(". ", 1)[-1] for r in pot_records}
  assert written[("dsmath_sft/tora", "train")] == 2
  tora = load_source("dsmath_sft/tora", "train", data_dir)
  for record in [tora[i] for i in range(len(tora))] + pot_records:
    assert record["prompt"] == templates.render(record["question"], "tool")
    assert record["response"].startswith(" ") and record["format"] in ("tool", "program")
  assert "tensorflow" not in sys.modules
