"""GRPO (paper §4.1, Algorithm 1): the RL step and the training loop, task `grpo`.

One step, for a batch of questions:
  1. sample G outputs per question with the sampler, keeping pi_old log-probs;
  2. score them: the grader's verdict (rule), an outcome RM's score, or a process RM's
     per-step scores (rewards.py, reward_model.py);
  3. group-relative advantages (advantages.py);
  4. reference log-probs from the frozen pi_ref (skipped when beta = 0);
  5. mu = `rl.num_updates` passes of policy updates over `rl.num_minibatches` mini-batches
     with the GRPO objective (loss.py) through the shared train step.
Policy, reference and reward model live on the same mesh; the reference is a copy of the
policy's parameters at the start of training (or of the iteration, iterative.py).

Training rows hold one copy of a prompt and `rl.outputs_per_row` of its G responses
(packing.py): the prompt is computed once per row, and only response positions go through
the vocabulary projection, in the update and in the reference pass alike.
"""
import dataclasses
import functools
import math
import os
import time
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from dsmath_jax import sharding, templates
from dsmath_jax.model import llama
from dsmath_jax.rl import advantages as advantages_lib
from dsmath_jax.rl import loss as loss_lib
from dsmath_jax.rl import packing
from dsmath_jax.rl import reward_model as rm_lib
from dsmath_jax.rl import rewards as rewards_lib
from dsmath_jax.rl import steps as steps_lib

BATCH_FIELDS = packing.ROW_FIELDS + packing.TARGET_FIELDS + ("ref_logprobs",)


# ---- Questions --------------------------------------------------------------------------------

def load_questions(spec: str) -> list[dict]:
  """Question records from "kind:path[,kind:path...]": gsm8k (#### answers), math (\\boxed{}
  in the solution) or jsonl (fields `question` and `answer` as they are)."""
  from dsmath_jax import jsonl
  from dsmath_jax.datasets import gsm8k, hendrycks_math
  records = []
  for part in filter(None, (p.strip() for p in spec.split(","))):
    kind, _, path = part.partition(":")
    if kind == "gsm8k":
      records.extend(gsm8k.questions(path, "train"))
    elif kind == "math":
      records.extend(hendrycks_math.questions(path, "train"))
    elif kind == "jsonl":
      for row in jsonl.read_jsonl(path, {"question": "question", "answer": "answer"}):
        records.append(dict(id=f"{path}:{row['_line']}", question=str(row["question"]),
                            answer=str(row["answer"])))
    else:
      raise ValueError(f"data.questions: {part!r} is not gsm8k:PATH, math:PATH or jsonl:PATH")
  if not records:
    raise ValueError(f"data.questions={spec!r} holds no questions")
  return records


def fit_questions(questions: Sequence[dict], tokenizer, template: str, max_prompt_len: int) -> list[dict]:
  """The questions whose prompt fits rl.max_prompt_len (the rest are skipped and counted)."""
  kept = [q for q in questions if len(encode_prompt(tokenizer, q["question"], template)) <= max_prompt_len]
  if len(kept) < len(questions):
    logging.warning("%d of %d questions skipped: prompt longer than rl.max_prompt_len=%d",
                    len(questions) - len(kept), len(questions), max_prompt_len)
  if not kept:
    raise ValueError(f"no question fits rl.max_prompt_len={max_prompt_len}")
  return kept


def encode_prompt(tokenizer, question: str, template: str = "cot") -> list[int]:
  """BOS (where the vocabulary has one) + the rendered prompt (templates.py)."""
  ids = tokenizer.encode(templates.render(question, template))
  return ([tokenizer.bos_id] if tokenizer.bos_id is not None else []) + ids


# ---- Batches ----------------------------------------------------------------------------------

def rm_rows(completions, seq_len: int, pad_id: int) -> dict:
  """One `prompt + response` row per output (tokens/segment_ids/positions [outputs, seq_len]),
  built as the reward model's own training rows; scores are read at prompt length + token index."""
  examples = [rm_lib.RMExample(list(c.prompt_ids), list(c.token_ids), [], []) for c in completions]
  rows = rm_lib.make_batch(examples, seq_len, pad_id)
  return {k: rows[k] for k in ("tokens", "segment_ids", "positions")}


