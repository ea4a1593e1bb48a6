"""PPO as a method of the RL trainer (paper §5.2.1, eq. 1; Ouyang et al., 2022): a learned value
model, GAE advantages and a clipped value loss, beside the PPO-clip policy loss of rl/loss.py.

Per response token t of an output with outcome reward R (grader or outcome reward model):
  r_t   = -beta log(pi_old(o_t) / pi_ref(o_t)) + [t is the last token] R      (eq. 1's KL-shaped reward)
  delta_t = r_t + gamma V_{t+1} - V_t,  V after the last token = 0
  A_t   = delta_t + gamma lambda A_{t+1}   (GAE, Schulman et al., 2016; paper: gamma = lambda = 1)
  G_t   = A_t + V_t                        (the value target, "returns")
Tokens without loss (tool outputs, padding) are not steps: the recursion passes over them.
With rl.whiten_advantages, A_t is then whitened over the step's loss tokens, (A_t - mean) / std
(the returns G_t keep the raw A_t). The policy loss is eq. 1's clipped surrogate on A_t
(loss.grpo_terms, KL weight 0: the KL lives in the reward). The value loss (PPO2's clipped value loss) per token:
  l^V_t = 1/2 max((V_t - G_t)^2, (V_old,t + clip(V_t - V_old,t, -eps_v, eps_v) - G_t)^2)
averaged over the loss tokens of the batch (loss_sum = sum, weight = tokens).

The value model is a reward-model-shaped module (rl/reward_model.py RewardModel: the decoder and a
scalar head, zero at start) with its own parameters and optimizer state. Its decoder starts as a
copy of the POLICY's (not of a reward model, as InstructGPT does): a rule-graded run, the paper's
default, has no reward model to copy, and the policy's features are the ones its own returns
depend on. V_t is read where the policy's logits for o_t are (packing.py target_slots), the state
before o_t is emitted.
"""
import flax
import jax
import jax.numpy as jnp
import numpy as np

# The value model's fields of a PPO update batch, beside the policy's (machinery.BATCH_FIELDS).
VALUE_FIELDS = ("returns", "old_values")


@flax.struct.dataclass
class PPOState:
  """The policy's and the value model's train states, saved and restored together."""
  policy: object                 # train.state.TrainState of the policy
  value: object                  # TrainState of the value model (RewardModel params)

  @property
  def params(self):              # what sampling, the log-prob passes and saving read: the policy's
    return self.policy.params

  @property
  def step(self):
    return self.policy.step


def token_rewards(outcome, old_logprobs, ref_logprobs, mask, kl_coef: float):
  """Eq. 1's per-token reward: -beta (log pi_old - log pi_ref) on every loss token, plus the outcome
  reward on the last loss token of each output.  outcome [outputs]; the rest [outputs, n] -> [outputs, n]."""
  mask = np.asarray(mask, np.float32)
  rewards = -kl_coef * (np.asarray(old_logprobs, np.float32) - np.asarray(ref_logprobs, np.float32)) * mask
  has_tokens = mask.any(axis=1)
  last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)           # [outputs]
  rows = np.flatnonzero(has_tokens)
  rewards[rows, last[rows]] += np.asarray(outcome, np.float32)[rows]
  return rewards


def gae(rewards, values, mask, *, gamma: float, lam: float):
  """(advantages, returns) [outputs, n] by GAE over each output's loss tokens (module doc); 0 elsewhere."""
  rewards, values = np.asarray(rewards, np.float64), np.asarray(values, np.float64)
  mask = np.asarray(mask) > 0
  outputs, n = rewards.shape
  advantages = np.zeros((outputs, n))
  next_value = np.zeros(outputs)                 # V of the next loss token (0 past the last)
  next_advantage = np.zeros(outputs)
  for t in range(n - 1, -1, -1):
    delta = rewards[:, t] + gamma * next_value - values[:, t]
    here = delta + gamma * lam * next_advantage
    advantages[:, t] = np.where(mask[:, t], here, 0.0)
    next_value = np.where(mask[:, t], values[:, t], next_value)
    next_advantage = np.where(mask[:, t], here, next_advantage)
  returns = np.where(mask, advantages + values, 0.0)
  return advantages.astype(np.float32), returns.astype(np.float32)


