"""One GRPO step (paper §4.1, Algorithm 1), for a batch of questions:
  1. sample G outputs per question with the sampler, keeping pi_old log-probs;
  2. score them: the grader's verdict (rule), an outcome RM's score, or a process RM's
     per-step scores, into per-token advantages (scoring.py); with DAPO's dynamic sampling
     "resample", repeat 1-2 on fresh questions until the step's groups all carry signal
     (dynamic_sampling.py);
  3. the trainer's log-probs: pi_ref (skipped when beta = 0), and pi_old itself where the
     sampler's cannot stand for it (truncated IS correction, temperature-consistent log-probs,
     offline samples); PPO (ppo.py): the value model's V_t and GAE advantages over the
     KL-shaped token rewards;
  4. mu = `rl.num_updates` passes of policy updates over `rl.num_minibatches` mini-batches
     with the method's objective (loss.py, dpo.py; PPO: also a value update) through the shared
     train step.
Training rows hold one copy of a prompt and `rl.outputs_per_row` of its G responses
(packing.py): the prompt is computed once per row, and only response positions go through
the vocabulary projection, in the update and in the reference pass alike.
"""
import contextlib
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
from absl import logging

from dsmath_jax import sharding
from dsmath_jax.rl import advantages as advantages_lib
from dsmath_jax.rl import dpo
from dsmath_jax.rl import dynamic_sampling
from dsmath_jax.rl import packing
from dsmath_jax.rl import ppo
from dsmath_jax.rl import scoring
from dsmath_jax.rl.config import RLConfig
from dsmath_jax.rl.machinery import Machinery
from dsmath_jax.rl.questions import encode_prompt


def rl_step(rl: RLConfig, machinery: Machinery, state, ref_params, questions: Sequence[dict], rng,
            rm_params=None, fresh_questions: Callable[[int], Sequence[dict]] | None = None):
  """One GRPO step on `questions` -> (state, metrics dict of floats, the completions trained on).

  fresh_questions(r): the questions of round r >= 1 of rl.dynamic_sampling "resample" (grpo.train
  passes questions.fresh_questions of the step); the step then trains on len(questions) groups,
  the completions' prompt_index numbering those groups."""
  times = {}
  sampler_params = ref_params if rl.data_source == "offline_samples" else state.params   # RFT: the fixed model

  def sample_round(round_index: int):
    """(completions, Scored) of round 0 (`questions`) or of resampling round `round_index`."""
    round_questions = questions if round_index == 0 else fresh_questions(round_index)
    key = (jax.random.fold_in(rng, 0) if round_index == 0 else
           jax.random.fold_in(jax.random.fold_in(rng, 2), round_index))
    with _timed(times, "time_sampling"):
      completions = sample(machinery, sampler_params, round_questions, key)
    with _timed(times, "time_scoring"):
      golds = [round_questions[c.prompt_index]["answer"] for c in completions]
      scored = scoring.score_outputs(rl, machinery, completions, golds, rm_params)
      for message in scored.rewards.errors[:5]:
        logging.warning("reward failed, sample left out: %s", message)
    return completions, scored

  counts = {}
  if rl.dynamic_sampling == "resample":
    if fresh_questions is None:
      raise ValueError("config.rl.dynamic_sampling='resample' needs rl_step(..., fresh_questions=...): "
                       "the questions of the extra rounds (questions.fresh_questions)")
    completions, scored, counts = dynamic_sampling.resample(sample_round, len(questions), rl.resample_rounds,
                                                            rl.group_size)
  else:
    completions, scored = sample_round(0)
  with _timed(times, "time_scoring"):
    rows = BATCH_BUILDERS[rl.objective](rl, machinery, completions, scored)
  with _timed(times, "time_reference"):
    gap = trainer_logprobs(rl, machinery, state, ref_params, rows)
    if rl.objective == "ppo":              # GAE over the value model's V_t (ppo.py)
      values = machinery.values(state.value.params, machinery.put({k: rows[k] for k in VALUE_INPUTS}))
      ppo.fill_advantages(rl, np.asarray(sharding.to_host(values)), rows,
                          np.where(scored.trained, scored.rewards.values, 0.0))
  with _timed(times, "time_training"):
    state, update_metrics = policy_updates(rl, machinery, state, rows, jax.random.fold_in(rng, 1))
  metrics = {**step_metrics(completions, scored, update_metrics, times),
             **{name: float(count) for name, count in counts.items()}}
  if gap is not None:
    metrics["max_logprob_gap"] = gap
  return state, metrics, completions


