"""Task `corpus`: the DeepSeekMath corpus collection pipeline (paper §2.1, Figure 2), into WORKDIR/corpus/.

  read (WARC/WET/JSONL -> text with LaTeX, language) -> dedup (URL + MinHash LSH)
  -> round 1..R: train fastText (seed positives vs random pages) -> score every page -> keep the best within a
     token budget -> discover math domains -> review file (a human marks URL paths) -> next round's positives
     (stops early when >= stop_overlap of the collected pages were already collected the round before)
  -> decontaminate (10-gram / exact match against GSM8K, MATH, CMATH, AGIEval) -> TFDS `dsmath_corpus`.

Each stage writes WORKDIR/corpus/<stage>/ with `_SUCCESS.json` (fingerprint + counts) and is skipped when re-run
with the same inputs and config. `config.runner = "beam"` runs the per-page stages as Apache Beam pipelines
(`config.beam_options`, DirectRunner by default; Dataflow/Flink/Spark for Common Crawl) with identical outputs.
This module must not import jax: it runs on CPU workers.
"""
import dataclasses
import logging
import os
from collections.abc import Mapping

import numpy as np

from dsmath_jax import config_types, console, decontaminate
from dsmath_jax.benchmarks import load as benchmarks_load
from dsmath_jax.corpus import classify, dedup, domains, read, report, stages, store, write


@dataclasses.dataclass(frozen=True)
class ReadConfig:
  """`config.read`: the input files (each a dict: path glob, format, JSONL text/url keys)."""
  inputs: tuple[Mapping, ...]    # the pool: Common Crawl WARC/WET or JSONL
  seeds: tuple[Mapping, ...]     # seed positives (paper: OpenWebMath)
  negatives: tuple[Mapping, ...] # random pages; empty: sample the pool
  languages: tuple[str, ...]     # kept languages; empty: no language filter
  lid_model: str                 # fastText lid.176.bin; empty: heuristic
  # What one input record may cost: the section's max_* keys (read.Limits holds their defaults).
  limits: read.Limits = dataclasses.field(default_factory=read.Limits)

  @classmethod
  def from_config(cls, section, where: str = "config.read") -> "ReadConfig":
    limit_keys = tuple(f.name for f in dataclasses.fields(read.Limits))
    fields = config_types.strict_fields(cls, section, where=where, ignore=limit_keys)
    fields["limits"] = read.Limits.from_config(
        {k: v for k, v in config_types.plain(section).items() if k in limit_keys})
    return cls(**fields)


@dataclasses.dataclass(frozen=True)
class DedupConfig:
  """`config.dedup`: URL dedup then MinHash LSH near-duplicates."""
  shingle_size: int              # words per shingle
  num_perm: int                  # MinHash permutations
  threshold: float               # Jaccard similarity counted as a duplicate


@dataclasses.dataclass(frozen=True)
class ClassifyConfig:
  """`config.classify`: the fastText classifier of each round and what it keeps."""
  dim: int                       # paper: 256
  lr: float                      # paper: 0.1
  word_ngrams: int               # paper: 3
  min_count: int                 # paper: 3
  epoch: int                     # paper: 3
  bucket: int                    # hash buckets of the n-gram table
  threads: int                   # fastText training threads
  max_chars: int                 # characters of a page the classifier reads
  num_negatives: int             # random pages trained against (paper: 500K)
  heldout_fraction: float        # of seeds and negatives, held out to measure the classifier
  token_budget: int              # tokens kept per round (paper: 40B in round 1); 0 = no budget
  min_score: float               # pages below are never kept


@dataclasses.dataclass(frozen=True)
class DomainsConfig:
  """`config.domains`: which domains go to the review file."""
  min_fraction: float            # paper: > 10% of a domain's pages collected
  min_pages: int                 # and at least this many pages


@dataclasses.dataclass(frozen=True)
class RoundsConfig:
  """`config.rounds`: the iterations of §2.1."""
  num_rounds: int                # paper: 4
  stop_overlap: float            # stop when this fraction was collected the round before (paper: ~98%)
  annotations: tuple[str, ...]   # review file per round, already marked ("" / missing: WORKDIR's)


