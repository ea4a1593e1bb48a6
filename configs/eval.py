"""Evaluation (paper §2.2.1, §3.2, §4.2): greedy accuracy, maj@k and pass@k on GSM8K, MATH-500, any JSONL.

  python -m dsmath_jax.main --config=configs/eval.py:math --config.checkpoint=runs/sft/model --workdir=runs/eval
  python -m dsmath_jax.main --config=configs/eval.py:gsm8k,base --config.checkpoint=runs/pretrain/model ...
  python -m dsmath_jax.main --config=configs/eval.py:math,k=64 --config.checkpoint=runs/grpo/model ...
  python -m dsmath_jax.main --config=configs/eval.py:math,tool --config.checkpoint=... (tool-integrated, §3.2)
  python -m dsmath_jax.main --config=configs/eval.py:gsm8k --config.predictions=outputs.jsonl --workdir=...
  python -m dsmath_jax.main --config=configs/eval.py:tiny --workdir=/tmp/eval_tiny     (seconds, random model)
  python -m dsmath_jax.main --config=configs/eval.py:/path/to/questions.jsonl --config.data.question_field=q ...

Arg: a benchmark (`gsm8k`, `math` = MATH-500, `tiny`, or a .jsonl path), then optional words:
`base` (few-shot CoT for base checkpoints: 8-shot GSM8K, 4-shot MATH, exemplars drawn from the
training splits), `tool` (tool-integrated prompt, program outputs executed in the sandbox), and
`k=64` (64 samples at temperature 0.7: maj@k and pass@k for k = 1, 2, 4, ..., 64, Figure 7).
Without `k`, one greedy sample (the paper's headline accuracies, Tables 3-6: DeepSeekMath-RL 7B
88.2% GSM8K / 51.7% MATH with CoT).

Writes WORKDIR/eval/<benchmark>/samples.jsonl (one line per sample: id, prediction, extracted
answer, correct, ...), summary.json, report.md and accuracy_vs_k.png. With
`--config.predictions=FILE.jsonl` (lines {"id": ..., "output": ...}) it grades those outputs and
needs no model.
"""
import pathlib

import ml_collections

from configs import common

DATA = common.SHARED_DATA
ASSETS = f"{common.ASSETS}/eval"

BENCHMARKS = {
    # name: (test file, few-shot style, training file for few-shot exemplars)
    "gsm8k": (f"{DATA}/gsm8k/test.jsonl", "gsm8k", f"{DATA}/gsm8k/train.jsonl"),
    "math": (f"{DATA}/math/math500_test.jsonl", "math", f"{DATA}/math/train.jsonl"),
    "tiny": (f"{ASSETS}/tiny_questions.jsonl", "math", f"{common.ASSETS}/math_sample/math_train.jsonl"),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  benchmark, _, rest = (arg or "math").partition(",")
  args = common.parse_arg(rest, k=0)
  flags = {word.strip() for word in rest.split(",") if word.strip() and "=" not in word}
  unknown = flags - {"base", "tool"}
  if unknown:
    raise ValueError(f"configs/eval.py: unknown words {sorted(unknown)} in {arg!r}; known: base, tool, k=N")
  if benchmark in BENCHMARKS:
    path, style, train_path = BENCHMARKS[benchmark]
    name = "math500" if benchmark == "math" else benchmark
  elif benchmark.endswith(".jsonl"):
    path, style, train_path, name = benchmark, "", "", pathlib.Path(benchmark).stem
  else:
    raise ValueError(f"configs/eval.py: benchmark must be one of {sorted(BENCHMARKS)} or a .jsonl path, "
                     f"got {benchmark!r}")

  c = ml_collections.ConfigDict()
  c.task = "eval"
  c.seed = 0
  # A load_pretrained path (GGUF, HF dir or a stage's WORKDIR/model); "" = random init of `model`.
  c.checkpoint = ""
  c.tokenizer = "byte"                                    # used when the checkpoint carries none
  c.model = common.model("deepseek_math_7b")
  c.predictions = ""                                      # JSONL of {"id", "output"}: grade, no model
  c.data = dict(
      name=name, path=path,
      format="auto",                                      # auto | gsm8k | math | jsonl
      question_field="question", answer_field="answer",   # for format jsonl
      answer_from="field",                                # field | boxed | gsm8k (jsonl only)
      id_field="", subject_field="", level_field="",      # jsonl only; "" = line-number ids
      limit=0,                                            # first N questions (0 = all)
      predictions_id_field="id", predictions_output_field="output")
  c.prompt = dict(
      template="tool" if "tool" in flags else "cot",      # templates.py, for instruct/RL checkpoints
      chat=False,                                         # True: wrap in the checkpoint's chat template
      fewshot=0,                                          # >0: few-shot CoT for base checkpoints
      fewshot_style=style,                                # gsm8k | math: exemplar layout
      fewshot_path=train_path,                            # exemplars come from this training file
      fewshot_seed=0)
  if "base" in flags:
    c.prompt.fewshot = 8 if style == "gsm8k" else 4
  c.sampling = dict(
      num_samples=args.k or 1,
      greedy=not args.k,                                  # greedy ignores temperature/top_p
      temperature=0.7, top_p=1.0, top_k=0,                # paper Fig. 7: maj@K / pass@K at T=0.7
      max_new_tokens=1024,
      batch_size=64,                                      # rows per sampler call
      max_tool_rounds=4)                                  # tool-integrated: program executions
  c.sandbox = dict(workers=4,                              # tool-integrated: program executions
                   allow_unisolated=False)                # True: even without kernel isolation
  c.grader = dict(
      workers=2,                                          # grading processes
      timeout_s=5.0,                                      # per comparison; over = incorrect, listed
      second_opinion=True,                                # math-verify too; report lists disagreements
      memory_mb=4096)
  c.mesh = common.mesh()
  c.logical_axis_rules = common.LOGICAL_AXIS_RULES
  if benchmark == "tiny":                                 # seconds on a CPU: random model, bytes
    c.model = common.model("tiny")
    c.sampling.update(num_samples=args.k or 2, greedy=False, max_new_tokens=16, batch_size=8)
  return c
