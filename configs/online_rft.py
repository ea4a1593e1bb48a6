"""Online RFT (paper §5.2.1): the unified gradient with GC = 1 for correct samples, 0 otherwise,
on outputs sampled online from the current policy, graded by the rule-based grader.

  python -m dsmath_jax.main --config=configs/online_rft.py \
      --config.checkpoint=runs/sft/model --workdir=runs/online_rft

The GRPO trainer (dsmath_jax/rl/grpo_step.py) with rl.gradient_coefficient="correct_only": one
on-policy update per step (ratio 1), so the gradient is (1/|o|) sum_t 1[o correct] grad log pi(o_t);
no KL term (the paper's Online RFT has none). Paper Figure 5: Online RFT beats RFT late in
training and stays below GRPO. `:tiny` as configs/grpo.py.
"""
from configs import grpo


def get_config(arg: str | None = None):
  c = grpo.get_config(arg)
  c.rl.update(gradient_coefficient="correct_only", kl_coef=0.0, num_updates=1, num_minibatches=1)
  return c