@dataclasses.dataclass(frozen=True)
class DecontaminateConfig:
  """`config.decontaminate`: the §2.1 n-gram rule against the benchmarks."""
  n: int                         # n-gram length (paper: 10)
  min_words: int                 # shorter texts match exactly (paper: 3)
  benchmarks: tuple[Mapping, ...]   # each: name (a dsmath_jax/benchmarks definition), path, optional


@dataclasses.dataclass(frozen=True)
class WriteConfig:
  """`config.write`: the TFDS dsmath_corpus."""
  store_tokens: bool             # also store token ids (of `tokenizer`)


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
  """configs/corpus.py, typed: every stage reads its own section."""
  runner: str                    # "local" (in-process) | "beam"
  beam_options: tuple[str, ...]  # PipelineOptions of the Beam runner
  tokenizer: str                 # load_tokenizer path for token counts ("byte" needs no file)
  read: ReadConfig
  dedup: DedupConfig
  classify: ClassifyConfig
  domains: DomainsConfig
  rounds: RoundsConfig
  decontaminate: DecontaminateConfig
  write: WriteConfig

  @classmethod
  def from_config(cls, config) -> "CorpusConfig":
    fields = config_types.strict_fields(cls, config, where="config", ignore=("task",))
    fields["read"] = ReadConfig.from_config(fields["read"])
    for field in dataclasses.fields(cls):
      if dataclasses.is_dataclass(field.type) and field.name != "read":
        fields[field.name] = config_types.from_section(field.type, fields[field.name],
                                                       where=f"config.{field.name}")
    if fields["runner"] not in ("local", "beam"):
      raise ValueError(f"config.runner={fields['runner']!r}: expected 'local' or 'beam'")
    return cls(**fields)


def _progress(iterable, desc, total=None):
  return console.progress(desc, total, iterable=iterable, unit="page", leave=False)


def _cfg(section) -> dict:
  """A section as the dict its stage's fingerprint (and keyword arguments) are made of."""
  return dataclasses.asdict(section)


def _beam(config: CorpusConfig):
  if config.runner == "beam":
    from dsmath_jax.corpus import beam
    return beam
  return None


def read_stage(config, directory: str, specs, name: str) -> dict:
  """Stage 1 over the files of `specs` into `directory` (pages sorted by id)."""
  files = stages.input_files(specs)
  fp = store.fingerprint("read", config.read.languages, config.read.lid_model, config.read.limits,
                         config.tokenizer, [(s, store.file_signature(p)) for s, p in files])
  status = store.done(directory, fp)
  if status:
    return status
  store.start(directory)
  runner = _beam(config)
  if runner:
    counts = runner.run_read(config, files, directory)
  else:
    counts = read.Counts()
    identify, tokenizer = stages.make_identifier(config.read.lid_model), stages.load_tokenizer(config.tokenizer)
    pages = []
    for spec, path in _progress(files, f"read {name}"):
      pages += stages.pages_of_file(spec, path, counts, languages=config.read.languages,
                                    identify=identify, tokenizer=tokenizer, limits=config.read.limits)
    store.write_records(directory, sorted(pages, key=lambda p: p["id"]))
  return store.mark_done(directory, fp, counts.to_json())


def dedup_stage(config, directory: str, upstream: dict, source_dir: str) -> dict:
  """Stage 2: exact URL dedup then MinHash-LSH near-dup removal."""
  dedup_config = _cfg(config.dedup)
  fp = store.fingerprint("dedup", dedup_config, upstream["fingerprint"])
  status = store.done(directory, fp)
  if status:
    return status
  store.start(directory)
  runner = _beam(config)
  if runner:
    counts = runner.run_dedup(config, source_dir, directory)
  else:
    counts = read.Counts()
    pages = dedup.dedup(list(store.read_records(source_dir)), counts=counts, progress=lambda x: _progress(
        x, "dedup minhash"), **dedup_config)
    store.write_records(directory, pages)
  return store.mark_done(directory, fp, counts.to_json())


