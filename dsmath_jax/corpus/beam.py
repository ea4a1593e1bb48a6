"""The per-page stages as Apache Beam pipelines (config.runner = "beam"), for Common Crawl scale.

Each function builds one pipeline from the same per-record functions as the in-process runner (stages.py,
dedup.py, classify.py, decontaminate.py) and writes the same files (`part-*.jsonl.gz` shards), so both runners
give identical outputs (tests/test_corpus_beam.py). Dedup decisions are made per key group (normalized URL,
LSH band bucket) and so do not depend on element order. `config.beam_options` picks the runner:
  DirectRunner (default, here) | DataflowRunner (--project --region --temp_location=gs://...) |
  FlinkRunner (--flink_master) | SparkRunner (--spark_master_url); workers need `pip install dsmath_jax`.
Classifier training, the budget threshold and domain discovery read the scored shards in the driver: they are
small (a fastText fit on ~1M pages and per-page (id, url, score, tokens) rows).
"""
import json
import os

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import PipelineOptions

from dsmath_jax import decontaminate
from dsmath_jax.corpus import classify, dedup, read, stages


def _options(config):
  return PipelineOptions(list(config.beam_options))


def _merge_counts(items) -> str:
  merged = read.Counts()
  for item in items:
    merged.merge(read.Counts.from_json(json.loads(item) if isinstance(item, str) else item))
  return json.dumps(merged.to_json())


def _write(pcoll, directory, prefix="part", label="Write"):
  return pcoll | label >> (beam.Map(lambda r: json.dumps(r, ensure_ascii=False)) | beam.io.WriteToText(
      os.path.join(directory, prefix), file_name_suffix=".jsonl.gz", compression_type=CompressionTypes.GZIP))


def _write_counts(counts, directory):
  (counts | "MergeCounts" >> beam.CombineGlobally(_merge_counts)
   | "WriteCounts" >> beam.io.WriteToText(os.path.join(directory, "_counts"), file_name_suffix=".json",
                                          num_shards=1, shard_name_template=""))


def _read_counts(directory) -> read.Counts:
  path = os.path.join(directory, "_counts.json")
  with open(path) as f:
    counts = read.Counts.from_json(json.loads(f.read()))
  os.remove(path)
  return counts


def _read_stage(directory, label="Read"):
  return label >> (beam.io.ReadFromText(os.path.join(directory, "part-*.jsonl.gz")) | beam.Map(json.loads))


class _ReadFile(beam.DoFn):
  """Stage 1 for one (spec, file): pages, plus the file's counts on the `counts` output."""

  def __init__(self, read_config, tokenizer_path):
    self.read_config, self.tokenizer_path = read_config, tokenizer_path

  def setup(self):
    self.identify = stages.make_identifier(self.read_config.lid_model)
    self.tokenizer = stages.load_tokenizer(self.tokenizer_path)
    self.limits = self.read_config.limits

  def process(self, item):
    spec, path = item
    counts = read.Counts()
    yield from stages.pages_of_file(spec, path, counts, languages=self.read_config.languages,
                                    identify=self.identify, tokenizer=self.tokenizer, limits=self.limits)
    yield beam.pvalue.TaggedOutput("counts", json.dumps(counts.to_json()))


def run_read(config, files, directory) -> read.Counts:
  with beam.Pipeline(options=_options(config)) as pipeline:
    outputs = (pipeline | "Files" >> beam.Create(files) | beam.Reshuffle()
               | "ReadFiles" >> beam.ParDo(_ReadFile(config.read, config.tokenizer)).with_outputs(
                   "counts", main="pages"))
    _write(outputs.pages, directory)
    _write_counts(outputs.counts, directory)
  return _read_counts(directory)


def _count(label, name):
  return label >> (beam.combiners.Count.Globally()
                   | beam.Map(lambda n, name=name: json.dumps({"counts": {name: n}})))