# ---- Compiled pieces --------------------------------------------------------------------------

@dataclasses.dataclass
class Machinery:
  """What an RL step needs besides the changing state: model, mesh and compiled functions."""
  model_config: llama.LlamaConfig
  tokenizer: object
  mesh: object
  rules: tuple
  seq_len: int                 # max_prompt_len + max_new_tokens: a reward model's rows
  train_step: object           # (state, batch) -> (state, metrics) on one mini-batch
  logprobs: object             # (params, packed rows) -> response log-probs [rows, k, n] (policy or reference)
  rm_scores: object | None     # (rm_params, rows) -> scores [rows, seq]
  row_multiple: int            # packed rows are padded to a multiple of this (batch ways x mini-batches)
  copy_params: object          # params -> a fresh copy in the same shardings (the reference)
  sandbox: object | None = None  # tool-integrated RL (data.template "tool"): runs the programs

  def close(self) -> None:
    """Stops the sandbox's workers (tool-integrated runs)."""
    if self.sandbox is not None:
      self.sandbox.close()
      self.sandbox = None


def _jit_under_mesh(fn, mesh, rules, **jit_kwargs):
  jitted = jax.jit(fn, **jit_kwargs)

  def run(*args):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted(*args)
  return run


def build_machinery(config, model_config, tokenizer, state_shardings, mesh, rules,
                    rm_config=None, rm_shardings=None) -> Machinery:
  from dsmath_jax.train import optim
  from dsmath_jax.train import step as step_lib
  rl = config.rl
  seq_len = int(rl.max_prompt_len) + int(rl.max_new_tokens)
  per_row = int(rl.outputs_per_row)
  if int(rl.group_size) % per_row:
    raise ValueError(f"rl.outputs_per_row={per_row} must divide rl.group_size={rl.group_size}")
  row_multiple = math.prod(sharding.batch_axes(mesh, rules).values()) * int(rl.num_minibatches)
  rows_per_update = packing.num_rows(int(config.data.questions_per_step) * int(rl.group_size), per_row,
                                     row_multiple) // int(rl.num_minibatches)
  apply_fn = step_lib.make_apply_fn(model_config)
  loss_fn = loss_lib.make_loss_fn(
      clip_eps=float(rl.clip_eps), clip_eps_high=float(rl.clip_eps_high) or None,
      kl_coef=float(rl.kl_coef), aggregation=rl.aggregation,
      normalizer=float(rl.get("loss_normalizer", 0) or rl.max_new_tokens))
  batch_spec = {name: (rows_per_update, seq_len) for name in packing.ROW_FIELDS}    # ranks fix shardings
  batch_spec.update({name: (rows_per_update, per_row, int(rl.max_new_tokens))
                     for name in packing.TARGET_FIELDS + ("ref_logprobs",)})
  train_step = step_lib.compile_train_step(
      state_shardings, mesh, rules, batch_spec, loss_fn=loss_fn, apply_fn=apply_fn,
      num_microbatches=int(config.train.num_microbatches),
      learning_rate_fn=optim.make_schedule(optim.OptimConfig.from_config(config.optim)))
  row_sharding = sharding.batch_sharding(mesh, rules, 2)
  rows_sharding = {k: row_sharding for k in ("tokens", "segment_ids", "positions")}
  packed_sharding = {k: sharding.batch_sharding(mesh, rules, len(batch_spec[k]))
                     for k in packing.ROW_FIELDS + ("target_slots", "target_tokens")}

  def logprobs(params, rows):
    return loss_lib.response_logprobs(apply_fn, params, rows)

  rm_scores = None
  if rm_config is not None:
    rm_model = rm_lib.RewardModel(rm_config)
    rm_scores = _jit_under_mesh(
        lambda p, rows: rm_model.apply({"params": p}, rows["tokens"], positions=rows["positions"],
                                       segment_ids=rows["segment_ids"]),
        mesh, rules, in_shardings=(rm_shardings, rows_sharding), out_shardings=row_sharding)
  return Machinery(
      model_config=model_config, tokenizer=tokenizer, mesh=mesh, rules=rules, seq_len=seq_len,
      train_step=train_step,
      logprobs=_jit_under_mesh(logprobs, mesh, rules, in_shardings=(state_shardings.params, packed_sharding),
                               out_shardings=sharding.batch_sharding(mesh, rules, 3)),
      rm_scores=rm_scores, row_multiple=row_multiple, sandbox=_sandbox(config),
      copy_params=_jit_under_mesh(lambda p: jax.tree.map(jnp.copy, p), mesh, rules,
                                  in_shardings=(state_shardings.params,),
                                  out_shardings=state_shardings.params))


