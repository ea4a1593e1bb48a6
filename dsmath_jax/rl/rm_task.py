"""Task `reward_model`: train an outcome or process reward model (paper §4.1.2-4.1.3, §4.2).

Labels come from (data.source):
  "policy"        the policy's own samples, graded by the grader (outcome), or labelled per step
                  as in Math-Shepherd: from each step prefix, N completions; the step is good if
                  any reaches the gold answer (process);
  "prm800k:PATH"  PRM800K lines (process; reward_model.read_prm800k);
  "jsonl:PATH"    {question, response, correct} (outcome) or {question, steps, labels} (process).
The model is the policy's decoder + a scalar head (reward_model.RewardModel), initialized from
`checkpoint` (paper: the base model, lr 2e-5), trained with BCE, saved to WORKDIR/model
(`save_reward_model`), which GRPO's `rl.reward_model` reads.

Policy-sample step labels are placed on the steps re-encoded one by one; with a byte-level or
whitespace-stable tokenizer these are the same tokens GRPO scores (steps.step_end_tokens).
"""
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from dsmath_jax import sharding
from dsmath_jax.rl import reward_model as rm_lib
from dsmath_jax.rl import rewards as rewards_lib
from dsmath_jax.rl import steps as steps_lib


# ---- Labels -----------------------------------------------------------------------------------

def policy_examples(label_config, kind: str, params, model_config, tokenizer, questions, rng, *,
                    mesh=None, rules=None, template: str = "cot"):
  """RMExamples from the policy's own samples: outcome (graded) or process (Math-Shepherd)."""
  from dsmath_jax.rl import grpo
  from dsmath_jax.sample import sampler
  prompts = [grpo.encode_prompt(tokenizer, q["question"], template) for q in questions]
  sampling = sampler.SamplingParams(max_new_tokens=int(label_config.max_new_tokens),
                                    temperature=float(label_config.temperature),
                                    num_samples=int(label_config.samples_per_question))
  completions = sampler.generate(params, model_config, tokenizer, prompts, sampling,
                                 jax.random.fold_in(rng, 0), mesh=mesh, rules=rules)
  golds = [questions[c.prompt_index]["answer"] for c in completions]
  if kind == "outcome":
    graded = rewards_lib.score(rewards_lib.rule_reward, [c.text for c in completions], golds)
    return [rm_lib.outcome_example(c.prompt_ids, c.token_ids, value > 0.5)
            for c, value, ok in zip(completions, graded.values, graded.valid) if ok and c.token_ids]

  def complete(requests, n):
    continuation = sampler.SamplingParams(max_new_tokens=int(label_config.max_new_tokens),
                                          temperature=float(label_config.temperature), num_samples=n)
    ids = [completions[owner].prompt_ids + tokenizer.encode(prefix) for owner, prefix in requests]
    outs = sampler.generate(params, model_config, tokenizer, ids, continuation,
                            jax.random.fold_in(rng, 1), mesh=mesh, rules=rules)
    return [[o.text for o in outs[i * n:(i + 1) * n]] for i in range(len(requests))]

  delimiter = label_config.step_delimiter
  labels = rm_lib.math_shepherd_labels(
      [(c.text, g) for c, g in zip(completions, golds)], complete, rewards_lib.rule_reward,
      num_completions=int(label_config.num_completions), delimiter=delimiter)
  return [rm_lib.process_example(c.prompt_ids, [tokenizer.encode(s) for s in steps_lib.split_text(c.text, delimiter)],
                                 step_labels)
          for c, step_labels in zip(completions, labels) if step_labels]


def file_examples(source: str, kind: str, tokenizer, template: str = "cot"):
  """RMExamples from "prm800k:PATH" or "jsonl:PATH" (see module doc)."""
  from dsmath_jax.rl import grpo
  prefix, _, path = source.partition(":")
  examples = []
  if prefix == "prm800k":
    for record in rm_lib.read_prm800k(path):
      prompt = grpo.encode_prompt(tokenizer, record["question"], template)
      steps = [(" " if i == 0 else "") + s + "\n" for i, s in enumerate(record["steps"])]
      examples.append(rm_lib.process_example(prompt, [tokenizer.encode(s) for s in steps], record["labels"]))
    return examples
  if prefix != "jsonl":
    raise ValueError(f"data.source={source!r}: use policy, prm800k:PATH or jsonl:PATH")
  from dsmath_jax.jsonl import json_objects
  for line_number, record in json_objects(path):
    needed = ("question", "response", "correct") if kind == "outcome" else ("question", "steps", "labels")
    for field in needed:
      if field not in record:
        raise ValueError(f"{path}:{line_number}: field {field!r} missing (data.kind={kind!r})")
    prompt = grpo.encode_prompt(tokenizer, record["question"], template)
    if kind == "outcome":
      examples.append(rm_lib.outcome_example(prompt, tokenizer.encode(record["response"]),
                                             bool(record["correct"])))
    else:
      if len(record["steps"]) != len(record["labels"]):
        raise ValueError(f"{path}:{line_number}: field 'labels' has {len(record['labels'])} entries "
                         f"for {len(record['steps'])} steps")
      examples.append(rm_lib.process_example(prompt, [tokenizer.encode(s) for s in record["steps"]],
                                             record["labels"]))
  return examples


