"""Reward model (paper §4.1.2-4.1.3): outcome or process RM from the base model, lr 2e-5.

  python -m dsmath_jax.main --config=configs/reward_model.py:tiny --workdir=runs/rm_tiny
  python -m dsmath_jax.main --config=configs/reward_model.py:kind=process --workdir=runs/prm

Writes WORKDIR/model (decoder + scalar head), which GRPO reads as `rl.reward_model`, and
metrics (rm_loss, rm_accuracy) with curves.png. `:tiny` labels a random tiny policy's own
samples on 4 GSM8K questions (mostly "wrong": it checks the plumbing, not quality).
"""
import ml_collections

from configs import common
from configs.grpo import DATA


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, kind="outcome")
  c = ml_collections.ConfigDict()
  c.task = "reward_model"
  c.seed = 0
  c.allow_config_change = False    # True: a resumed run may differ from WORKDIR/config.json (config_types.check_resume)
  c.checkpoint = ""                    # paper: DeepSeekMath-Base 7B (load_pretrained path)
  c.tokenizer = "byte"
  c.model = common.model("deepseek_math_7b")
  c.data = dict(
      kind=args.kind,                  # "outcome" | "process"
      source="policy",                 # "policy" | "prm800k:PATH" | "jsonl:PATH" (rm_task.py)
      questions=f"gsm8k:{DATA}/gsm8k/train.jsonl,math:{DATA}/math/train.jsonl",
      template="cot", seq_len=2048, global_batch=256)
  # Labelling the policy's own samples (data.source="policy"); `checkpoint` is that policy.
  c.label = dict(num_questions=20000, samples_per_question=8, max_new_tokens=1024, temperature=1.0,
                 num_completions=8,    # Math-Shepherd N per step prefix (process)
                 step_delimiter="\n")
  c.optim = dict(lr=2e-5, schedule="constant", steps=1000, warmup_steps=10, weight_decay=0.0,
                 clip_norm=1.0)
  c.train = dict(num_microbatches=32)
  c.mesh = common.mesh()
  c.distributed = common.distributed()
  c.logical_axis_rules = common.LOGICAL_AXIS_RULES
  if args.variant == "tiny":
    c.model = common.model("tiny")
    c.data.update(questions=f"gsm8k:{common.ASSETS}/math_sample/gsm8k_test.jsonl", seq_len=512,
                  global_batch=4)
    c.label.update(num_questions=4, samples_per_question=2, max_new_tokens=12, num_completions=2)
    c.optim.update(lr=1e-3, steps=2, warmup_steps=0)
    c.train.num_microbatches = 1
  return c
