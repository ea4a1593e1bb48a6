"""The paper's Figure 5 in miniature (§5.2.1, the unified paradigm) on the arithmetic task of
configs/grpo_arithmetic.py (same task, same shared SFT model, same content-disjoint held-out
problems): RFT, Online RFT, DPO and PPO, each from the SFT model for the same step budget and
evaluation cadence as section5.py's arms, whose `outcome` and `process` arms are GRPO+OS and
GRPO+PS (figure5.py does not rerun them; report.py reads section5.py's results).

  python experiments/grpo_arithmetic/figure5.py --config=configs/grpo_arithmetic_figure5.py \
      --workdir=runs/grpo_arith [--config.experiment.sft.model=runs/grpo_arith/sft/model]
  python experiments/grpo_arithmetic/report.py runs/grpo_arith/results

Each arm is its method's config (configs/rft.py, online_rft.py, dpo.py, ppo.py: the config.rl keys
it changes from configs/grpo.py) applied on top of this task's GRPO run, plus the arm's optim keys:
  rft         offline samples of the frozen SFT model, GC 1 on correct outputs, no KL;
  online_rft  the same on the policy's own samples;
  dpo         best/worst pairs of each group's graded samples, DPO loss (beta 0.1) against the SFT
              model; samples from the policy (online DPO; the paper's Table 10 DPO samples the SFT
              model, configs/dpo.py's data_source="offline_samples");
  ppo         GAE (gamma = lambda = 1) over a value model from the policy's decoder, KL 0.04 in
              the per-token reward, clipped value loss 0.2, value lr = policy lr.
Every arm trains at this task's GRPO learning rate, 5e-5 (configs/grpo_arithmetic.py), with its
clipping and warmup: nothing is tuned per method, nor on the held-out problems. Rewards are the
grader's verdict (the paper's RFT/Online RFT; its PPO and DPO take a reward model's).
`:tiny` runs every arm for a few steps.
"""
from configs import common
from configs import dpo
from configs import grpo
from configs import grpo_arithmetic
from configs import grpo_arithmetic_section5
from configs import online_rft
from configs import ppo
from configs import rft


def method_rl(method, arg: str | None) -> dict:
  """The config.rl keys the method's config (configs/<method>.py) changes from configs/grpo.py."""
  base, changed = grpo.get_config(arg).rl, method.get_config(arg).rl
  return {key: changed[key] for key in changed if changed[key] != base[key]}


def get_config(arg: str | None = None):
  common.parse_arg(arg)
  c = grpo_arithmetic.get_config(arg)
  section5 = grpo_arithmetic_section5.get_config(arg).experiment
  # GRPO+OS / GRPO+PS come from section5.py's runs: the same seeds, step budget and eval cadence.
  c.experiment.update(rl_seeds=section5.rl_seeds, rl_steps=section5.rl_steps, eval_every=section5.eval_every)
  lr = c.optim.lr                                # 5e-5, this task's GRPO learning rate, for every arm
  c.experiment.arms = dict(
      rft=dict(rl=method_rl(rft, arg), optim=dict(lr=lr)),
      online_rft=dict(rl=method_rl(online_rft, arg), optim=dict(lr=lr)),
      dpo=dict(rl=dict(method_rl(dpo, arg), data_source="online"), optim=dict(lr=lr)),
      ppo=dict(rl=method_rl(ppo, arg), optim=dict(lr=lr)))
  return c