def _sandbox(config):
  """A warm sandbox pool when the prompts are tool-integrated (paper §5.1.2), else None."""
  if config.data.template != "tool":
    return None
  from dsmath_jax.sandbox.sandbox import Sandbox
  return Sandbox(workers=int(config.rl.get("sandbox_workers", 4)),
                 allow_unisolated=bool(config.sandbox.allow_unisolated))


# ---- Scoring ----------------------------------------------------------------------------------

def _put(machinery: Machinery, rows: dict) -> dict:
  """Host arrays -> global arrays split over the batch axes on their leading axis."""
  return {name: sharding.put_global(value, sharding.batch_sharding(machinery.mesh, machinery.rules, value.ndim))
          for name, value in rows.items()}


def score_outputs(config, machinery: Machinery, completions, golds, rm_params=None):
  """(token_advantages list, Rewards, zero_group [num_groups], correct [num_outputs]).

  `correct` is always the grader's verdict, so accuracy is measured by the grader even when
  the policy is trained on reward-model scores.
  """
  rl = config.rl
  texts = [c.text for c in completions]
  correct = rewards_lib.score(rewards_lib.rule_reward, texts, golds)
  group = int(rl.group_size)
  lengths = [len(c.token_ids) for c in completions]
  if rl.reward == "rule":
    result = correct
  elif rl.reward in ("outcome_rm", "process_rm"):
    rows = rm_rows(completions, machinery.seq_len, machinery.tokenizer.pad_id)
    scores = np.asarray(jax.device_get(machinery.rm_scores(rm_params, _put(machinery, rows))))
    prompt_lengths = np.array([len(c.prompt_ids) for c in completions])
    if rl.reward == "outcome_rm":
      last = np.minimum(prompt_lengths + np.maximum(np.array(lengths) - 1, 0), machinery.seq_len - 1)
      result = rewards_lib.check_scores(rm_lib.scores_at(scores, last[:, None])[:, 0])
    else:
      ends = [steps_lib.step_end_tokens(c.token_ids, machinery.tokenizer, rl.step_delimiter)
              for c in completions]
      width = max([len(e) for e in ends] + [1])
      step_ends = np.zeros((len(completions), width), np.int64)
      step_valid = np.zeros((len(completions), width), bool)
      for i, e in enumerate(ends):
        e = [t for t in e if prompt_lengths[i] + t < machinery.seq_len]
        step_ends[i, :len(e)], step_valid[i, :len(e)] = e, True
      positions = np.minimum(prompt_lengths[:, None] + step_ends, machinery.seq_len - 1)
      step_scores = rm_lib.scores_at(scores, positions)                   # [outputs, steps] sigmoid
      finite = (np.isfinite(step_scores) | ~step_valid).all(axis=1)
      has_steps = step_valid.any(axis=1)
      mean_score = np.where(has_steps, np.where(step_valid, step_scores, 0).sum(1) / np.maximum(step_valid.sum(1), 1), 0)
      checked = rewards_lib.Rewards(
          np.where(finite, mean_score, 0.0).astype(np.float32), finite & has_steps,
          [f"sample {i}: process reward model score is not finite" for i in np.flatnonzero(~finite)] +
          [f"sample {i}: no step to score (empty response)" for i in np.flatnonzero(~has_steps)])
      step_valid &= checked.valid[:, None]
      token_adv, zero = advantages_lib.process_advantages(
          np.where(step_valid, step_scores, 0.0), step_ends, step_valid, group, max(lengths + [1]),
          eps=float(rl.adv_eps))
      return [token_adv[i, :n] for i, n in enumerate(lengths)], checked, zero, correct
  else:
    raise ValueError(f"rl.reward={rl.reward!r}; choose rule, outcome_rm or process_rm")
  adv, zero = advantages_lib.outcome_advantages(result.values.reshape(-1, group),
                                                result.valid.reshape(-1, group), eps=float(rl.adv_eps))
  adv = adv.reshape(-1)
  return [np.full(n, adv[i], np.float32) for i, n in enumerate(lengths)], result, zero, correct


