"""AdamW with gradient clipping and the paper's learning-rate schedules.

DeepSeekMath trains with AdamW (b1 0.9, b2 0.95, weight decay 0.1; paper §2.3, §3.1):
  - "deepseek": the DeepSeek LLM multi-step schedule used for pretraining (§2.3): linear
    warmup, then the peak rate until 80% of the steps, 31.6% of it until 90%, 10% after.
  - "constant": SFT (§3.1), constant 5e-5 (with an optional warmup).
  - "cosine": warmup + cosine decay to `end_lr_ratio` of the peak, for ablations.
"""
import dataclasses

import jax
import jax.numpy as jnp
import optax

from dsmath_jax import config_types

SCHEDULES = ("constant", "cosine", "deepseek")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """The `optim` section of a training config (pretrain, SFT, reward model, GRPO)."""
  lr: float                      # peak learning rate (paper: 4.2e-4 pretraining, 5e-5 SFT, 1e-6 GRPO)
  schedule: str                  # "constant" | "cosine" | "deepseek" (module docstring)
  steps: int                     # optimizer updates of the run
  warmup_steps: int = 0          # linear ramp from 0 to lr
  b1: float = 0.9                # AdamW beta1 (paper §2.3)
  b2: float = 0.95               # AdamW beta2
  eps: float = 1e-8              # AdamW epsilon
  weight_decay: float = 0.1      # decoupled decay on matrices (not on norm scales)
  clip_norm: float = 1.0         # global-norm gradient clipping; 0 = none
  end_lr_ratio: float = 0.1      # "cosine": final lr / peak lr
  z_loss: float = 0.0            # coefficient of the z-loss (PaLM §5) in the LM losses

  def __post_init__(self):
    if self.schedule not in SCHEDULES:
      raise ValueError(f"optim.schedule={self.schedule!r} is not a schedule; known: {SCHEDULES}")

  @classmethod
  def from_config(cls, section, where: str = "config.optim") -> "OptimConfig":
    optim = config_types.from_section(cls, section, where=where)
    config_types.require(optim, where, positive=("lr", "steps"),
                         non_negative=("warmup_steps", "weight_decay", "clip_norm", "eps", "z_loss"))
    return optim


def _warmup(step, warmup_steps: int):
  """Linear ramp lr * step / warmup_steps (1.0 from step warmup_steps on)."""
  if warmup_steps <= 0:
    return jnp.ones_like(step, jnp.float32)
  return jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)


def make_schedule(optim: OptimConfig) -> optax.Schedule:
  """step -> learning rate for `optim.schedule` (see the module docstring)."""
  name, lr, steps, warmup = optim.schedule, optim.lr, optim.steps, optim.warmup_steps

  def schedule(step):
    step = jnp.asarray(step)
    ramp = _warmup(step, warmup)
    if name == "constant":
      return lr * ramp
    if name == "deepseek":
      stage = jnp.where(step < 0.8 * steps, 1.0, jnp.where(step < 0.9 * steps, 0.316, 0.1))
      return lr * ramp * stage
    end_ratio = optim.end_lr_ratio
    progress = jnp.clip((step - warmup) / max(steps - warmup, 1), 0.0, 1.0)
    cosine = end_ratio + (1.0 - end_ratio) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
    return lr * ramp * cosine

  return schedule


def _decay_mask(params):
  """Weight decay on matrices only: RMSNorm scales (`.../scale`) are not decayed."""
  def is_decayed(path, _):
    names = [str(getattr(key, "key", getattr(key, "name", ""))) for key in path]
    return "scale" not in names
  return jax.tree_util.tree_map_with_path(is_decayed, params)


def make_optimizer(optim: OptimConfig) -> optax.GradientTransformation:
  """clip_by_global_norm(clip_norm) -> AdamW(schedule)."""
  adamw = optax.adamw(learning_rate=make_schedule(optim), b1=optim.b1, b2=optim.b2, eps=optim.eps,
                      weight_decay=optim.weight_decay, mask=_decay_mask)
  if optim.clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(optim.clip_norm), adamw)
  return adamw