def group_rows(rl: RLConfig, machinery: Machinery, completions, scored: scoring.Scored) -> dict:
  """Rows of the clipped objective (GRPO, RFT): each output with its token advantages (GC)."""
  return packing.pack_outputs(completions, scored.token_advantages, scored.trained,
                              outputs_per_row=rl.outputs_per_row, max_new_tokens=rl.max_new_tokens,
                              pad_id=machinery.tokenizer.pad_id, row_multiple=machinery.row_multiple)


def pair_rows(rl: RLConfig, machinery: Machinery, completions, scored: scoring.Scored) -> dict:
  """Rows of DPO: (chosen, rejected) pairs of each group by reward (dpo.pair_order)."""
  order, live = dpo.pair_order(scored.rewards.values, scored.trained, rl.group_size)
  return packing.pack_outputs([completions[i] for i in order], [np.zeros(len(completions[i].token_ids))
                                                                for i in order],
                              np.repeat(live, 2), outputs_per_row=2, max_new_tokens=rl.max_new_tokens,
                              pad_id=machinery.tokenizer.pad_id, row_multiple=machinery.row_multiple)


# The method-specific batch builder, beside its loss (machinery.build_machinery). PPO's rows are
# GRPO's; their advantages come from GAE once pi_old and pi_ref are known (rl_step).
BATCH_BUILDERS = {"clipped": group_rows, "dpo": pair_rows, "ppo": group_rows}
VALUE_INPUTS = packing.ROW_FIELDS + ("target_slots", "target_tokens")


@contextlib.contextmanager
def _timed(times: dict, name: str):
  """Adds the block's seconds to times[name] (resampling rounds sample and score more than once)."""
  start = time.perf_counter()
  yield
  times[name] = times.get(name, 0.0) + time.perf_counter() - start


def sample(machinery: Machinery, params, questions: Sequence[dict], rng):
  """G completions per question, prompt-major. Tool-integrated prompts go through the tool loop:
  programs run between rounds and their outputs enter the context with no loss (tool_mask)."""
  from dsmath_jax.sample import sampler
  prompts = [encode_prompt(machinery.tokenizer, q["question"], machinery.template) for q in questions]
  if machinery.sandbox is not None:
    from dsmath_jax.sample import tool_loop
    return tool_loop.generate_with_tools(
        params, machinery.model_config, machinery.tokenizer, prompts, machinery.sampling, rng,
        max_tool_rounds=machinery.max_tool_rounds, sandbox=machinery.sandbox, mesh=machinery.mesh,
        rules=machinery.rules)
  return sampler.generate(params, machinery.model_config, machinery.tokenizer, prompts, machinery.sampling,
                          rng, mesh=machinery.mesh, rules=machinery.rules)