def whiten(advantages, mask, eps: float = 1e-8):
  """(A - mean) / sqrt(var + eps) with the mean and (population) variance of the loss tokens
  (mask > 0), 0 elsewhere: every batch's advantages on one scale.  [outputs, n] -> [outputs, n] float32."""
  advantages, mask = np.asarray(advantages, np.float64), np.asarray(mask) > 0
  if not mask.any():
    return np.zeros(advantages.shape, np.float32)
  mean = advantages[mask].mean()
  var = np.square(advantages[mask] - mean).mean()
  return np.where(mask, (advantages - mean) / np.sqrt(var + eps), 0.0).astype(np.float32)


def value_terms(values, batch, *, value_clip: float):
  """(loss_sum, weight, aux_sums) of the clipped value loss (module doc) from values [outputs, n];
  batch: returns, old_values, loss_mask [outputs, n]."""
  mask = batch["loss_mask"].astype(jnp.float32)
  returns, old = batch["returns"].astype(jnp.float32), batch["old_values"].astype(jnp.float32)
  clipped = old + jnp.clip(values - old, -value_clip, value_clip)
  loss = 0.5 * jnp.maximum(jnp.square(values - returns), jnp.square(clipped - returns))
  is_clipped = (jnp.abs(values - old) > value_clip).astype(jnp.float32)
  aux = {"clip_fraction": jnp.sum(is_clipped * mask), "mean": jnp.sum(jax.lax.stop_gradient(values) * mask)}
  return jnp.sum(loss * mask), jnp.sum(mask), aux


def response_values(apply_fn, params, batch):
  """The value model's V_t at every response token of shared-prompt rows.  -> [rows, k, n] float32."""
  rows, k, n = batch["target_slots"].shape
  scores = apply_fn(params, batch["tokens"], positions=batch["positions"], segment_ids=batch["segment_ids"],
                    prefix_segment_ids=batch["prefix_segment_ids"],
                    output_positions=batch["target_slots"].reshape(rows, k * n))     # [rows, k * n]
  return scores.reshape(rows, k, n).astype(jnp.float32)


def make_value_loss_fn(*, value_clip: float):
  """loss_fn(params, batch, apply_fn) for train_step on PPO rows; apply_fn is the value model's."""

  def loss_fn(params, batch, apply_fn):
    rows, k, n = batch["target_slots"].shape
    values = response_values(apply_fn, params, batch).reshape(rows * k, n)
    flat = {name: batch[name].reshape(rows * k, n) for name in ("returns", "old_values", "loss_mask")}
    return value_terms(values, flat, value_clip=value_clip)

  return loss_fn


def make_train_step(policy_step, value_step):
  """(PPOState, batch) -> (PPOState, metrics): one policy update and one value update on the same
  mini-batch; the value model's metrics are prefixed `value_` (value_loss, value_grad_norm, ...)."""

  def train_step(state: PPOState, batch):
    policy, metrics = policy_step(state.policy, batch)
    value, value_metrics = value_step(state.value, batch)
    return PPOState(policy, value), {**metrics, **{f"value_{k}": v for k, v in value_metrics.items()}}

  return train_step


def fill_advantages(rl, values, rows: dict, outcome_rewards) -> None:
  """Sets rows["advantages"], rows["returns"], rows["old_values"] [rows, k, n] from the value
  model's V (values [rows, k, n]), the outcome rewards of the packed outputs (prompt-major, as packed)
  and the KL-shaped token rewards. rl: RLConfig (kl_coef, gae_gamma, gae_lambda, whiten_advantages)."""
  mask = rows["loss_mask"]
  shape = mask.shape
  flat = lambda x: np.asarray(x, np.float32).reshape(-1, shape[-1])          # [rows * k, n]
  outcome = np.zeros(shape[0] * shape[1], np.float32)                       # padding rows carry none
  outcome[:len(outcome_rewards)] = outcome_rewards
  rewards = token_rewards(outcome, flat(rows["old_logprobs"]), flat(rows["ref_logprobs"]), flat(mask),
                          rl.kl_coef)
  advantages, returns = gae(rewards, flat(values), flat(mask), gamma=rl.gae_gamma, lam=rl.gae_lambda)
  if rl.whiten_advantages:
    advantages = whiten(advantages, flat(mask))
  rows["advantages"] = advantages.reshape(shape)
  rows["returns"] = returns.reshape(shape)
  rows["old_values"] = (flat(values) * flat(mask)).reshape(shape)
