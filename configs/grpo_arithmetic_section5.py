"""The paper's §5 RL comparisons in miniature on the arithmetic task of configs/grpo_arithmetic.py
(same task, same shared SFT model, same content-disjoint held-out problems):

  (a) Figure 5: GRPO with outcome supervision (an outcome reward model) vs process supervision
      (a process reward model trained on Math-Shepherd labels of the SFT model's own samples);
  (b) Figure 6: one round of GRPO vs two rounds of iterative RL (after experiment.rl_steps / 2
      steps: label the current policy's samples, retrain the process RM on them + 10% replay of
      the round-1 data, reset the reference to the policy), at the same total step count.

  python experiments/grpo_arithmetic/section5.py --config=configs/grpo_arithmetic_section5.py \
      --workdir=runs/grpo_arith [--config.experiment.sft.model=runs/grpo_arith/sft/model]
  python experiments/grpo_arithmetic/report.py runs/grpo_arith/results

Both reward models start from the SFT model's decoder (paper: from the base model) and are
trained once, on the same labelled samples, and shared by every RL seed. Accuracy is always the
grader's verdict against the true answers; the policy only ever sees reward-model scores.
`:tiny` runs every stage for a few steps.
"""
import ml_collections

from configs import common
from configs import grpo_arithmetic


def get_config(arg: str | None = None):
  args = common.parse_arg(arg)
  c = grpo_arithmetic.get_config(arg)
  # Per arm and seed; round 2 starts at rl_steps / 2. 50 steps (results/ in the experiment): the 7 arms
  # of section5.py + figure5.py x 3 seeds then fit ~1.5 h on 2 CPU cores; 200 would take ~6 h.
  c.experiment.rl_steps = 50
  c.experiment.eval_every = 25
  # Reward-model training (rl/iterative.IterativeRMConfig, as configs/grpo_iterative.py's `rm`);
  # section5.py sets each arm's rl.reward and rl.reward_model.
  c.experiment.rm = ml_collections.ConfigDict(dict(
      label=dict(num_questions=128,             # RL-training questions whose samples are labelled
                 samples_per_question=4, max_new_tokens=60, temperature=1.0,
                 num_completions=4,             # Math-Shepherd N completions per step prefix
                 step_delimiter="\n"),
      seq_len=256, global_batch=32,             # prompt (<= 196) + response (<= 60) bytes
      num_microbatches=1,
      optim=dict(lr=1e-3, schedule="constant", steps=150, warmup_steps=10, weight_decay=0.0, clip_norm=1.0),
      replay_fraction=0.1))                     # paper §4.1.4: 10% of the earlier data
  if args.variant == "tiny":
    c.experiment.update(rl_steps=2, eval_every=1, rl_seeds=(0,))
    c.experiment.rm.label.update(num_questions=4, samples_per_question=2, max_new_tokens=8, num_completions=2)
    c.experiment.rm.global_batch = 4
    c.experiment.rm.optim.update(steps=2, warmup_steps=0)
  return c
