"""PPO (paper §5.2.1, eq. 1; InstructGPT-style): online samples of the policy, an outcome reward
(the rule grader; rl.reward="outcome_rm" for a reward model), GAE advantages over a learned value
model, trained in the one RL trainer (dsmath_jax/rl/ppo.py).

  python -m dsmath_jax.main --config=configs/ppo.py:tiny --workdir=runs/ppo_tiny
  python -m dsmath_jax.main --config=configs/ppo.py \
      --config.checkpoint=runs/sft/model --workdir=runs/ppo

Per-token reward r_t = -beta log(pi_old / pi_ref) plus the outcome reward at the last token;
A_t by GAE (rl.gae_gamma, rl.gae_lambda; paper: 1, 1) over V_t of a value model (the policy's
decoder + a scalar head, its own AdamW state, lr rl.value_lr, clipped value loss with
rl.value_clip); the policy loss is eq. 1's clipped surrogate. rl.whiten_advantages=True normalizes
the advantages over the step's loss tokens to mean 0, std 1 (as InstructGPT-style implementations do). Writes WORKDIR/model (the policy)
and WORKDIR/value_model (rl.reward_model-loadable). `:tiny` as configs/grpo.py.
"""
from configs import grpo


def get_config(arg: str | None = None):
  c = grpo.get_config(arg)
  c.rl.update(objective="ppo", gae_gamma=1.0, gae_lambda=1.0, value_clip=0.2, value_lr=0.0, whiten_advantages=False)
  return c
