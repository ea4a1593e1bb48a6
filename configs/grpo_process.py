"""GRPO with process supervision (paper §4.1.3): a process RM scores every step.

  python -m dsmath_jax.main --config=configs/grpo_process.py \
      --config.rl.reward_model=runs/prm/model --workdir=runs/rl_process

Steps are split at rl.step_delimiter (newline); step rewards are normalized over all steps of
the group's outputs, and a token's advantage is the sum of the normalized rewards of the steps
ending at or after it. Train the PRM first: configs/reward_model.py:kind=process (Math-Shepherd
labels from the policy's own samples). `:tiny` needs rl.reward_model as well (e.g. from
configs/reward_model.py:tiny,kind=process).
"""
from configs import grpo_deepseekmath_rl


def get_config(arg: str | None = None):
  c = grpo_deepseekmath_rl.get_config(arg)
  c.rl.reward = "process_rm"
  c.rl.reward_model = "runs/prm/model"
  return c