# ---- The step ---------------------------------------------------------------------------------

def sampling_params(rl, *, greedy: bool = False, num_samples: int | None = None):
  from dsmath_jax.sample.sampler import SamplingParams
  return SamplingParams(max_new_tokens=int(rl.max_new_tokens), temperature=float(rl.temperature),
                        top_p=float(rl.top_p), num_samples=int(rl.group_size if num_samples is None else num_samples),
                        stop_strings=tuple(rl.stop_strings), greedy=greedy)


def rl_step(config, machinery: Machinery, state, ref_params, questions: Sequence[dict], rng,
            rm_params=None):
  """One GRPO step on `questions` -> (state, metrics dict of floats, completions)."""
  from dsmath_jax.sample import sampler
  rl = config.rl
  tokenizer, group = machinery.tokenizer, int(rl.group_size)
  times = {}
  start = time.perf_counter()
  prompts = [encode_prompt(tokenizer, q["question"], config.data.template) for q in questions]
  if machinery.sandbox is not None:        # tool-integrated: programs run between rounds, their
    from dsmath_jax.sample import tool_loop  # outputs enter the context with no loss (tool_mask)
    completions = tool_loop.generate_with_tools(
        state.params, machinery.model_config, tokenizer, prompts, sampling_params(rl),
        jax.random.fold_in(rng, 0), max_tool_rounds=int(rl.get("max_tool_rounds", 4)),
        sandbox=machinery.sandbox, mesh=machinery.mesh, rules=machinery.rules)
  else:
    completions = sampler.generate(state.params, machinery.model_config, tokenizer, prompts,
                                   sampling_params(rl), jax.random.fold_in(rng, 0),
                                   mesh=machinery.mesh, rules=machinery.rules)
  times["time_sampling"] = time.perf_counter() - start

  start = time.perf_counter()
  golds = [questions[c.prompt_index]["answer"] for c in completions]
  token_adv, rewards, zero_group, correct = score_outputs(config, machinery, completions, golds, rm_params)
  for message in rewards.errors[:5]:
    logging.warning("reward failed, sample left out: %s", message)
  rows = packing.pack_outputs(completions, token_adv, rewards.valid, outputs_per_row=int(rl.outputs_per_row),
                              max_new_tokens=int(rl.max_new_tokens), pad_id=tokenizer.pad_id,
                              row_multiple=machinery.row_multiple)
  times["time_scoring"] = time.perf_counter() - start

  start = time.perf_counter()
  device_rows = _put(machinery, {k: rows[k] for k in packing.ROW_FIELDS + ("target_slots", "target_tokens")})
  if float(rl.kl_coef) > 0:
    rows["ref_logprobs"] = np.asarray(jax.device_get(machinery.logprobs(ref_params, device_rows)))
  else:
    rows["ref_logprobs"] = rows["old_logprobs"]             # no KL term: nothing to compare with
  gap = None
  if int(rl.logprob_gap_every) and int(jax.device_get(state.step)) % int(rl.logprob_gap_every) == 0:
    trainer = np.asarray(jax.device_get(machinery.logprobs(state.params, device_rows)))
    gap = float(np.max(np.abs(trainer - rows["old_logprobs"]) * (rows["loss_mask"] > 0), initial=0.0))
  times["time_reference"] = time.perf_counter() - start

  start = time.perf_counter()
  num_rows, minibatches = len(rows["tokens"]), int(rl.num_minibatches)
  order_rng = np.random.default_rng(np.asarray(jax.random.key_data(jax.random.fold_in(rng, 1))).ravel())
  update_metrics = []
  for _ in range(int(rl.num_updates)):
    order = order_rng.permutation(num_rows) if minibatches > 1 else np.arange(num_rows)
    for part in np.array_split(order, minibatches):
      state, metrics = machinery.train_step(state, _put(machinery, {k: rows[k][part] for k in BATCH_FIELDS}))
      update_metrics.append(metrics)
  update_metrics = jax.device_get(update_metrics)
  times["time_training"] = time.perf_counter() - start

  first = update_metrics[0]                                    # the on-policy update: ratio = 1
  valid = rewards.valid
  lengths = np.array([len(c.token_ids) for c in completions], np.float32)
  metrics = {
      "reward_mean": float(rewards.values[valid].mean()) if valid.any() else float("nan"),
      "reward_std": float(rewards.values[valid].std()) if valid.any() else float("nan"),
      "accuracy": float(correct.values[correct.valid].mean()) if correct.valid.any() else float("nan"),
      "zero_advantage_groups": float(zero_group.mean()),
      "invalid_rewards": float(rewards.num_invalid),
      "response_length": float(lengths.mean()),
      "truncated": float(np.mean([c.finish_reason == "length" for c in completions])),
      **{name: float(first[name]) for name in ("kl", "clip_fraction", "entropy", "abs_log_ratio")
         if name in first},
      "loss": float(np.mean([m["loss"] for m in update_metrics])),
      "grad_norm": float(np.mean([m["grad_norm"] for m in update_metrics])),
      "learning_rate": float(first.get("learning_rate", np.nan)),
      "clip_fraction_last": float(update_metrics[-1]["clip_fraction"]),
      **times,
  }
  if gap is not None:
    metrics["max_logprob_gap"] = gap
  return state, metrics, completions