# ---- Training ---------------------------------------------------------------------------------

def create_rm_state(config, rm_config, mesh, rules, base_params=None, params=None):
  """(TrainState of the reward model, shardings) with a fresh optimizer. `base_params` = a policy
  decoder's params (head at zero); `params` = a whole trained reward model (load_reward_model)."""
  from dsmath_jax.train import optim
  from dsmath_jax.train.state import TrainState
  tx = optim.make_optimizer(optim.OptimConfig.from_config(config.optim))
  key = jax.random.key(int(config.seed))

  def boxed(key):
    params = rm_lib.init_params(rm_config, key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      rng=jax.random.key_data(key), tx=tx)

  shardings = sharding.tree_shardings(jax.eval_shape(boxed, key), mesh, rules)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    state = jax.jit(lambda k: nn.unbox(boxed(k)), out_shardings=shardings)(key)
  if base_params is not None:
    base = {k: v for k, v in base_params.items() if k in state.params["base"]}
    # A real copy (jnp.copy under jit), never an alias: the policy state may donate these buffers.
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      base = jax.jit(lambda b: jax.tree.map(jnp.copy, b), out_shardings=shardings.params["base"])(base)
    state = state.replace(params={**state.params, "base": base})
  if params is not None:
    state = state.replace(params=jax.device_put(params, shardings.params))
  return state, shardings


def train_reward_model(config, state, shardings, rm_config, examples, mesh, rules, writer=None,
                       step_offset: int = 0):
  """Epochs over `examples` in batches of data.global_batch; returns (state, last metrics)."""
  from dsmath_jax.train import optim
  from dsmath_jax.train import step as step_lib
  batch_size, seq_len = int(config.data.global_batch), int(config.data.seq_len)
  if len(examples) < batch_size:
    raise ValueError(f"{len(examples)} reward-model examples, fewer than data.global_batch={batch_size}")
  model = rm_lib.RewardModel(rm_config)
  apply_fn = lambda params, tokens, **kw: model.apply({"params": params}, tokens, **kw)
  spec = {k: (batch_size, seq_len) for k in ("tokens", "segment_ids", "positions", "label_mask", "labels")}
  step = step_lib.compile_train_step(shardings, mesh, rules, spec, loss_fn=rm_lib.make_loss_fn(),
                                     apply_fn=apply_fn, num_microbatches=int(config.train.num_microbatches),
                                     learning_rate_fn=optim.make_schedule(optim.OptimConfig.from_config(config.optim)))
  pad = 0
  order_rng = np.random.default_rng(int(config.seed) + step_offset)
  metrics, done = {}, 0
  total = int(config.optim.steps)
  while done < total:
    order = order_rng.permutation(len(examples))
    for start in range(0, len(order) - batch_size + 1, batch_size):
      batch = rm_lib.make_batch([examples[i] for i in order[start:start + batch_size]], seq_len, pad)
      state, metrics = step(state, sharding.put_global(batch, sharding.batch_sharding(mesh, rules, 2)))
      done += 1
      if writer is not None:
        writer.write(step_offset + done, {f"rm_{k}": v for k, v in jax.device_get(metrics).items()})
      if done >= total:
        break
  return state, jax.device_get(metrics)


def run(config, workdir: str):
  """Task `reward_model`: labels -> BCE training -> WORKDIR/model (save_reward_model)."""
  from dsmath_jax.rl import grpo
  from dsmath_jax.train.metrics import MetricsWriter, plot_curves
  sharding.maybe_initialize_distributed(config)
  mesh = sharding.make_mesh(config.mesh)
  rules = tuple(tuple(r) for r in config.logical_axis_rules)
  model_config, params, tokenizer = grpo.load_policy(config, mesh, rules)
  kind = config.data.kind
  if kind not in ("outcome", "process"):
    raise ValueError(f"data.kind={kind!r}; choose outcome or process")
  if config.data.source == "policy":
    if params is None:                                        # tiny runs: a random policy
      from dsmath_jax.model import llama
      params = nn.unbox(llama.init_params(model_config, jax.random.key(int(config.seed))))
    questions = grpo.fit_questions(grpo.load_questions(config.data.questions), tokenizer,
                                   config.data.template, int(config.data.seq_len) // 2)
    questions = questions[:int(config.label.num_questions)]
    examples = policy_examples(config.label, kind, params, model_config, tokenizer, questions,
                               jax.random.key(int(config.seed)), mesh=mesh, rules=rules,
                               template=config.data.template)
  else:
    examples = file_examples(config.data.source, kind, tokenizer, config.data.template)
  positive = np.mean([l for e in examples for l in e.labels]) if examples else float("nan")
  logging.info("reward model: %d %s examples, %.3f of labels positive", len(examples), kind, positive)
  state, shardings = create_rm_state(config, model_config, mesh, rules, base_params=params)
  writer = MetricsWriter(workdir, console_keys=("rm_loss", "rm_accuracy"))
  state, metrics = train_reward_model(config, state, shardings, model_config, examples, mesh, rules, writer)
  writer.close()
  plot_curves(os.path.join(workdir, "metrics.jsonl"), ("rm_loss", "rm_accuracy"),
              os.path.join(workdir, "curves.png"))
  rm_lib.save_reward_model(os.path.join(workdir, "model"), model_config, state.params, tokenizer)
  return state, metrics
