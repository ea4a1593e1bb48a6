"""DeepSeekMath-RL (paper §4.2): GRPO from DeepSeekMath-Instruct 7B with outcome supervision.

  python -m dsmath_jax.main --config=configs/grpo_deepseekmath_rl.py \
      --config.checkpoint=runs/sft/model --workdir=runs/rl

Paper: lr 1e-6, KL coefficient 0.04, 64 outputs per question, max length 1024, training batch
1024 (16 questions x 64), one policy update per exploration stage (mu = 1); questions = the
CoT-format GSM8K and MATH questions of the SFT data. Expected (paper Table 5): GSM8K 88.2%,
MATH 51.7% (from 82.9% / 46.8% for the Instruct model). The paper trains with a learned outcome
reward model; this config uses the rule-based grader reward (set rl.reward="outcome_rm" and
rl.reward_model to a `reward_model` run to follow the paper exactly). `:tiny` as configs/grpo.py.
"""
from configs import common
from configs import grpo


def get_config(arg: str | None = None):
  args = common.parse_arg(arg)
  c = grpo.get_config(arg)
  if args.variant != "tiny":
    c.checkpoint = "runs/sft/model"                       # DeepSeekMath-Instruct 7B
  return c