# ---- Setup and loop ---------------------------------------------------------------------------

def load_policy(config, mesh, rules):
  """(model_config, params or None, tokenizer) from config.checkpoint, or a random config.model."""
  from dsmath_jax import tokenizer as tokenizer_lib
  if config.checkpoint:
    from dsmath_jax.model import loading
    pretrained = loading.load_pretrained(config.checkpoint, mesh=mesh, rules=rules)
    tokenizer = pretrained.tokenizer or tokenizer_lib.load_tokenizer(config.tokenizer)
    return pretrained.config, pretrained.params, tokenizer
  return llama.LlamaConfig.from_config(config.model), None, tokenizer_lib.load_tokenizer(config.tokenizer)


def setup(config, mesh=None):
  """(machinery, state, ref_params, rm_params) for a config; the mesh defaults to config.mesh."""
  from dsmath_jax.train import optim
  from dsmath_jax.train import state as state_lib
  mesh = mesh if mesh is not None else sharding.make_mesh(config.mesh)
  rules = tuple(tuple(r) for r in config.logical_axis_rules)
  model_config, params, tokenizer = load_policy(config, mesh, rules)
  state, shardings = state_lib.create_train_state(optim.OptimConfig.from_config(config.optim), model_config, mesh,
                                                   rules, params=params, seed=config.seed)
  rm_config = rm_params = rm_shardings = None
  if config.rl.reward != "rule":
    if not config.rl.reward_model:
      raise ValueError(f"rl.reward={config.rl.reward!r} needs rl.reward_model (a `reward_model` task's "
                       "WORKDIR/model)")
    rm_config, rm_params, rm_shardings = rm_lib.load_reward_model(config.rl.reward_model, mesh, rules)
  machinery = build_machinery(config, model_config, tokenizer, shardings, mesh, rules, rm_config, rm_shardings)
  ref_params = machinery.copy_params(state.params) if float(config.rl.kl_coef) > 0 else None
  return machinery, state, ref_params, rm_params


