"""The `corpus` task end to end: configs/corpus.py:tiny through main.py, resuming, the Beam runner giving the
same outputs, bad input counted in stats.json, planted contamination removed, and no jax import."""
import gzip
import json
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from configs import corpus as corpus_config
from dsmath_jax.corpus import pipeline, read, store, write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("corpus_tiny")
  code = ("import sys, runpy; sys.argv = ['main', '--config=configs/corpus.py:tiny', '--workdir=%s'];"
          "runpy.run_module('dsmath_jax.main', run_name='__main__', alter_sys=True)" % workdir)
  # The task must never import jax (it runs on CPU workers): checked at exit of the process that ran it.
  result = subprocess.run([sys.executable, "-c", "import atexit, sys; atexit.register(lambda: print("
                           "'JAX_IMPORTED' if 'jax' in sys.modules else 'NO_JAX', file=sys.stderr)); " + code],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result.stderr


def test_tiny_config_grows_over_rounds_and_writes_tfds(tiny_run):
  workdir, log = tiny_run
  assert "NO_JAX" in log
  stats = json.loads((workdir / "corpus" / "stats.json").read_text())
  collected = [r["collected"] for r in stats["rounds"]]
  assert len(collected) == 3 and collected[0] < collected[1] < collected[2], collected
  assert stats["rounds"][1]["marked_prefixes"] == ["stats.stackexchange.com/questions/"]
  assert stats["rounds"][0]["math_domains"][:3] == sorted(
      ["mathoverflow.net", "stats.stackexchange.com", "physics.stackexchange.com"],
      key=lambda d: stats["rounds"][0]["math_domains"].index(d))
  assert stats["rounds"][2]["overlap_with_previous"] > 0.9
  assert (workdir / "corpus" / "round_1" / "review.txt").read_text().count("#? ") >= 3
  assert (workdir / "corpus" / "scores.png").stat().st_size > 1000
  # The dataset reads back through plain TFDS (no TensorFlow), with the contract's fields.
  source = tfds.data_source("dsmath_corpus", data_dir=str(workdir / "tfds"), split="train")
  assert len(source) == collected[-1] - stats["decontaminate"]["counts"].get("decontaminate/pages_dropped", 0)
  example = source[0]
  assert {"id", "text", "url", "domain", "score", "round", "num_tokens"} <= set(example)
  assert example["score"] >= 0.99 and 1 <= example["round"] <= 3
  assert example["num_tokens"] == len(example["text"])              # "byte" tokenizer: one token per byte
  rounds = sorted({source[i]["round"] for i in range(len(source))})
  assert rounds == [1, 2, 3]


def test_rerun_skips_finished_stages(tiny_run):
  workdir, _ = tiny_run
  success = workdir / "corpus" / "round_2" / store.SUCCESS
  before = success.stat().st_mtime_ns
  pipeline.run(corpus_config.get_config("tiny"), str(workdir))
  assert success.stat().st_mtime_ns == before
  config = corpus_config.get_config("tiny")
  config.classify.min_score = 0.98                                # changes rounds, not read/dedup
  read_before = (workdir / "corpus" / "dedup" / store.SUCCESS).stat().st_mtime_ns
  pipeline.run(config, str(workdir))
  assert (workdir / "corpus" / "dedup" / store.SUCCESS).stat().st_mtime_ns == read_before
  assert success.stat().st_mtime_ns != before
  # The workdir holds the resolved config of the latest run.
  assert json.loads((workdir / "config.json").read_text())["classify"]["min_score"] == 0.98


def _records(workdir):
  return sorted(write.read_dataset(str(workdir / "tfds")), key=lambda r: r["id"])


def test_beam_direct_runner_gives_identical_outputs(tmp_path):
  outputs = {}
  for runner in ("local", "beam"):
    config = corpus_config.get_config("tiny")
    config.runner = runner
    config.rounds.num_rounds = 2
    pipeline.run(config, str(tmp_path / runner))
    outputs[runner] = _records(tmp_path / runner)
    for stage in ("read", "seed", "negatives", "dedup", "round_1", "round_2", "decontaminated"):
      rows = sorted(store.read_records(str(tmp_path / runner / "corpus" / stage)), key=lambda r: r["id"])
      counts = store.read_json(str(tmp_path / runner / "corpus" / stage / store.SUCCESS))["counts"]["counts"]
      outputs[runner + stage] = (rows, counts)
  for stage in ("read", "seed", "negatives", "dedup", "round_1", "round_2", "decontaminated"):
    assert outputs["local" + stage] == outputs["beam" + stage], stage
  assert outputs["local"] == outputs["beam"] and len(outputs["local"]) > 50


def test_bad_input_and_contamination_are_counted(tmp_path, shared_data):
  real = (shared_data / "web" / "dolma_tests" / "warc_sample-0000.warc.gz").read_bytes()
  (tmp_path / "cut.warc.gz").write_bytes(real[: len(real) // 3])
  question = json.loads((shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[0])["question"]
  math_page = json.loads(gzip.open(os.path.join(corpus_config.ASSETS, "seed.jsonl.gz"), "rt").readline())
  lines = [json.dumps({"url": "https://mathoverflow.net/questions/planted", "text": math_page["text"] +
                       "\n\nSee also: " + question}),
           '{"url": "http://x.org/broken", "text": ', json.dumps({"url": "http://x.org/empty", "text": ""})]
  (tmp_path / "extra.jsonl").write_bytes("\n".join(lines).encode() + b"\n\xff\xfe{}\n")
  config = corpus_config.get_config("tiny")
  config.rounds.num_rounds = 1
  config.classify.min_score = 0.5                                 # the planted page scores ~0.95
  config.read.inputs = list(config.read.inputs) + [dict(path=str(tmp_path / "cut.warc.gz")),
                                                   dict(path=str(tmp_path / "extra.jsonl"))]
  config.decontaminate.benchmarks = [dict(name="gsm8k", path=str(shared_data / "gsm8k" / "test.jsonl"), optional=False)]
  pipeline.run(config, str(tmp_path / "run"))
  stats = json.loads((tmp_path / "run" / "corpus" / "stats.json").read_text())
  read_counts = stats["read"]["counts"]
  assert read_counts["damaged/truncated_or_corrupt_gzip"] == 1 and read.unaccounted(read_counts) == 0
  assert read_counts["skipped/bad_json"] == 2 and read_counts["skipped/empty_text"] == 1
  assert read_counts["repaired/non_utf8_bytes_replaced"] == 1
  assert any("cut.warc.gz" in e for e in stats["read"]["errors"]["damaged/truncated_or_corrupt_gzip"])
  report_text = (tmp_path / "run" / "corpus" / "report.md").read_text()
  assert "- damaged/truncated_or_corrupt_gzip: 1" in report_text and "extra.jsonl line 2" in report_text
  decon = stats["decontaminate"]["counts"]
  assert decon["decontaminate/hits_gsm8k"] == 1 and decon["decontaminate/segments_removed"] == 1
  hits = list(store.read_records(str(tmp_path / "run" / "corpus" / "decontaminated"), "hits-*.jsonl.gz"))
  assert [h["url"] for h in hits] == ["https://mathoverflow.net/questions/planted"]
  kept = {r["url"]: r["text"] for r in write.read_dataset(str(tmp_path / "run" / "tfds"))}
  assert question not in kept["https://mathoverflow.net/questions/planted"]
  assert kept["https://mathoverflow.net/questions/planted"].startswith(math_page["text"][:200])
