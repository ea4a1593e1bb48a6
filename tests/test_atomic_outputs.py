"""A failed run never leaves a half-written result that looks finished (issue 16).

Each test writes a complete output, then fails a second write midway (a writer monkeypatched to
raise after part of the output is on disk) and checks that the previous output is byte for byte
intact and that nothing partial is visible, under the final name or beside it.
"""
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import common
from configs import convert as convert_config
from configs import dataset as dataset_config
from configs import eval as eval_config
from dsmath_jax import atomic
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.datasets import builders, load_source
from dsmath_jax.datasets import task as dataset_task
from dsmath_jax.eval import report
from dsmath_jax.eval import task as eval_task
from dsmath_jax.model import convert, hf, llama, loading


class Injected(RuntimeError):
  """The failure a test injects midway through a write."""


def _snapshot(folder) -> dict:
  """{relative path: bytes} of every file under `folder`."""
  files = {}
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, folder)] = f.read()
  return files


def _leftovers(folder) -> list[str]:
  """Temporary names the atomic writers use (.x.tmp-PID, .x.old-PID, x.partial) anywhere under folder."""
  found = []
  for root, dirs, names in os.walk(folder):
    found += [os.path.join(root, n) for n in dirs + names
              if ".tmp-" in n or ".old-" in n or n.endswith(".partial")]
  return found


def _raise(*args, **kwargs):
  raise Injected("disk full")


# ---- the helper ------------------------------------------------------------------------------

def test_write_file_keeps_the_old_file_until_the_new_one_is_complete(tmp_path):
  path = tmp_path / "out.json"
  with atomic.write_file(str(path)) as f:
    f.write('{"old": 1}')
  with pytest.raises(Injected):
    with atomic.write_file(str(path)) as f:
      f.write('{"new": ')
      f.flush()
      assert path.read_text() == '{"old": 1}'            # the final name still holds the old file
      raise Injected()
  assert path.read_text() == '{"old": 1}' and not _leftovers(tmp_path)
  with atomic.file_path(str(tmp_path / "figure.png")) as temporary:
    assert temporary.endswith(".png")                    # savefig picks the format from the suffix
    open(temporary, "wb").write(b"png")
  assert (tmp_path / "figure.png").read_bytes() == b"png" and not _leftovers(tmp_path)
  with pytest.raises(ValueError, match="only a fresh write"):
    with atomic.write_file(str(path), "a"):
      pass


def test_directory_swaps_in_whole_or_not_at_all(tmp_path):
  final = tmp_path / "results"
  with atomic.directory(str(final)) as staging:
    open(os.path.join(staging, "a"), "w").write("old a")
    open(os.path.join(staging, "b"), "w").write("old b")
  with pytest.raises(Injected):
    with atomic.directory(str(final)) as staging:
      open(os.path.join(staging, "a"), "w").write("new a")
      raise Injected()
  assert _snapshot(final) == {"a": b"old a", "b": b"old b"} and not _leftovers(tmp_path)
  with atomic.directory(str(final)) as staging:
    open(os.path.join(staging, "a"), "w").write("new a")
  assert _snapshot(final) == {"a": b"new a"} and not _leftovers(tmp_path)   # no stale old file


# ---- the dataset task ------------------------------------------------------------------------

def _questions_only_config(data_dir: str) -> ml_collections.ConfigDict:
  config = dataset_config.get_config("tiny")
  config.sft = {}                                        # question sources only: no programs to run
  config.data_dir = data_dir
  return config


def test_failed_dataset_rebuild_leaves_the_previous_datasets_and_counts(tmp_path):
  data_dir, workdir = tmp_path / "tfds", tmp_path / "work"
  workdir.mkdir()
  config = dataset_task.typed_config(_questions_only_config(str(data_dir)))
  rows = dataset_task.build(config, str(workdir))
  before, counts = _snapshot(data_dir), (workdir / "dataset_counts.json").read_bytes()
  assert {r["dataset"] for r in rows} == {"dsmath_questions/gsm8k", "dsmath_questions/math"}

  real_write, calls = builders.write, []
  def write_then_fail(*args, **kwargs):                   # gsm8k is written, math fails midway
    calls.append(args[1])
    if len(calls) == 2:
      raise Injected("disk full")
    return real_write(*args, **kwargs)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(builders, "write", write_then_fail)
    with pytest.raises(Injected):
      dataset_task.build(config, str(workdir))
  assert calls == ["gsm8k", "math"]
  assert _snapshot(data_dir) == before                    # not a byte of the old datasets changed
  assert (workdir / "dataset_counts.json").read_bytes() == counts
  assert not _leftovers(tmp_path), _leftovers(tmp_path)

  dataset_task.build(config, str(workdir))                # a rebuild that completes replaces them
  assert len(load_source("dsmath_questions/gsm8k", "train", str(data_dir))) == 13
  assert not _leftovers(tmp_path)


