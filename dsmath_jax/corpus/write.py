"""Stage 6: the collected corpus as a TFDS dataset `dsmath_corpus` (ArrayRecord, written without TensorFlow).

Fields: id, text, url, domain, score (fastText P(math)), round (the round that first collected the page),
num_tokens (under the configured tokenizer) and, when `store_tokens`, the token ids. Read it with
`tfds.builder_from_directory(WORKDIR/tfds/dsmath_corpus/1.0.0).as_data_source("train")` or
`tfds.data_source("dsmath_corpus", data_dir=WORKDIR/tfds)`; grain reads it without TensorFlow.
"""
import os
import shutil

import numpy as np
import tensorflow_datasets as tfds

NAME = "dsmath_corpus"
VERSION = "1.0.0"


class DsmathCorpus(tfds.core.GeneratorBasedBuilder):
  """DeepSeekMath-style math web corpus collected by iterative fastText recall (paper §2.1)."""

  VERSION = tfds.core.Version(VERSION)
  # No checksums/metadata files beside the code: without this, tfds probes the package through
  # `importlib_resources`, which is not installed.
  code_path = None

  def __init__(self, *, records=(), store_tokens=False, **kwargs):
    self._records, self._store_tokens = records, store_tokens
    super().__init__(**kwargs)

  def _info(self):
    features = {
        "id": tfds.features.Text(), "text": tfds.features.Text(), "url": tfds.features.Text(),
        "domain": tfds.features.Text(), "score": np.float32, "round": np.int32, "num_tokens": np.int32}
    if self._store_tokens:
      features["tokens"] = tfds.features.Tensor(shape=(None,), dtype=np.int32)
    return tfds.core.DatasetInfo(
        builder=self, description=self.__doc__, features=tfds.features.FeaturesDict(features),
        homepage="https://arxiv.org/abs/2402.03300")

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for record in self._records:
      yield record["id"], record


def write_dataset(records, data_dir: str, *, tokenizer=None, store_tokens=False) -> str:
  """Writes `records` (dicts with id, text, url, domain, score, round, num_tokens) under
  `data_dir/dsmath_corpus/1.0.0` (replacing what is there); returns that directory."""
  def examples():
    for record in records:
      example = {key: record[key] for key in ("id", "text", "url", "domain")}
      example.update(score=np.float32(record["score"]), round=np.int32(record["round"]),
                     num_tokens=np.int32(record["num_tokens"]))
      if store_tokens:
        example["tokens"] = np.asarray(tokenizer.encode(record["text"]), np.int32)
      yield example

  target = os.path.join(data_dir, NAME, VERSION)
  if os.path.exists(target):
    shutil.rmtree(target)
  builder = DsmathCorpus(records=examples(), store_tokens=store_tokens, data_dir=data_dir,
                         file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(verify_ssl=False))
  return target


def read_dataset(data_dir: str, split: str = "train"):
  """The written dataset as a random-access source of dicts (bytes decoded to str)."""
  builder = tfds.builder_from_directory(os.path.join(data_dir, NAME, VERSION))
  source = builder.as_data_source(split=split)
  for index in range(len(source)):
    example = source[index]
    yield {k: (v.decode("utf-8") if isinstance(v, bytes) else v) for k, v in example.items()}
