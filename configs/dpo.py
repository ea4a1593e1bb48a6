"""DPO (paper §5.2.1): chosen/rejected pairs from graded samples of the SFT model, trained with
the DPO loss in the one RL trainer (dsmath_jax/rl/dpo.py).

  python -m dsmath_jax.main --config=configs/dpo.py \
      --config.checkpoint=runs/sft/model --workdir=runs/dpo

Each step samples G outputs per question from the fixed starting policy (offline samples; set
rl.data_source="online" for online DPO), grades them, pairs the best with the worst of each
group (G/2 pairs, equal-reward pairs carry no loss) and takes the DPO gradient against the same
frozen model as reference. Gradient coefficient of a token: +-beta sigmoid(beta (log ratio of the
rejected - log ratio of the chosen)). `:tiny` as configs/grpo.py.
"""
from configs import grpo


def get_config(arg: str | None = None):
  c = grpo.get_config(arg)
  c.rl.update(objective="dpo", dpo_beta=0.1, kl_coef=0.0, outputs_per_row=2, data_source="offline_samples",
              num_updates=1, num_minibatches=1)
  return c
