"""Evaluation (paper §2.2.1, §3.2, §4.2; Tables 2, 3, 5): greedy accuracy, maj@k and pass@k on the paper's benchmarks.

  python -m dsmath_jax.main --config=configs/eval.py:paper --config.checkpoint=runs/grpo/model --workdir=runs/eval
  python -m dsmath_jax.main --config=configs/eval.py:paper,base --config.checkpoint=runs/pretrain/model ...
  python -m dsmath_jax.main --config=configs/eval.py:math --config.checkpoint=runs/sft/model --workdir=runs/eval
  python -m dsmath_jax.main --config=configs/eval.py:math,k=64 --config.checkpoint=runs/grpo/model ...
  python -m dsmath_jax.main --config=configs/eval.py:gsm8k,tool --config.checkpoint=... (tool-integrated, §3.2)
  python -m dsmath_jax.main --config=configs/eval.py:ocw --config.predictions=outputs.jsonl --workdir=...
  python -m dsmath_jax.main --config=configs/eval.py:paper,limit=20 --config.checkpoint=SmolLM2.gguf ... (CPU smoke)
  python -m dsmath_jax.main --config=configs/eval.py:tiny --workdir=/tmp/eval_tiny     (seconds, random model)
  python -m dsmath_jax.main --config=configs/eval.py:/path/to/questions.jsonl ...     (a file of your own)

Arg: a benchmark of dsmath_jax/benchmarks/catalog.py (gsm8k, math = all 5,000 MATH test problems,
math500, sat, ocw, mmlu_stem, cmath, gaokao_mathcloze, gaokao_mathqa, mgsm_zh), `paper` (the
whole table), `tiny`, or a .jsonl path (fields question/answer[/id]); then optional words:
`base` (the paper's fixed few-shot CoT prompt of each benchmark, for base checkpoints), `tool`
(tool-integrated prompt, programs executed in the sandbox), `k=64` (64 samples at temperature
0.7: maj@k and pass@k, Figure 7), `limit=N` (the first N questions of each benchmark), `paper_compat`
(DeepSeek-Math's own grading rules, to compare with its published numbers).
Without `k`, one greedy sample per question (the paper's headline accuracies: DeepSeekMath-RL 7B
88.2% GSM8K / 51.7% MATH with CoT).

Benchmark files are read from `data.root` (../shared/data: DeepSeek-Math's released files, MATH's
test set); `--config.data.paths.<name>=FILE` reads one from elsewhere. Writes
WORKDIR/eval/<benchmark>/ (samples.jsonl, summary.json, report.md) and WORKDIR/eval/summary.{md,json,png}.
"""
import ml_collections

from configs import common

ASSETS = f"{common.ASSETS}/eval"
WORDS = ("base", "tool", "paper_compat")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  target, _, rest = (arg or "math").partition(",")
  words = {w.strip() for w in rest.split(",") if w.strip() and "=" not in w}
  args = common.parse_arg(",".join(w for w in rest.split(",") if "=" in w), k=0, limit=0)
  if words - set(WORDS):
    raise ValueError(f"configs/eval.py: unknown words {sorted(words - set(WORDS))} in {arg!r}; known: "
                     f"{', '.join(WORDS)}, k=N, limit=N")
  from dsmath_jax.benchmarks import catalog
  paths = {}
  if target == "paper":
    benchmarks = catalog.PAPER_TABLE
  elif target == "tiny":
    benchmarks, paths = ("jsonl",), {"jsonl": f"{ASSETS}/tiny_questions.jsonl"}
  elif target.endswith(".jsonl"):
    benchmarks, paths = ("jsonl",), {"jsonl": target}
  elif target in catalog.BENCHMARKS and target != "jsonl":
    benchmarks = (target,)
  else:
    raise ValueError(f"configs/eval.py: the first word must be a benchmark {sorted(set(catalog.BENCHMARKS) - {'jsonl'})}, "
                     f"'paper', 'tiny' or a .jsonl path; got {target!r}")

  c = ml_collections.ConfigDict()
  c.task = "eval"
  c.seed = 0
  # A load_pretrained path (GGUF, HF dir or a stage's WORKDIR/model); "" = random init of `model`.
  c.checkpoint = ""
  c.tokenizer = "byte"                                    # used when the checkpoint carries none
  c.model = common.model("deepseek_math_7b")
  c.predictions = ""                                      # JSONL of {"id", "output"} (or a folder of
  #                                                         <benchmark>.jsonl): grade those, no model
  c.data = dict(
      benchmarks=tuple(benchmarks),
      root=common.SHARED_DATA,                            # benchmark files: root/<definition path>
      paths=paths,                                        # {benchmark: file} overrides
      limit=args.limit,                                   # first N questions of each (0 = all)
      name="tiny" if target == "tiny" else "",            # output folder of a single benchmark
      predictions_id_field="id", predictions_output_field="output")
  c.prompt = dict(
      template="tool" if "tool" in words else "cot",      # zero-shot instruction (instruct/RL checkpoints)
      fewshot="base" in words,                            # the paper's few-shot prompts (base checkpoints)
      chat=False)                                         # True: the checkpoint's own chat template
  c.sampling = dict(
      num_samples=args.k or 1,
      greedy=not args.k,                                  # greedy ignores temperature/top_p/top_k
      temperature=0.7, top_p=1.0, top_k=0,                # paper Fig. 7: maj@K / pass@K at T=0.7
      max_new_tokens=1024,
      batch_size=64)                                      # rows per sampler call
  c.tool = dict(max_rounds=4, sandbox_workers=4)          # tool-integrated runs: program executions
  c.sandbox = dict(allow_unisolated=False)                # True: run programs even without kernel isolation
  c.grader = dict(
      workers=2,                                          # grading processes
      timeout_s=5.0,                                      # per comparison; over = incorrect, listed
      second_opinion=False,                               # math-verify too; the report lists disagreements
      memory_mb=4096,
      paper_compat="paper_compat" in words)               # DeepSeek-Math's own rules (default: strict)
  c.mesh = common.mesh()
  c.distributed = common.distributed()
  c.logical_axis_rules = common.LOGICAL_AXIS_RULES
  if target == "tiny":                                    # seconds on a CPU: random model, bytes
    c.model = common.model("tiny")
    c.sampling.update(num_samples=args.k or 2, greedy=False, max_new_tokens=16, batch_size=8)
  return c
