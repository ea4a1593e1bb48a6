"""Task `dataset`: the math datasets as TFDS ArrayRecord (benchmarks, RL questions, SFT records).

  python -m dsmath_jax.main --config=configs/dataset.py --workdir=runs/data
  python -m dsmath_jax.main --config=configs/dataset.py:tiny --workdir=/tmp/data_tiny   # seconds

Writes WORKDIR/tfds/dsmath_questions/{gsm8k,math} (train/test; MATH test = MATH-500) and
WORKDIR/tfds/dsmath_sft/{gsm8k_cot,math_cot,tora,pot_svamp,mathcoder_svamp} and prints counts per
source, split and format (~2 min on 2 busy CPU cores). Every train record is checked against the
paper's decontamination list (§2.1: GSM8K, all 5,000 MATH test problems, CMATH, Gaokao; problems,
options and solutions, read through dsmath_jax/benchmarks). On ../shared/data: GSM8K 7,473/1,319
and MATH 7,497/500 questions (2 MATH train solutions end in an empty \boxed{}, 1 question is a
MATH test question); SFT records: gsm8k_cot 7,454 (19 share a 10-gram with the list), math_cot
5,195 (2,302 share one: MATH train and test hold many problems of the same template, e.g. "A ball
travels on a parabolic path in which the height ..."), pot_svamp 848 of 999 programs print the gold
answer, mathcoder_svamp 705 of 715, tora 23 of 30 reproduce their outputs and answer (17 after
decontamination).
Read back with `dsmath_jax.datasets.load_source("dsmath_sft/gsm8k_cot", "train", data_dir)`.

File paths are absolute or relative to the repository root (`../shared/data/...` is the
shared-data checkout beside it). Add a source (CMATH, MGSM-zh, MathInstruct, your own JSONL)
in a config that imports this one:
  c.questions.cmath = dict(reader="jsonl", files=dict(test="/data/cmath_test.jsonl"),
                           fields=dict(question="question", answer="golden"), answer_from="field")
  c.sft.mathinstruct = dict(reader="jsonl", file="/data/MathInstruct.jsonl", format="cot",
                            fields=dict(question="instruction", response="output"))
"""
import ml_collections

from configs import common
from dsmath_jax.benchmarks import catalog

SHARED = common.SHARED_DATA
SAMPLE = f"{common.ASSETS}/math_sample"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.task = "dataset"
  c.data_dir = ""                                  # "" -> WORKDIR/tfds
  c.skip_bad_records = False                       # True: count and log bad JSONL lines, do not fail
  root = SAMPLE if args.variant == "tiny" else SHARED
  names = _tiny_files() if args.variant == "tiny" else _shared_files()
  c.questions = dict(
      gsm8k=dict(reader="gsm8k", files=dict(train=f"{root}/{names['gsm8k_train']}",
                                            test=f"{root}/{names['gsm8k_test']}")),
      math=dict(reader="math", files=dict(train=f"{root}/{names['math_train']}",
                                          test=f"{root}/{names['math_test']}")),
  )
  c.sft = dict(
      gsm8k_cot=dict(reader="gsm8k_cot", file=f"{root}/{names['gsm8k_train']}"),
      math_cot=dict(reader="math_cot", file=f"{root}/{names['math_train']}"),
      tora=dict(reader="tora", file=f"{root}/{names['tora']}"),
      pot_svamp=dict(reader="pot", file=f"{root}/{names['pot']}"),
  )
  if "mathcoder" in names:                         # Apache-2.0 data: not in the MIT tiny sample
    c.sft.mathcoder_svamp = dict(reader="mathcoder", file=f"{root}/{names['mathcoder']}")
  c.decontamination = dict(
      benchmarks=("gsm8k/test", "math/test"),      # question splits every train record is checked against
      # and the paper's list (§2.1) through the benchmark definitions: GSM8K, all 5,000 MATH test
      # problems, CMATH, Gaokao-MathCloze/MathQA (tiny: the configured splits only)
      sets=() if args.variant == "tiny" else tuple(
          dict(name=name, path=f"{SHARED}/{catalog.get(name).path}", optional=False)
          for name in catalog.DECONTAMINATION),
      sft_ngram=10,                                # SFT: exact match + the §2.1 10-gram rule (0: exact only)
      questions_ngram=0,                           # RL questions: exact match only, so GSM8K/MATH train stay whole
  )
  # Sandbox for PoT/MathCoder/ToRA programs. Generous: a record is judged on what its program
  # prints, not on the speed of a loaded build machine (one ToRA program takes ~8 s on 2 busy cores).
  c.execution = dict(timeout_s=30.0, workers=2)
  return c


def _shared_files():
  return dict(gsm8k_train="gsm8k/train.jsonl", gsm8k_test="gsm8k/test.jsonl",
              math_train="math/train.jsonl", math_test="math/math500_test.jsonl",
              tora="tora/examples.jsonl", pot="pot_svamp/svamp_s0_e-1_11_24_14_38.jsonl",
              mathcoder="mathcoder_svamp/SVAMP_test_result-20230917-2303-correct.jsonl")


def _tiny_files():
  return dict(gsm8k_train="gsm8k_train.jsonl", gsm8k_test="gsm8k_test.jsonl",
              math_train="math_train.jsonl", math_test="math500_test.jsonl",
              tora="tora.jsonl", pot="pot_svamp.jsonl")