def run_dedup(config, source_dir, directory) -> read.Counts:
  shingle_size, num_perm, threshold = config.dedup.shingle_size, config.dedup.num_perm, config.dedup.threshold
  bands, rows = dedup.lsh_params(threshold, num_perm)

  def keep_first(item):
    kept, dropped = dedup.pick_first(list(item[1]))
    yield kept
    for _ in dropped:
      yield beam.pvalue.TaggedOutput("dropped", 1)

  def buckets(page):
    signature = dedup.minhash(page["text"], shingle_size, num_perm)
    data = dedup.signature_bytes(signature)
    for key in dedup.band_keys(signature, bands, rows):
      yield key, (page["id"], data)

  def bucket_duplicates(item):
    members = [(page_id, dedup.signature_from_bytes(data)) for page_id, data in item[1]]
    if len(members) > 1:
      for dropped_id, _ in dedup.near_duplicates_in_bucket(members, threshold):
        yield dropped_id

  def kept_pages(item):
    _, grouped = item
    if not grouped["duplicate"]:
      yield from grouped["page"]

  with beam.Pipeline(options=_options(config)) as pipeline:
    pages = pipeline | _read_stage(source_dir)
    unique = (pages | "ByUrl" >> beam.Map(lambda p: (dedup.url_key(p), p)) | "GroupUrl" >> beam.GroupByKey()
              | "KeepFirst" >> beam.FlatMap(keep_first).with_outputs("dropped", main="kept"))
    duplicates = (unique.kept | "Bands" >> beam.FlatMap(buckets) | "GroupBand" >> beam.GroupByKey()
                  | "Buckets" >> beam.FlatMap(bucket_duplicates) | beam.Distinct())
    kept = ({"page": unique.kept | "ById" >> beam.Map(lambda p: (p["id"], p)),
             "duplicate": duplicates | "DupById" >> beam.Map(lambda i: (i, True))}
            | beam.CoGroupByKey() | "Kept" >> beam.FlatMap(kept_pages))
    _write(kept, directory)
    counts = ((unique.dropped | _count("CountUrl", "dedup/url_duplicate")),
              (duplicates | _count("CountNear", "dedup/near_duplicate")),
              (kept | _count("CountKept", "dedup/kept")),
              (kept | "Tokens" >> beam.Map(lambda p: p.get("num_tokens", 0)) | beam.CombineGlobally(sum)
               | beam.Map(lambda n: json.dumps({"counts": {"dedup/kept_tokens": n}})))) | beam.Flatten()
    _write_counts(counts, directory)
  return _read_counts(directory)


class _Score(beam.DoFn):
  """Scores batches of pages with the round's fastText model (loaded once per worker)."""

  def __init__(self, model_path, max_chars):
    self.model_path, self.max_chars = model_path, max_chars

  def setup(self):
    self.scorer = classify.Scorer(self.model_path, self.max_chars)

  def process(self, batch):
    yield from map(stages.score_record, batch, self.scorer([p["text"] for p in batch]))


def run_score(config, model_path, pool_dir, directory):
  with beam.Pipeline(options=_options(config)) as pipeline:
    scored = (pipeline | _read_stage(pool_dir) | beam.BatchElements(min_batch_size=256, max_batch_size=1024)
              | beam.ParDo(_Score(model_path, config.classify.max_chars)))
    _write(scored, directory)


class _Decontaminate(beam.DoFn):
  def __init__(self, texts, n, min_words, tokenizer_path):
    self.texts, self.n, self.min_words, self.tokenizer_path = texts, n, min_words, tokenizer_path

  def setup(self):
    self.decontaminator = decontaminate.Decontaminator(self.texts, self.n, self.min_words)
    self.tokenizer = stages.load_tokenizer(self.tokenizer_path)

  def process(self, page):
    counts = read.Counts()
    kept, hits = stages.decontaminate_pages([page], self.decontaminator, counts, self.tokenizer)
    yield from kept
    for hit in hits:
      yield beam.pvalue.TaggedOutput("hits", hit)
    yield beam.pvalue.TaggedOutput("counts", json.dumps(counts.to_json()))


def run_decontaminate(config, texts, collected, first_round, directory) -> read.Counts:
  pool_dir = os.path.join(os.path.dirname(directory), "dedup")
  chosen = sorted((i, (collected[i], first_round[i])) for i in collected)

  def join(item):
    _, grouped = item
    if grouped["chosen"] and grouped["page"]:
      score, round_index = grouped["chosen"][0]
      yield dict(grouped["page"][0], score=score, round=round_index)

  with beam.Pipeline(options=_options(config)) as pipeline:
    pages = ({"page": pipeline | _read_stage(pool_dir) | "ById" >> beam.Map(lambda p: (p["id"], p)),
              "chosen": pipeline | "Chosen" >> beam.Create(chosen)}
             | beam.CoGroupByKey() | "Join" >> beam.FlatMap(join))
    outputs = pages | beam.ParDo(_Decontaminate(
        texts, config.decontaminate.n, config.decontaminate.min_words, config.tokenizer)).with_outputs(
            "hits", "counts", main="pages")
    _write(outputs.pages, directory)
    _write(outputs.hits, directory, prefix="hits", label="WriteHits")
    _write_counts(outputs.counts, directory)
  return _read_counts(directory)
