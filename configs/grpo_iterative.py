"""Iterative GRPO (paper §4.1.4, Algorithm 1): the reward model is retrained on the current
policy's samples (+10% replay of older data) after each iteration; the reference resets to the
policy at the start of each iteration.

  python -m dsmath_jax.main --config=configs/grpo_iterative.py --workdir=runs/rl_iterative
  python -m dsmath_jax.main --config=configs/grpo_iterative.py:tiny --workdir=runs/rl_iter_tiny

Paper Figure 6: two iterations of process supervision improve on one. `:tiny` starts the reward
model from the tiny random policy (no rl.reward_model) and runs 2 iterations of 1 step.
"""
import ml_collections

from configs import common
from configs import grpo_process
from configs import reward_model


def get_config(arg: str | None = None):
  args = common.parse_arg(arg)
  tiny = args.variant == "tiny"
  c = grpo_process.get_config(arg)
  c.rl.iterations = 2 if tiny else 3                      # I
  c.rl.steps_per_iteration = 1 if tiny else 300           # M GRPO steps per iteration
  # The reward model's retraining: as configs/reward_model.py (labels from the current policy,
  # lr 2e-5), plus the replay of earlier iterations' examples.
  rm = reward_model.get_config("tiny,kind=process" if tiny else "kind=process")
  c.rm = ml_collections.ConfigDict(dict(
      label=rm.label.to_dict(), optim=rm.optim.to_dict(), seq_len=rm.data.seq_len,
      global_batch=rm.data.global_batch, num_microbatches=rm.train.num_microbatches,
      replay_fraction=0.1))                               # §4.1.4: 10% of the historical data
  if tiny:
    c.rl.reward_model = ""                                 # start from the policy's decoder
    c.rm.label.update(num_questions=4, samples_per_question=4, max_new_tokens=8)
    c.rm.global_batch = 8                                  # divides over 1 or 8 (simulated) devices
  return c