def _positives(config, corpus_dir, seed_dir, pool_dir, round_index, previous_collected):
  """Round r's positives: the seed plus pool pages under URL prefixes marked in earlier review files that the
  previous round did not collect (cumulative across rounds)."""
  positives = list(store.read_records(seed_dir))
  prefixes, added = [], set()
  for earlier in range(1, round_index):
    prefixes += _marked_prefixes(config, corpus_dir, earlier)
    if prefixes:
      collected = previous_collected.get(earlier, set())
      added |= {p["id"] for p in store.read_records(pool_dir)
                if p["id"] not in collected and domains.url_matches(p["url"], prefixes)}
  seed_ids = {p["id"] for p in positives}
  positives += [p for p in store.read_records(pool_dir) if p["id"] in added and p["id"] not in seed_ids]
  return positives, sorted(set(prefixes)), sorted(added)


def _marked_prefixes(config, corpus_dir, round_index) -> list[str]:
  """Prefixes marked for the review of `round_index`: config.rounds.annotations[round_index - 1] when given
  (a shipped, already annotated file), else WORKDIR/corpus/round_N/review.txt as edited by a human."""
  annotations = list(config.rounds.annotations)
  if round_index <= len(annotations) and annotations[round_index - 1]:
    return domains.read_review(annotations[round_index - 1])
  path = os.path.join(corpus_dir, f"round_{round_index}", "review.txt")
  return domains.read_review(path) if os.path.exists(path) else []


def round_stage(config, corpus_dir, round_index, seed_status, pool_status, previous_collected,
                negatives_fp=None) -> dict:
  """One iteration: train, score, select within the budget, discover domains, write the review file."""
  directory = os.path.join(corpus_dir, f"round_{round_index}")
  seed_dir, pool_dir = os.path.join(corpus_dir, "seed"), os.path.join(corpus_dir, "dedup")
  classify_config = _cfg(config.classify)
  positives, prefixes, added = _positives(config, corpus_dir, seed_dir, pool_dir, round_index,
                                          previous_collected)
  fp = store.fingerprint("round", round_index, classify_config, _cfg(config.domains), seed_status["fingerprint"],
                         negatives_fp,
                         pool_status["fingerprint"], prefixes, added,
                         sorted(previous_collected.get(round_index - 1, ())))
  status = store.done(directory, fp)
  if status:
    return status
  review_path = os.path.join(directory, "review.txt")
  kept_review = None
  if os.path.exists(review_path) and domains.read_review(review_path):
    with open(review_path, encoding="utf-8") as f:      # a human's marks survive a recomputed round
      kept_review = f.read()
  store.start(directory)
  counts = read.Counts()

  # Train: positives vs random pages (config.read.negatives, else a random sample of the pool); a hash-chosen
  # held-out slice of both measures the classifier.
  positive_ids = {p["id"] for p in positives}
  pool_size = pool_status["counts"]["counts"].get("dedup/kept", 0)
  negatives_dir = os.path.join(corpus_dir, "negatives")
  negatives_dir = negatives_dir if config.read.negatives else pool_dir
  available = pool_size if negatives_dir == pool_dir else \
      store.read_json(os.path.join(negatives_dir, store.SUCCESS))["counts"]["counts"].get("kept", 0)
  rate = min(1.0, classify_config["num_negatives"] / max(available, 1))
  negatives = [p for p in store.read_records(negatives_dir)
               if stages.is_negative(p, rate) and p["id"] not in positive_ids]
  heldout = classify_config["heldout_fraction"]
  train_kwargs = {k: classify_config[k] for k in ("dim", "lr", "word_ngrams", "min_count", "epoch", "bucket",
                                                  "threads", "max_chars")}
  model_path = os.path.join(directory, "classifier.bin")
  added_ids = set(added)                     # pages from marked paths always train; held-out is seed only
  test_pos = [p for p in positives if p["id"] not in added_ids and stages.is_heldout(p, heldout)]
  test_ids = {p["id"] for p in test_pos}
  model = classify.train([p for p in positives if p["id"] not in test_ids],
                         [p for p in negatives if not stages.is_heldout(p, heldout)], model_path, **train_kwargs)
  scorer = classify.Scorer(model, classify_config["max_chars"])
  test_neg = [p for p in negatives if stages.is_heldout(p, heldout)]
  heldout_metrics = classify.precision_recall(
      scorer([p["text"] for p in test_pos + test_neg]), [True] * len(test_pos) + [False] * len(test_neg),
      threshold=max(classify_config["min_score"], 0.5))

  # Score every pool page; the budget threshold comes from a token histogram over score bins.
  runner = _beam(config)
  if runner:
    runner.run_score(config, model_path, pool_dir, directory)
  else:
    scored, batch = [], []
    for page in _progress(store.read_records(pool_dir), f"round {round_index} score", total=pool_size):
      batch.append(page)
      if len(batch) == 1024:
        scored += map(stages.score_record, batch, scorer([p["text"] for p in batch]))
        batch = []
    scored += map(stages.score_record, batch, scorer([p["text"] for p in batch]))
    store.write_records(directory, sorted(scored, key=lambda r: r["id"]))
  scored = sorted(store.read_records(directory), key=lambda r: r["id"])
  histogram = classify.token_histogram([r["score"] for r in scored], [r["num_tokens"] for r in scored])
  threshold_bin = classify.budget_bin(histogram, int(classify_config["token_budget"]))
  collected = [r for r in scored if classify.keep(r["score"], threshold_bin, classify_config["min_score"])]
  collected_ids = {r["id"] for r in collected}
  counts.add("round/scored", n=len(scored))
  counts.add("round/collected", n=len(collected))
  counts.add("round/collected_tokens", n=int(sum(r["num_tokens"] for r in collected)))
  store.write_json(os.path.join(directory, "collected_ids.json"), sorted(collected_ids))

  # Domains over the pool; the review file for the next round.
  domain_config = _cfg(config.domains)
  table = domains.domain_table(scored, collected_ids)
  math_domains = domains.math_domains(table, domain_config["min_fraction"], domain_config["min_pages"])
  store.write_json(os.path.join(directory, "domains.json"), {d: table[d] for d in math_domains})
  domains.write_review(review_path, round_index, table, math_domains, domain_config["min_fraction"])
  if kept_review:
    with open(review_path, "w", encoding="utf-8") as f:
      f.write(kept_review)
  previous = previous_collected.get(round_index - 1)
  overlap = len(collected_ids & previous) / max(len(collected_ids), 1) if previous is not None else None
  np.save(os.path.join(directory, "score_histogram.npy"), np.histogram(
      [r["score"] for r in scored], bins=50, range=(0, 1))[0])
  return store.mark_done(
      directory, fp, counts.to_json(), positives=len(positives), added_positives=len(added),
      marked_prefixes=prefixes, negatives=len(negatives), heldout=heldout_metrics,
      threshold=max(threshold_bin / classify.SCORE_BINS, classify_config["min_score"]),
      math_domains=math_domains, overlap_with_previous=overlap)