def trainer_logprobs(rl: RLConfig, machinery: Machinery, state, ref_params, rows: dict):
  """Fills rows["ref_logprobs"], rows["is_weights"] (and rows["old_logprobs"] when
  rl.recompute_old_logprobs) [rows, k, n]; returns the max |trainer - sampler| log-prob gap or None.

  Without a KL term (beta = 0) pi_old stands in for pi_ref. Every `rl.logprob_gap_every` steps
  the trainer's log-probs of the sampled tokens are compared with the sampler's (at temperature 1
  and top-p 1 they must agree: both are log_softmax of the raw logits). With rl.tis_cap, the
  trainer's pi_old replaces the sampler's and each token's loss is weighted by
  min(pi_old / pi_sampler, cap)."""
  device_rows = machinery.put({k: rows[k] for k in packing.ROW_FIELDS + ("target_slots", "target_tokens")})
  check_gap = rl.logprob_gap_every and int(sharding.to_host(state.step)) % rl.logprob_gap_every == 0
  sampler_logprobs = rows["old_logprobs"]
  rows["is_weights"] = np.ones_like(sampler_logprobs)
  gap = trainer = None
  if check_gap or rl.recompute_old_logprobs:
    trainer = np.asarray(sharding.to_host(machinery.logprobs(state.params, device_rows)))
  if check_gap and not rl.recompute_old_logprobs or rl.tis_cap:   # comparable only when both are pi_old
    gap = float(np.max(np.abs(trainer - sampler_logprobs) * (rows["loss_mask"] > 0), initial=0.0))
  if rl.tis_cap:
    rows["is_weights"] = advantages_lib.truncated_importance_weights(trainer, sampler_logprobs, rows["loss_mask"],
                                                                     rl.tis_cap)
  if rl.recompute_old_logprobs:
    rows["old_logprobs"] = trainer
  if rl.kl_coef > 0 or rl.objective == "dpo":
    rows["ref_logprobs"] = np.asarray(sharding.to_host(machinery.logprobs(ref_params, device_rows)))
  else:
    rows["ref_logprobs"] = rows["old_logprobs"]
  return gap


def policy_updates(rl: RLConfig, machinery: Machinery, state, rows: dict, rng):
  """mu passes over the rows, each in `rl.num_minibatches` shuffled mini-batches -> (state,
  host metrics of every update)."""
  num_rows, minibatches = len(rows["tokens"]), rl.num_minibatches
  order_rng = np.random.default_rng(np.asarray(jax.random.key_data(rng)).ravel())
  update_metrics = []
  for _ in range(rl.num_updates):
    order = order_rng.permutation(num_rows) if minibatches > 1 else np.arange(num_rows)
    for part in np.array_split(order, minibatches):
      state, metrics = machinery.train_step(state, machinery.put({k: rows[k][part] for k in machinery.batch_spec}))
      update_metrics.append(metrics)
  return state, sharding.to_host(update_metrics)


def step_metrics(completions, scored: scoring.Scored, update_metrics: list, times: dict) -> dict:
  """The step's floats: rewards, grader accuracy, signal, lengths, the first (on-policy, ratio 1)
  update's KL/clip/entropy, mean loss and gradient norm, and the time split."""
  first = update_metrics[0]
  rewards, correct = scored.rewards, scored.correct
  valid = rewards.valid
  lengths = np.array([len(c.token_ids) for c in completions], np.float32)
  return {
      "reward_mean": float(rewards.values[valid].mean()) if valid.any() else float("nan"),
      "reward_std": float(rewards.values[valid].std()) if valid.any() else float("nan"),
      "accuracy": float(correct.values[correct.valid].mean()) if correct.valid.any() else float("nan"),
      "zero_advantage_groups": float(scored.zero_groups.mean()),
      "invalid_rewards": float(rewards.num_invalid),
      "response_length": float(lengths.mean()),
      "truncated": float(np.mean([c.finish_reason == "length" for c in completions])),
      "trained_outputs": float(scored.trained.mean()),
      **{f"reward_{name}": float(part.values[part.valid].mean()) if part.valid.any() else float("nan")
         for name, part in scored.reward_parts.items()},
      **{name: float(first[name]) for name in ("kl", "clip_fraction", "entropy", "abs_log_ratio",
                                               "pair_accuracy", "pair_margin", "value_loss",
                                               "value_clip_fraction", "value_mean", "value_grad_norm")
         if name in first},
      "loss": float(np.mean([m["loss"] for m in update_metrics])),
      "grad_norm": float(np.mean([m["grad_norm"] for m in update_metrics])),
      "learning_rate": float(first.get("learning_rate", np.nan)),
      **({"clip_fraction_last": float(update_metrics[-1]["clip_fraction"])}
         if "clip_fraction" in first else {}),
      **times,
  }
