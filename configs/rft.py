"""Rejection-sampling fine-tuning, RFT (paper §5.2.1): GC = 1 for correct samples, 0 otherwise,
on outputs of the fixed SFT model (offline samples), graded by the rule-based grader.

  python -m dsmath_jax.main --config=configs/rft.py \
      --config.checkpoint=runs/sft/model --workdir=runs/rft

Online RFT (configs/online_rft.py) with rl.data_source="offline_samples": every step samples from
a frozen copy of the starting policy (config.checkpoint), never from the policy being trained; the
trainer recomputes pi_old, so the update is the plain correct-only likelihood gradient. Drawing
the samples step by step rather than once up front gives the same distribution of data.
`:tiny` as configs/grpo.py.
"""
from configs import online_rft


def get_config(arg: str | None = None):
  c = online_rft.get_config(arg)
  c.rl.data_source = "offline_samples"
  return c