# ---- evaluation results ----------------------------------------------------------------------

def _eval(tmp_path, answers: list[str]):
  questions = tmp_path / "q.jsonl"
  questions.write_text("".join(json.dumps(dict(id=str(i), question=f"{i}+1?", answer=str(i + 1))) + "\n"
                               for i in range(len(answers))))
  predictions = tmp_path / "p.jsonl"
  predictions.write_text("".join(json.dumps(dict(id=str(i), output=f"The answer is {a}.")) + "\n"
                                 for i, a in enumerate(answers)))
  config = eval_config.get_config(str(questions))
  config.predictions = str(predictions)
  config.grader.update(timeout_s=5.0, workers=1, second_opinion=False)
  return eval_task.run(config, str(tmp_path / "work"))["jsonl"]


def test_failed_eval_leaves_the_previous_samples_and_summary(tmp_path):
  assert _eval(tmp_path, ["1", "2", "9"])["accuracy"] == pytest.approx(200 / 3)
  out = tmp_path / "work" / "eval"
  before = _snapshot(out)
  with pytest.MonkeyPatch.context() as patch:             # samples, summary, report written; the plot fails
    patch.setattr(report, "plot_accuracy_vs_k", _raise)
    with pytest.raises(Injected):
      _eval(tmp_path, ["0", "0", "0"])
  assert _snapshot(out) == before and not _leftovers(tmp_path)
  assert _eval(tmp_path, ["0", "0", "0"])["accuracy"] == 0.0
  assert json.loads((out / "jsonl" / "summary.json").read_text())["accuracy"] == 0.0
  assert not _leftovers(tmp_path)


# ---- model export ----------------------------------------------------------------------------

def _params(config, seed):
  rng = np.random.default_rng(seed)
  shapes, _ = loading.abstract_params(config)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), s.dtype), shapes)


def test_failed_save_pretrained_leaves_the_previous_model_loadable(tmp_path):
  config = llama.LlamaConfig.from_config(common.model("tiny"))
  old, new = _params(config, 0), _params(config, 1)
  directory = str(tmp_path / "model")
  loading.save_pretrained(directory, config, old, tokenizers.ByteTokenizer())
  before = _snapshot(directory)
  tokenizer = tokenizers.ByteTokenizer()
  with pytest.MonkeyPatch.context() as patch:             # the new params are down, the tokenizer fails
    patch.setattr(tokenizer, "save", _raise)
    with pytest.raises(Injected):
      loading.save_pretrained(directory, config, new, tokenizer)
  assert _snapshot(directory) == before and not _leftovers(tmp_path)
  restored = loading.load_pretrained(directory)
  np.testing.assert_array_equal(np.asarray(restored.params["norm"]["scale"]), np.asarray(old["norm"]["scale"]))

  loading.save_pretrained(directory, config, new, tokenizers.ByteTokenizer())
  restored = loading.load_pretrained(directory)
  np.testing.assert_array_equal(np.asarray(restored.params["norm"]["scale"]), np.asarray(new["norm"]["scale"]))
  assert not _leftovers(tmp_path)


def test_failed_hf_export_leaves_the_previous_export(tmp_path):
  first = convert_config.get_config("tiny")
  first.format, first.output = "hf", str(tmp_path / "hf")
  convert.run(first, str(tmp_path / "a"))
  before = _snapshot(tmp_path / "hf")
  assert "model.safetensors" in before and "config.json" in before
  again = convert_config.get_config("tiny")
  again.format, again.output, again.seed = "hf", str(tmp_path / "hf"), 1
  def torn_write(tensors, path, metadata=None):           # config.json is written, the weights tear
    with open(path, "wb") as f:
      f.write(b"half a safetensors file")
    raise Injected("disk full")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(hf, "save_file", torn_write)
    with pytest.raises(Injected):
      convert.run(again, str(tmp_path / "b"))
  assert _snapshot(tmp_path / "hf") == before and not _leftovers(tmp_path)
  assert not (tmp_path / "b" / "convert.json").exists()
