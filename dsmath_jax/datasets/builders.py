"""TFDS builders that write question and SFT records as ArrayRecord, without TensorFlow.

Two datasets, one BuilderConfig per source (tfds names `dsmath_questions/<source>` and
`dsmath_sft/<source>`). The records are converted before the builder runs (the
converters in this package read, execute and decontaminate), so a builder only writes
the splits it is handed. ArrayRecord gives grain random access per record, which the
SFT/RL loaders need for global shuffling and exact resumption (docs/architecture.md, "Data and
resumption").
"""
import tempfile

import numpy as np
import tensorflow_datasets as tfds

QUESTION_FEATURES = dict(id=str, question=str, answer=str, solution=str, subject=str, level=np.int32,
                         source=str)
SFT_FEATURES = dict(id=str, question=str, prompt=str, response=str, format=str, source=str)
VERSION = "1.0.0"


def _features(spec):
  return tfds.features.FeaturesDict({
      name: tfds.features.Text() if kind is str else tfds.features.Scalar(dtype=kind)
      for name, kind in spec.items()})


class _RecordsBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Writes `split_records` ({split: [record dict]}) as handed in; order is kept."""
  VERSION = tfds.core.Version(VERSION)
  FEATURES: dict = {}
  # tfds looks for a checksums file next to the builder's code, and that lookup needs the
  # `importlib_resources` backport for a class inside a package; there is nothing to download.
  code_path = None

  def __init__(self, *, split_records: dict | None = None, **kwargs):
    self._split_records = split_records or {}
    super().__init__(**kwargs)

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=_features(self.FEATURES), disable_shuffling=True,
                                 description=self.__doc__)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(records) for split, records in self._split_records.items()}

  def _generate_examples(self, records):
    for index, record in enumerate(records):
      yield index, {name: record[name] for name in self.FEATURES}


class DsmathQuestions(_RecordsBuilder, skip_registration=True):
  """Benchmark and RL questions: id, question, answer (gold), solution, subject, level, source."""
  name = "dsmath_questions"
  FEATURES = QUESTION_FEATURES


class DsmathSft(_RecordsBuilder, skip_registration=True):
  """SFT records: id, question, prompt (templates.render), response (starts with a space), format, source."""
  name = "dsmath_sft"
  FEATURES = SFT_FEATURES


def write(builder_cls, source: str, split_records: dict, data_dir: str, description: str = "") -> str:
  """Writes one source's splits under data_dir/<name>/<source>/<version>; returns that directory."""
  config = tfds.core.BuilderConfig(name=source, version=VERSION, description=description)
  builder = builder_cls(split_records=split_records, config=config, data_dir=data_dir,
                        file_format=tfds.core.FileFormat.ARRAY_RECORD)
  if builder.data_path.exists():  # a rebuild replaces the previous records
    builder.data_path.rmtree()
  tfds.disable_progress_bar()
  with tempfile.TemporaryDirectory() as downloads:  # nothing is downloaded; keeps data_dir clean
    builder.download_and_prepare(download_dir=downloads)
  return str(builder.data_path)