def question_batches(questions: Sequence[dict], per_step: int, seed: int):
  """Endless shuffled passes over the questions; batch k depends only on (seed, k)."""
  epoch = 0
  while True:
    order = np.random.default_rng([seed, epoch]).permutation(len(questions))
    for start in range(0, len(order) - per_step + 1, per_step):
      yield [questions[i] for i in order[start:start + per_step]]
    epoch += 1


def train(config, workdir: str, machinery, state, ref_params, rm_params=None, *, steps: int | None = None,
          questions=None, writer=None, step_offset: int = 0, checkpointer=None):
  """The loop: next questions, rl_step, metrics. Returns the final state.

  With a `checkpointer` (train/checkpointing.py) the loop resumes from its latest checkpoint
  and saves every `train.checkpoint_every` steps and on SIGTERM. A step's questions and
  sampling key depend only on (seed, step), so the policy state is all a resume needs.
  """
  from dsmath_jax.train.metrics import MetricsWriter
  questions = questions if questions is not None else load_questions(config.data.questions)
  questions = fit_questions(questions, machinery.tokenizer, config.data.template, int(config.rl.max_prompt_len))
  own_writer = writer is None
  writer = writer or MetricsWriter(workdir, console_keys=("reward_mean", "accuracy", "kl", "response_length",
                                                          "time_sampling", "time_training"))
  batches = question_batches(questions, int(config.data.questions_per_step), int(config.seed) + step_offset)
  rng = jax.random.key(int(config.seed))
  steps = int(config.optim.steps) if steps is None else steps
  done, saved = 0, True                                    # steps finished; is `done` checkpointed
  if checkpointer is not None:
    state, done = checkpointer.restore(state)
    for _ in range(done):                                  # the questions of the steps already done
      next(batches)
  while done < steps:
    global_step = step_offset + done
    state, metrics, _ = rl_step(config, machinery, state, ref_params, next(batches),
                                jax.random.fold_in(rng, global_step), rm_params)
    done += 1
    writer.write(global_step + 1, metrics)
    if checkpointer is not None:
      saved = checkpointer.save(done, state)
      if checkpointer.should_stop(done):
        logging.warning("stopping at step %d (preemption); re-run the command to resume", done)
        break
  if checkpointer is not None and not saved:    # the last step (or the preempted one) is always saved
    checkpointer.save(done, state, force=True)
  if own_writer:
    writer.close()
  return state


def run(config, workdir: str):
  """Task `grpo`: train, plot the curves, save WORKDIR/model (load_pretrained reads it).
  Re-running the command resumes from WORKDIR/checkpoints (the reference is the policy of
  `config.checkpoint` again). Iterative RL (rl.iterations > 0) is `iterative.run`; main routes it."""
  from dsmath_jax.model import loading
  from dsmath_jax.train.metrics import plot_curves
  from dsmath_jax.train import checkpointing
  sharding.maybe_initialize_distributed(config)
  machinery, state, ref_params, rm_params = setup(config)
  checkpointer = checkpointing.Checkpointer(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      every_steps=int(config.train.checkpoint_every), keep=int(config.train.keep_checkpoints))
  try:
    state = train(config, workdir, machinery, state, ref_params, rm_params, checkpointer=checkpointer)
  finally:
    checkpointer.close()
    machinery.close()
  plot_curves(os.path.join(workdir, "metrics.jsonl"),
              ("reward_mean", "accuracy", "kl", "response_length", "zero_advantage_groups", "entropy"),
              os.path.join(workdir, "curves.png"))
  loading.save_pretrained(os.path.join(workdir, "model"), machinery.model_config, state.params,
                          machinery.tokenizer)
  return state
