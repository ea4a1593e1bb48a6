"""What a GRPO step needs besides the changing state: the model, the mesh, the sampling settings
and the compiled functions (the policy update, response log-probs, reward-model scores).

Built once per run (grpo.setup, iterative.run). Training rows hold one copy of a prompt and
`rl.outputs_per_row` of its G responses (packing.py); the update's batch shapes are fixed here,
so every step reuses one compiled program.
"""
import dataclasses
import math

import jax
import jax.numpy as jnp

from dsmath_jax import runtime, sharding
from dsmath_jax.model import llama
from dsmath_jax.rl import dpo
from dsmath_jax.rl import loss as loss_lib
from dsmath_jax.rl import packing
from dsmath_jax.rl import ppo
from dsmath_jax.rl import reward_model as rm_lib
from dsmath_jax.rl.config import GRPOConfig
from dsmath_jax.sample import sampler

# is_weights: the truncated IS correction of each token's policy loss (1 when rl.tis_cap = 0).
BATCH_FIELDS = packing.ROW_FIELDS + packing.TARGET_FIELDS + ("ref_logprobs", "is_weights")


@dataclasses.dataclass
class Machinery:
  """Fixed for a run: model, mesh, how to prompt and sample, and the compiled functions."""
  model_config: llama.LlamaConfig
  tokenizer: object
  mesh: object
  rules: tuple
  template: str                # prompt template (questions.encode_prompt); "tool": tool-integrated
  sampling: sampler.SamplingParams   # G samples per question (RLConfig.sampling)
  max_tool_rounds: int         # tool-integrated runs: programs per sample at most
  seq_len: int                 # max_prompt_len + max_new_tokens: a reward model's rows
  batch_spec: dict             # {field: shape} of one update's mini-batch (BATCH_FIELDS; PPO: + ppo.VALUE_FIELDS)
  train_step: object           # (state, batch) -> (state, metrics) on one mini-batch (PPO: ppo.PPOState)
  logprobs: object             # (params, packed rows) -> response log-probs [rows, k, n] (policy or reference),
                               # of logits / rl.logprob_temperature
  rm_scores: object | None     # (rm_params, rows) -> scores [rows, seq]
  row_multiple: int            # packed rows are padded to a multiple of this (batch ways x mini-batches)
  copy_params: object          # params -> a fresh copy in the same shardings (the reference)
  sandbox: object | None = None  # tool-integrated RL (data.template "tool"): runs the programs
  values: object | None = None   # PPO: (value params, packed rows) -> V_t [rows, k, n] (ppo.response_values)

  def put(self, rows: dict) -> dict:
    """Host arrays -> global arrays split over the batch axes on their leading axis.

    Every process samples and scores the same questions with the same keys, so each holds the whole
    batch: device_put takes each device's rows from it (put_global would read them as this host's slice)."""
    return {name: jax.device_put(value, sharding.batch_sharding(self.mesh, self.rules, value.ndim))
            for name, value in rows.items()}

  def close(self) -> None:
    """Stops the sandbox's workers (tool-integrated runs)."""
    if self.sandbox is not None:
      self.sandbox.close()
      self.sandbox = None