def decontaminate_stage(config, directory, collected, first_round, upstream_fps) -> dict:
  """Stage 5 over the final collection (text joined back from the dedup stage)."""
  decon_config = _cfg(config.decontaminate)
  benchmarks = [dict(b) for b in decon_config["benchmarks"]]
  fp = store.fingerprint("decontaminate", decon_config, upstream_fps,
                         [store.file_signature(b["path"]) for b in benchmarks])
  status = store.done(directory, fp)
  if status:
    return status
  store.start(directory)
  texts, benchmark_status = benchmarks_load.decontamination_set(benchmarks)
  runner = _beam(config)
  if runner:
    counts = runner.run_decontaminate(config, texts, collected, first_round, directory)
  else:
    counts = read.Counts()
    decontaminator = decontaminate.Decontaminator(texts, decon_config["n"], decon_config["min_words"])
    tokenizer = stages.load_tokenizer(config.tokenizer)
    pool_dir = os.path.join(os.path.dirname(directory), "dedup")
    pages = [dict(p, score=collected[p["id"]], round=first_round[p["id"]])
             for p in store.read_records(pool_dir) if p["id"] in collected]
    kept, hits = stages.decontaminate_pages(_progress(pages, "decontaminate"), decontaminator, counts, tokenizer)
    store.write_records(directory, sorted(kept, key=lambda p: p["id"]))
    store.write_records(directory, sorted(hits, key=lambda h: (h["id"], h["line"])), name="hits-00000-of-00001.jsonl.gz")
  return store.mark_done(directory, fp, counts.to_json(), benchmarks=benchmark_status)


