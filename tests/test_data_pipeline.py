"""The grain pipeline: weighted mixture, packing conventions, determinism, resumable position."""
import json

import ml_collections
import numpy as np
import pytest

from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.data import packing, pipeline, sources

TOKENIZER = tokenizers.ByteTokenizer()


def _write_jsonl(path, texts, field="text"):
  path.write_text("".join(json.dumps({field: t, "id": str(i)}) + "\n" for i, t in enumerate(texts)))
  return str(path)


def _config(tmp_path, **overrides):
  a = _write_jsonl(tmp_path / "a.jsonl", [f"a{i:03d}" + "a" * 20 for i in range(200)])
  b = _write_jsonl(tmp_path / "b.jsonl", [f"b{i:03d}" + "b" * 20 for i in range(200)])
  config = ml_collections.ConfigDict(dict(
      seq_len=64, global_batch=8, seed=0, packing="concat", packing_bins=4,
      sources=dict(a=dict(jsonl=a, weight=0.8), b=dict(jsonl=b, weight=0.2))))
  config.update(overrides)
  return config


def _data(config):
  return pipeline.DataConfig.from_config(config)


def _take(config, count, kind="text", **kwargs):
  iterator = iter(pipeline.batches(_data(config), TOKENIZER, kind, process_index=0, process_count=1,
                                   **kwargs))
  return [next(iterator) for _ in range(count)]


def test_mixture_follows_weights_and_concat_rows_are_full(tmp_path):
  batches = _take(_config(tmp_path), 20)
  tokens = np.concatenate([b["tokens"] for b in batches])
  a, b = np.sum(tokens == ord("a") + 3), np.sum(tokens == ord("b") + 3)
  assert abs(a / (a + b) - 0.8) < 0.05, (a, b)
  for batch in batches:
    assert batch["tokens"].shape == (8, 64) and batch["tokens"].dtype == np.int32
    assert (batch["segment_ids"] > 0).all()             # concat-then-split leaves no padding
    np.testing.assert_array_equal(batch["loss_mask"], 1.0)
    for row in range(8):                                # positions restart with each segment
      segments = batch["segment_ids"][row]
      for s in set(segments):
        np.testing.assert_array_equal(batch["positions"][row][segments == s],
                                      np.arange(np.sum(segments == s)))


def test_same_seed_same_batches_other_seed_other_batches(tmp_path):
  first, again = _take(_config(tmp_path), 3), _take(_config(tmp_path), 3)
  other = _take(_config(tmp_path, seed=1), 3)
  for x, y in zip(first, again):
    np.testing.assert_array_equal(x["tokens"], y["tokens"])
  assert any((x["tokens"] != z["tokens"]).any() for x, z in zip(first, other))


@pytest.mark.parametrize("mode", ["concat", "first_fit"])
def test_iterator_state_restores_the_position(tmp_path, mode):
  config = _config(tmp_path, packing=mode)
  iterator = iter(pipeline.batches(_data(config), TOKENIZER, "text", process_index=0, process_count=1))
  for _ in range(3):
    next(iterator)
  state = json.loads(json.dumps(iterator.get_state()))  # as grain's checkpoint handler stores it
  expected = [next(iterator) for _ in range(3)]
  fresh = iter(pipeline.batches(_data(config), TOKENIZER, "text", process_index=0, process_count=1))
  fresh.set_state(state)
  for want in expected:
    got = next(fresh)
    for name in want:
      np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("kind", ["text", "sft"])
def test_hosts_feed_their_rows_of_the_one_host_batches(tmp_path, kind):
  """2 hosts' batches, stacked host 0 then host 1, are the 1-host run's batches, step by step."""
  config = _config(tmp_path, global_batch=4)
  if kind == "sft":             # whole examples first-fit into 4 bins of 64 tokens
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps({"question": f"{i} + {i}?" + " x" * (i % 7),
                                        "response": f" {2 * i}" + "." * (i % 5)}) + "\n"
                            for i in range(60)))
    config.packing, config.sources = "first_fit", dict(qa=dict(jsonl=str(path)))
  one = iter(pipeline.batches(_data(config), TOKENIZER, kind, process_index=0, process_count=1))
  hosts = [iter(pipeline.batches(_data(config), TOKENIZER, kind, process_index=host, process_count=2))
           for host in range(2)]
  for _ in range(3):
    want = next(one)
    got = [next(host) for host in hosts]
    assert got[0]["tokens"].shape == (2, config.seq_len)          # 4 global rows over 2 hosts
    for name in want:
      np.testing.assert_array_equal(np.concatenate([g[name] for g in got]), want[name], err_msg=name)
    assert not np.array_equal(got[0]["tokens"], got[1]["tokens"])


def test_first_fit_never_splits_an_example():
  examples = [packing.sft_example(range(3, 3 + p), range(50, 50 + r), 1, 2, seq_len=16)
              for p, r in [(3, 4), (2, 2), (5, 6), (1, 1), (4, 9)]]
  import grain
  rows = list(packing.pack(grain.MapDataset.source(examples).to_iter_dataset(), 16, "first_fit",
                           num_packing_bins=2, shuffle_bins=False))
  packed = sorted(len(r["tokens"][r["segment_ids"] == s]) for r in rows for s in set(r["segment_ids"]) - {0})
  assert packed == sorted(len(e["tokens"]) for e in examples)      # every example whole
  for row in rows:
    assert (row["loss_mask"][row["segment_ids"] == 0] == 0).all()


def test_bad_jsonl_record_names_file_line_and_field(tmp_path):
  path = tmp_path / "bad.jsonl"
  path.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "2+2?"}\n')
  with pytest.raises(ValueError, match=r"bad.jsonl:2 field 'answer': missing"):
    sources.read_jsonl(str(path), {"response": "answer"})
  path.write_text('{"text": "ok"}\nnot json\n')
  with pytest.raises(ValueError, match=r"bad.jsonl:2: not JSON"):
    sources.read_jsonl(str(path), {})
