"""GRPO on generated arithmetic word problems (CPU): does the RL recipe raise accuracy on
problems whose templates and numbers no training problem has?

  python experiments/grpo_arithmetic/run.py --config=configs/grpo_arithmetic.py --workdir=runs/grpo_arith
  python experiments/grpo_arithmetic/report.py runs/grpo_arith/results

The task (dsmath_jax/data/word_problems.py): two-step problems ("Li has 3 boxes of 4 cards.
Then Li loses 5. How many ...?"); held-out problems use 8 (opener, change) templates and 25% of
the number tuples that no training problem uses (overlap printed and recorded: 0). One SFT
model (the `small` preset thinned to ~0.6M params, byte tokenizer; 300 steps x 32) is trained on
the solutions of an imperfect teacher (experiment.task.teacher_error: about half apply the
wrong second operation), and shared by every RL seed; each seed then runs
`experiment.rl_steps` GRPO steps (rule-based grader reward against the true answers). Results:
held-out greedy accuracy, maj@k and pass@k before and after, a greedy curve every
`experiment.eval_every` steps. `:tiny` runs every stage for a few steps (about a minute on a CPU).
"""
from configs import common
from configs import grpo


def get_config(arg: str | None = None):
  args = common.parse_arg(arg)
  c = grpo.get_config(arg)
  # The `small` preset thinned to ~0.6M parameters, so SFT + GRPO x 3 seeds fit 2 CPU cores.
  c.model = common.model("small", hidden_size=128, num_layers=3, num_heads=4, num_kv_heads=2,
                         head_dim=32, mlp_dim=384)
  c.tokenizer = "byte"
  c.checkpoint = ""                      # set by run.py to the SFT model
  c.data.questions = ""                  # set by run.py to WORKDIR/task/rl.jsonl
  c.data.questions_per_step = 8
  # Byte tokens: prompts are <= 195 tokens, a worked solution <= 51 tokens + EOS (word_problems.py).
  c.rl.update(group_size=8, max_prompt_len=196, max_new_tokens=60, logprob_gap_every=10,
              outputs_per_row=8)             # a group's 8 outputs share one copy of the prompt
  # A 0.6M-parameter policy moves little at the paper's 1e-6; 2e-4 drifted in an earlier version
  # of this task (per-token KL ~0.1, pass@8 92 -> 70) while 5e-5 learned (KL ~0.01).
  c.optim.update(lr=5e-5, steps=300, clip_norm=1.0)         # run.py sets steps = experiment.rl_steps
  c.train.num_microbatches = 1
  c.experiment = dict(
      task=dict(num_train=20000,         # first half: SFT records; second half: RL questions
                num_test=200, seed=0,
                family="two_step",       # dsmath_jax/data/word_problems.py
                teacher_error=0.5,       # share of SFT solutions with the wrong 2nd operation
                max_factor=5,            # bound of the multiplied numbers
                max_addend=9,            # bound of the added/removed numbers
                test_number_fraction=0.25),   # share of (p, q, r) tuples kept for held-out problems
      sft=dict(steps=300, lr=2e-3, batch=32, seed=0,
               model=""),                # a WORKDIR/sft/model to reuse instead of training one
      rl_seeds=(0, 1, 2),                # GRPO runs from the one SFT model (question order, samples)
      rl_steps=300,                      # GRPO steps per seed (a step budget: load-independent)
      eval_every=50,                     # held-out greedy accuracy every this many steps
      eval_k=8,                          # maj@k / pass@k for k = 1, 2, 4, ..., eval_k
      eval_questions=200,
      maj_pass=dict(k=64, questions=200))   # maj_pass.py: maj@k / pass@k up to k (paper Figure 7)
  if args.variant == "tiny":
    c.model = common.model("tiny")
    c.data.questions_per_step = 2
    c.rl.update(group_size=4, max_new_tokens=8, outputs_per_row=4)
    c.experiment.task.update(num_train=64, num_test=4)
    c.experiment.sft.update(steps=2, batch=4)
    c.experiment.update(rl_seeds=(0, 1), rl_steps=2, eval_every=1, eval_k=2, eval_questions=4,
                        maj_pass=dict(k=4, questions=4))
  return c