def typed_config(config) -> CorpusConfig:
  """The door: every key of the config read once, unknown or missing keys refused by name."""
  return CorpusConfig.from_config(config)


def run(config, workdir: str) -> dict:
  """Task `corpus`: typed values (typed_config), then `collect`."""
  config_types.write_config(config, workdir)
  return collect(typed_config(config), workdir)


def collect(config: CorpusConfig, workdir: str) -> dict:
  """Runs (or resumes) the whole pipeline; returns the stats written to WORKDIR/corpus/stats.json."""
  corpus_dir = os.path.join(workdir, "corpus")
  os.makedirs(corpus_dir, exist_ok=True)
  stats = {"runner": config.runner, "rounds": []}
  stats["read"] = read_stage(config, os.path.join(corpus_dir, "read"), config.read.inputs, "pool")
  stats["seed"] = read_stage(config, os.path.join(corpus_dir, "seed"), config.read.seeds, "seed")
  if config.read.negatives:
    stats["negatives"] = read_stage(config, os.path.join(corpus_dir, "negatives"), config.read.negatives,
                                    "negatives")
  stats["dedup"] = dedup_stage(config, os.path.join(corpus_dir, "dedup"), stats["read"],
                               os.path.join(corpus_dir, "read"))
  previous_collected, first_round = {}, {}
  for round_index in range(1, config.rounds.num_rounds + 1):
    status = round_stage(config, corpus_dir, round_index, stats["seed"], stats["dedup"], previous_collected,
                         stats.get("negatives", {}).get("fingerprint"))
    stats["rounds"].append(status)
    ids = set(store.read_json(os.path.join(corpus_dir, f"round_{round_index}", "collected_ids.json")))
    previous_collected[round_index] = ids
    for page_id in ids:
      first_round.setdefault(page_id, round_index)
    logging.info("round %d: collected %d pages, overlap with previous %s", round_index, len(ids),
                 status["overlap_with_previous"])
    overlap = status["overlap_with_previous"]
    if overlap is not None and overlap >= config.rounds.stop_overlap:
      break
  last_round = len(stats["rounds"])
  scores = {r["id"]: r["score"] for r in store.read_records(os.path.join(corpus_dir, f"round_{last_round}"))
            if r["id"] in previous_collected[last_round]}
  stats["decontaminate"] = decontaminate_stage(
      config, os.path.join(corpus_dir, "decontaminated"), scores, first_round,
      [s["fingerprint"] for s in stats["rounds"]])
  stats["write"] = write_stage(config, workdir, corpus_dir, stats["decontaminate"])
  report.write_report(corpus_dir, stats)
  return stats


def write_stage(config, workdir, corpus_dir, upstream) -> dict:
  """Stage 6: the decontaminated pages as the TFDS dataset WORKDIR/tfds/dsmath_corpus."""
  directory = os.path.join(corpus_dir, "write")
  data_dir = os.path.join(workdir, "tfds")
  fp = store.fingerprint("write", _cfg(config.write), config.tokenizer, upstream["fingerprint"])
  status = store.done(directory, fp)
  if status and (not status["path"] or os.path.exists(status["path"])):
    return status
  store.start(directory)
  pages = list(store.read_records(os.path.join(corpus_dir, "decontaminated")))
  tokenizer = stages.load_tokenizer(config.tokenizer) if config.write.store_tokens else None
  if not pages:                                       # TFDS refuses an empty split; say so instead
    logging.warning("corpus: no page survived the rounds and decontamination; no TFDS dataset written")
    return store.mark_done(directory, fp, {"counts": {"write/pages": 0, "write/tokens": 0}}, path=None)
  target = write.write_dataset(pages, data_dir, tokenizer=tokenizer, store_tokens=config.write.store_tokens)
  counts = {"counts": {"write/pages": len(pages), "write/tokens": int(sum(p["num_tokens"] for p in pages))}}
  return store.mark_done(directory, fp, counts, path=target)
