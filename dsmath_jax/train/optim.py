"""AdamW with gradient clipping and the paper's learning-rate schedules.

DeepSeekMath trains with AdamW (b1 0.9, b2 0.95, weight decay 0.1; paper §2.3, §3.1):
  - "deepseek": the DeepSeek LLM multi-step schedule used for pretraining (§2.3): linear
    warmup, then the peak rate until 80% of the steps, 31.6% of it until 90%, 10% after.
  - "constant": SFT (§3.1), constant 5e-5 (with an optional warmup).
  - "cosine": warmup + cosine decay to `end_lr_ratio` of the peak, for ablations.
"""
import jax
import jax.numpy as jnp
import optax

SCHEDULES = ("constant", "cosine", "deepseek")


def _warmup(step, warmup_steps: int):
  """Linear ramp lr * step / warmup_steps (1.0 from step warmup_steps on)."""
  if warmup_steps <= 0:
    return jnp.ones_like(step, jnp.float32)
  return jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)


def make_schedule(optim_config) -> optax.Schedule:
  """step -> learning rate for `optim_config.schedule` (see the module docstring)."""
  name, lr = optim_config.schedule, float(optim_config.lr)
  steps, warmup = int(optim_config.steps), int(optim_config.get("warmup_steps", 0))
  if name not in SCHEDULES:
    raise ValueError(f"optim.schedule={name!r} is not a schedule; known: {SCHEDULES}")

  def schedule(step):
    step = jnp.asarray(step)
    ramp = _warmup(step, warmup)
    if name == "constant":
      return lr * ramp
    if name == "deepseek":
      stage = jnp.where(step < 0.8 * steps, 1.0, jnp.where(step < 0.9 * steps, 0.316, 0.1))
      return lr * ramp * stage
    end_ratio = float(optim_config.get("end_lr_ratio", 0.1))
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


def make_optimizer(optim_config) -> optax.GradientTransformation:
  """clip_by_global_norm(clip_norm) -> AdamW(schedule) from the config's `optim` section."""
  adamw = optax.adamw(
      learning_rate=make_schedule(optim_config),
      b1=float(optim_config.get("b1", 0.9)), b2=float(optim_config.get("b2", 0.95)),
      eps=float(optim_config.get("eps", 1e-8)),
      weight_decay=float(optim_config.get("weight_decay", 0.1)), mask=_decay_mask)
  clip = float(optim_config.get("clip_norm", 1.0))
  return optax.chain(optax.clip_by_global_norm(clip), adamw) if clip > 0 else adamw
