"""DeepSeekMath corpus collection (paper §2.1): iterative fastText recall over Common Crawl -> TFDS `dsmath_corpus`.

  python -m dsmath_jax.main --config=configs/corpus.py:tiny --workdir=runs/corpus_tiny
  # ~13 s on 2 CPU cores: 3 rounds over the shipped sample (dsmath_jax/assets/corpus) collect 56 -> 68 -> 69
  # pages (rounds 2 and 3 add the pages under the URL paths marked in the shipped review files; round 3 has
  # 98.6% overlap with round 2, so it is also where the paper's ~98% rule stops); see
  # runs/corpus_tiny/corpus/report.md, stats.json, scores.png and tfds/dsmath_corpus.

  python -m dsmath_jax.main --config=configs/corpus.py --workdir=/mnt/bucket/corpus \
    --config.read.inputs='({"path": "gs://bucket/CC-MAIN-2023-*/*.warc.wet.gz"},)' --config.runner=beam \
    --config.beam_options='("--runner=DataflowRunner", "--project=P", "--region=R", "--temp_location=gs://T")'
  # Flink/Spark: --runner=FlinkRunner --flink_master=HOST:8081 | --runner=SparkRunner --spark_master_url=...
  # Inputs may be gs:// or s3:// (fsspec); WORKDIR must be a filesystem path that the driver and every worker
  # see (local disk for DirectRunner, a gcsfuse/Filestore/NFS mount for Dataflow, Flink or Spark).

Paper hyperparameters: fastText dim 256, lr 0.1, word n-grams 3, min count 3, 3 epochs; 500K seed positives vs
500K random negatives; round 1 keeps the top 40B tokens; domains with >10% pages collected are reviewed; stop when
~98% of the collected pages were already collected in the previous round (4 rounds in the paper); decontaminate
with 10-grams (exact match for 3..9-gram texts) against GSM8K, MATH, CMATH and AGIEval.
"""

import ml_collections

from configs import common
from dsmath_jax.benchmarks import catalog

ASSETS = f"{common.ASSETS}/corpus"
SHARED = common.SHARED_DATA


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, variant="full")
  c = ml_collections.ConfigDict()
  c.task = "corpus"
  c.runner = "local"                                        # "local" (in-process) | "beam"
  c.beam_options = ("--runner=DirectRunner", "--direct_num_workers=1")
  c.tokenizer = "byte"                                      # any dsmath_jax.tokenizer.load_tokenizer path
  c.read = dict(
      # Each input: path (glob, local or gs://, s3://), format auto|warc|wet|jsonl, JSONL text/url keys.
      inputs=(dict(path="CC-MAIN-*.warc.wet.gz", format="auto"),),
      seeds=(dict(path="open-web-math/*.jsonl.gz", format="jsonl", text_keys=("text",), url_keys=("url",)),),
      negatives=(),                                         # random pages; empty: sample the pool
      languages=("en", "zh"),                               # empty: no language filter
      lid_model="",                                         # fastText lid.176.bin; empty: heuristic
      # What one input record may cost (dsmath_jax/corpus/read.py Limits); a record over a limit is skipped and
      # counted under skipped/<reason> with its file and position, so one record cannot crash or swamp a run.
      max_record_bytes=4 << 20,                             # WARC block / JSONL line / decoded page (CC cuts at 1 MiB)
      max_html_depth=128,                                   # MathML nesting (real formulas: under 30)
      max_json_depth=128,                                   # JSON nesting of a JSONL line (real records: under 10)
      max_json_number_digits=4300)                          # digits of a JSON integer (Python's int limit)
  c.dedup = dict(shingle_size=5, num_perm=128, threshold=0.8)
  c.classify = dict(dim=256, lr=0.1, word_ngrams=3, min_count=3, epoch=3, bucket=2_000_000, threads=1,
                    max_chars=20000, num_negatives=500_000, heldout_fraction=0.02,
                    token_budget=40_000_000_000, min_score=0.0)
  c.domains = dict(min_fraction=0.10, min_pages=10)
  c.rounds = dict(num_rounds=4, stop_overlap=0.98, annotations=())
  # The paper's list (§2.1): GSM8K, all 5,000 MATH test problems, CMATH, Gaokao-MathCloze/MathQA,
  # read through their definitions in dsmath_jax/benchmarks (problems, options, solutions).
  c.decontaminate = dict(n=10, min_words=3, benchmarks=tuple(
      dict(name=name, path=f"{SHARED}/{catalog.get(name).path}", optional=False) for name in catalog.DECONTAMINATION))
  c.write = dict(store_tokens=False)
  if args.variant == "tiny":                                # seconds on one CPU, shipped sample only
    c.read.inputs = (dict(path=f"{ASSETS}/web.jsonl.gz", format="jsonl"),
                     dict(path=f"{ASSETS}/pages.warc.gz", format="warc"))
    c.read.seeds = (dict(path=f"{ASSETS}/seed.jsonl.gz", format="jsonl"),)
    c.read.negatives = (dict(path=f"{ASSETS}/random_pages.jsonl.gz", format="jsonl"),)
    c.read.languages = ()                                  # the sample is multilingual CC on purpose
    # A 60-page seed needs more passes and a smaller hash table than the paper's 500K-page seed.
    c.classify.update(dim=64, lr=0.5, epoch=25, min_count=1, bucket=100_000, max_chars=3000,
                      num_negatives=1000, heldout_fraction=0.2, token_budget=0, min_score=0.99)
    c.domains.min_pages = 3
    c.rounds.num_rounds = 3
    c.rounds.annotations = (f"{ASSETS}/review_round_1.txt", f"{ASSETS}/review_round_2.txt")
    c.decontaminate.benchmarks = (
        dict(name="gsm8k", path=f"{ASSETS}/gsm8k_test_head.jsonl", optional=False),
        dict(name="math", path=f"{ASSETS}/math500_test_head.jsonl", optional=False))
  return c
