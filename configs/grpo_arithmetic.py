"""GRPO on generated arithmetic word problems: the CPU experiment that shows GRPO learning.

  python experiments/grpo_arithmetic/run.py --config=configs/grpo_arithmetic.py --workdir=runs/grpo_arith

experiments/grpo_arithmetic/run.py generates the task (task.py), SFTs the `small` preset
(thinned to ~0.6M params, byte tokenizer; 600 steps x 32, ~9 min on 2 cores) on worked
solutions from an imperfect teacher (experiment.teacher_error: half of them apply the wrong
second operation), which leaves modest greedy accuracy with the right answer often among the
samples; evaluates greedy accuracy, maj@k and pass@k on held-out questions, runs GRPO
(rule-based grader reward against the true answers) for `experiment.minutes` of wall clock,
evaluates again and plots reward/accuracy/KL/length. Only the grader decides accuracy, so a
format reward cannot be what rises. `:tiny` runs every stage for a few steps.
"""
from configs import common
from configs import grpo


def get_config(arg: str | None = None):
  args = common.parse_arg(arg)
  c = grpo.get_config(arg)
  # The `small` preset thinned to ~0.6M parameters, so SFT + 20 minutes of GRPO fit 2 CPU cores.
  c.model = common.model("small", hidden_size=128, num_layers=3, num_heads=4, num_kv_heads=2,
                         head_dim=32, mlp_dim=384)
  c.tokenizer = "byte"
  c.checkpoint = ""                      # set by run.py to WORKDIR/sft/model
  c.data.questions = ""                  # set by run.py to WORKDIR/task/rl_train.jsonl
  c.data.questions_per_step = 8
  # Byte tokens: prompts are <= 182 tokens, a worked solution <= 54 tokens + EOS (task.py).
  c.rl.update(group_size=8, max_prompt_len=184, max_new_tokens=60, logprob_gap_every=10,
              outputs_per_row=8)             # a group's 8 outputs share one copy of the prompt
  # A 0.6M-parameter policy moves little at the paper's 1e-6; 2e-4 drifted (per-token KL ~0.1,
  # pass@8 92 -> 70 in 4 minutes) while 5e-5 learns (KL ~0.01).
  c.optim.update(lr=5e-5, steps=100000, clip_norm=1.0)      # bounded by experiment.minutes
  c.train.num_microbatches = 1
  c.experiment = dict(num_train=20000, num_test=200, seed=0,
                      sft_steps=600, sft_lr=2e-3, sft_batch=32,
                      minutes=20.0, eval_k=8, eval_questions=200,
                      sft_model="",          # a WORKDIR/sft/model to start from instead of SFT
                      sft_init="",           # a WORKDIR/sft/model that SFT continues from
                      max_factor=5,          # bound of the multiplied numbers (task.py)
                      max_addend=9,          # bound of the added/removed counts
                      teacher_error=0.5)     # share of SFT solutions with the wrong 2nd operation
  if args.variant == "tiny":
    c.model = common.model("tiny")
    c.data.questions_per_step = 2
    c.rl.update(group_size=4, max_new_tokens=8, outputs_per_row=4)
    c.experiment.update(num_train=64, num_test=4, sft_steps=2, sft_batch=4, minutes=0.05, eval_k=2,
                        eval_questions=4)
  return c