def build_machinery(run: GRPOConfig, model_config: llama.LlamaConfig, tokenizer, state_shardings, mesh, rules,
                    rm_config=None, rm_shardings=None) -> Machinery:
  """Compiles the policy update, the log-prob pass, (with a reward model) its scoring and, for PPO
  (`state_shardings` a ppo.PPOState of the policy's and the value model's), the value pass and update."""
  from dsmath_jax.train import optim
  from dsmath_jax.train import step as step_lib
  rl = run.rl
  seq_len = rl.max_prompt_len + rl.max_new_tokens
  per_row = rl.outputs_per_row
  row_multiple = math.prod(sharding.batch_axes(mesh, rules).values()) * rl.num_minibatches
  rows_per_update = packing.num_rows(run.data.questions_per_step * rl.group_size, per_row,
                                     row_multiple) // rl.num_minibatches
  apply_fn = step_lib.make_apply_fn(model_config)
  # The method-specific loss (its batch builder: grpo_step.BATCH_BUILDERS).
  losses = {
      "clipped": lambda: loss_lib.make_loss_fn(
          clip_eps=rl.clip_eps, clip_eps_high=rl.clip_eps_high or None, kl_coef=rl.kl_coef,
          aggregation=rl.aggregation, normalizer=float(rl.loss_normalizer or rl.max_new_tokens),
          temperature=rl.logprob_temperature, dual_clip=rl.dual_clip, ratio_level=rl.ratio_level,
          logits_chunk=model_config.logits_chunk),
      "dpo": lambda: dpo.make_loss_fn(beta=rl.dpo_beta, temperature=rl.logprob_temperature,
                                      logits_chunk=model_config.logits_chunk),
      # PPO (eq. 1): the clipped surrogate on GAE advantages; the KL is in the reward (ppo.token_rewards).
      "ppo": lambda: loss_lib.make_loss_fn(
          clip_eps=rl.clip_eps, clip_eps_high=rl.clip_eps_high or None, kl_coef=0.0,
          aggregation=rl.aggregation, normalizer=float(rl.loss_normalizer or rl.max_new_tokens),
          temperature=rl.logprob_temperature, dual_clip=rl.dual_clip, ratio_level=rl.ratio_level,
          logits_chunk=model_config.logits_chunk),
  }
  loss_fn = losses[rl.objective]()
  batch_spec = {name: (rows_per_update, seq_len) for name in packing.ROW_FIELDS}    # ranks fix shardings
  target_fields = packing.TARGET_FIELDS + ("ref_logprobs", "is_weights")
  target_fields += ppo.VALUE_FIELDS if rl.objective == "ppo" else ()
  batch_spec.update({name: (rows_per_update, per_row, rl.max_new_tokens) for name in target_fields})
  is_ppo = rl.objective == "ppo"
  train_step = step_lib.compile_train_step(
      state_shardings.policy if is_ppo else state_shardings, mesh, rules, batch_spec, loss_fn=loss_fn,
      apply_fn=apply_fn, num_microbatches=run.train.num_microbatches,
      learning_rate_fn=optim.make_schedule(run.optim))
  row_sharding = sharding.batch_sharding(mesh, rules, 2)
  rows_sharding = {k: row_sharding for k in ("tokens", "segment_ids", "positions")}
  packed_sharding = {k: sharding.batch_sharding(mesh, rules, len(batch_spec[k]))
                     for k in packing.ROW_FIELDS + ("target_slots", "target_tokens")}

  def logprobs(params, rows):
    return loss_lib.response_logprobs(apply_fn, params, rows, temperature=rl.logprob_temperature,
                                      logits_chunk=model_config.logits_chunk)

  values = None
  if is_ppo:                   # the value model: a RewardModel-shaped decoder + scalar head (ppo.py)
    value_model = rm_lib.RewardModel(model_config)
    value_apply = lambda params, tokens, **kw: value_model.apply({"params": params}, tokens, **kw)
    value_step = step_lib.compile_train_step(
        state_shardings.value, mesh, rules, batch_spec, loss_fn=ppo.make_value_loss_fn(value_clip=rl.value_clip),
        apply_fn=value_apply, num_microbatches=run.train.num_microbatches,
        learning_rate_fn=optim.make_schedule(value_optim(run)))
    train_step = ppo.make_train_step(train_step, value_step)
    values = runtime.jit_under_mesh(lambda p, rows: ppo.response_values(value_apply, p, rows), mesh, rules,
                                    in_shardings=(state_shardings.value.params, packed_sharding),
                                    out_shardings=sharding.batch_sharding(mesh, rules, 3))
  rm_scores = None
  if rm_config is not None:
    rm_model = rm_lib.RewardModel(rm_config)
    rm_scores = runtime.jit_under_mesh(
        lambda p, rows: rm_model.apply({"params": p}, rows["tokens"], positions=rows["positions"],
                                       segment_ids=rows["segment_ids"]),
        mesh, rules, in_shardings=(rm_shardings, rows_sharding), out_shardings=row_sharding)
  return Machinery(
      model_config=model_config, tokenizer=tokenizer, mesh=mesh, rules=rules, template=run.data.template,
      sampling=rl.sampling(), max_tool_rounds=run.tool.max_rounds, seq_len=seq_len, batch_spec=batch_spec,
      train_step=train_step,
      logprobs=runtime.jit_under_mesh(logprobs, mesh, rules,
                                      in_shardings=(state_shardings.params, packed_sharding),
                                      out_shardings=sharding.batch_sharding(mesh, rules, 3)),
      rm_scores=rm_scores, row_multiple=row_multiple, sandbox=_sandbox(run), values=values,
      copy_params=runtime.jit_under_mesh(lambda p: jax.tree.map(jnp.copy, p), mesh, rules,
                                         in_shardings=(state_shardings.params,),
                                         out_shardings=state_shardings.params))


def value_optim(run: GRPOConfig):
  """The value model's optimizer: config.optim with rl.value_lr (0 = the policy's lr)."""
  return dataclasses.replace(run.optim, lr=run.rl.value_lr or run.optim.lr)


def _sandbox(run: GRPOConfig):
  """A warm sandbox pool when the prompts are tool-integrated (paper §5.1.2), else None."""
  if not run.tool_integrated:
    return None
  from dsmath_jax.sample import tool_loop
  return tool_loop.open_sandbox(run.tool, run.sandbox)
