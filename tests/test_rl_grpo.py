"""The GRPO step (paper §4.1, Algorithm 1): sharded = single device, task `grpo` end to end."""
import dataclasses
import functools
import json
import os

import jax
import numpy as np
import pytest

from configs import grpo as grpo_config
from dsmath_jax import runtime, sharding
from dsmath_jax.rl import grpo, grpo_step, packing, scoring
from dsmath_jax.rl import questions as questions_lib
from dsmath_jax.rl import rewards as rewards_lib
from dsmath_jax.rl.config import GRPOConfig


def _questions(tmp_path):
  path = tmp_path / "questions.jsonl"
  with open(path, "w") as f:
    for i in range(4):
      f.write(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n")
  return str(path)


def _config(tmp_path, **rl):
  c = grpo_config.get_config("tiny")
  c.data.questions = f"jsonl:{_questions(tmp_path)}"
  c.rl.update(dict(dict(max_prompt_len=96, max_new_tokens=8), **rl))
  return c


def _letter_reward(output, gold):
  """A dense stand-in reward (the random policy never answers right): share of letters."""
  return sum(ch.isalpha() for ch in output) / max(len(output), 1)


def _two_steps(config, mesh):
  run = GRPOConfig.from_config(config)
  machinery, state, ref_params, _ = grpo.setup(run, mesh, runtime.rules_of(config))
  questions = questions_lib.load_questions(run.data.questions)
  history = []
  for step in range(2):
    state, metrics, completions = grpo_step.rl_step(run.rl, machinery, state, ref_params,
                                                    questions[2 * step:2 * step + 2], jax.random.key(step))
    history.append((metrics, [c.token_ids for c in completions]))
  return jax.device_get(state.params), history


@pytest.mark.parametrize("outputs_per_row,num_minibatches", [(1, 2), (4, 1)])
def test_sharded_rl_step_equals_single_device(tmp_path, monkeypatch, outputs_per_row, num_minibatches):
  """One output per row in 2 mini-batches, and a group's 4 outputs sharing one prompt copy
  (2 rows, padded to 4 for the 4 batch shards)."""
  monkeypatch.setattr(rewards_lib, "rule_reward", _letter_reward)
  config = _config(tmp_path, num_minibatches=num_minibatches, outputs_per_row=outputs_per_row)
  one = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  eight = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2), jax.devices())
  params_one, history_one = _two_steps(config, one)
  params_eight, history_eight = _two_steps(config, eight)
  for (m1, tokens1), (m8, tokens8) in zip(history_one, history_eight):
    assert tokens1 == tokens8                               # the same samples on both meshes
    for key in ("reward_mean", "loss", "kl", "entropy", "clip_fraction", "grad_norm"):
      np.testing.assert_allclose(m8[key], m1[key], rtol=2e-4, atol=1e-6, err_msg=key)
  assert history_one[0][0]["zero_advantage_groups"] < 1.0    # the step had a signal to learn from
  assert history_one[1][0]["kl"] > 0                          # after one update the policy left pi_ref
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6), params_eight, params_one)


def test_grpo_task_tiny_end_to_end_with_a_failing_reward(tmp_path, monkeypatch):
  """The task runs and writes its metrics, curves and model; a reward that raises or returns NaN
  marks those samples (no loss) and the step reports how many, never a silent 0."""
  from dsmath_jax.model import loading
  from dsmath_jax.sample import sampler
  seen = []
  generate = sampler.generate

  def recording_generate(*args, **kwargs):
    seen.extend(generate(*args, **kwargs))
    return seen[-8:]

  def flaky(output, gold):
    if len(output) % 3 == 0:
      raise ValueError("cannot parse")
    return float("nan") if len(output) % 3 == 1 else 0.5

  monkeypatch.setattr(sampler, "generate", recording_generate)
  monkeypatch.setattr(rewards_lib, "rule_reward", flaky)
  config = _config(tmp_path)
  config.optim.steps = 1
  workdir = str(tmp_path / "run")
  grpo.run(config, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    record = json.loads(f.readline())
  invalid = sum(len(c.text) % 3 != 2 for c in seen)
  assert len(seen) == 8 and record["invalid_rewards"] == invalid
  assert invalid == 8 or record["reward_mean"] == 0.5        # the failures were not averaged in as 0
  for key in ("reward_mean", "reward_std", "accuracy", "zero_advantage_groups", "kl", "clip_fraction",
              "entropy", "response_length", "max_logprob_gap", "time_sampling", "time_scoring",
              "time_training"):
    assert key in record, key
  assert record["max_logprob_gap"] < 1e-4                   # sampler log-probs = trainer log-probs
  assert os.path.exists(os.path.join(workdir, "curves.png"))
  assert loading.load_pretrained(os.path.join(workdir, "model")).config.hidden_size == 64
  with open(os.path.join(workdir, "config.json")) as f:                   # the resolved config
    assert json.load(f)["rl"]["group_size"] == config.rl.group_size


def test_grpo_run_resumes_exactly_after_a_crash(tmp_path, monkeypatch):
  """Killed during step 3, the re-run command restores step 2's checkpoint and ends with the
  same policy and step-3 metrics as an uninterrupted run."""
  from dsmath_jax.model import loading
  from dsmath_jax.train.metrics import read_metrics
  monkeypatch.setattr(rewards_lib, "rule_reward", _letter_reward)
  config = _config(tmp_path)
  config.optim.steps = 3
  config.train.checkpoint_every = 1
  grpo.run(config, str(tmp_path / "whole"))

  real_step, calls = grpo_step.rl_step, []

  def crashing_step(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
      raise KeyboardInterrupt("killed")
    return real_step(*args, **kwargs)

  monkeypatch.setattr(grpo_step, "rl_step", crashing_step)
  with pytest.raises(KeyboardInterrupt):
    grpo.run(config, str(tmp_path / "resumed"))
  monkeypatch.setattr(grpo_step, "rl_step", real_step)
  grpo.run(config, str(tmp_path / "resumed"))

  whole = read_metrics(str(tmp_path / "whole" / "metrics.jsonl"))
  resumed = read_metrics(str(tmp_path / "resumed" / "metrics.jsonl"))
  assert [r["step"] for r in resumed] == [1, 2, 3]
  for key in ("reward_mean", "loss", "kl", "grad_norm"):
    assert resumed[2][key] == pytest.approx(whole[2][key], rel=1e-6, abs=1e-9), key
  assert whole[2]["kl"] > 0
  params = [loading.load_pretrained(str(tmp_path / name / "model")).params for name in ("whole", "resumed")]
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), *params)


def test_tool_integrated_step_runs_programs_and_their_output_carries_no_loss(tmp_path, monkeypatch):
  """data.template "tool": the step samples through the tool loop with the machinery's sandbox
  (a scripted policy writes a program; the sandbox really runs it), the grader scores the
  final answer, and the inserted output tokens get no loss in the training rows."""
  from dsmath_jax.sample import sampler
  config = _config(tmp_path, max_new_tokens=128)
  config.tool.sandbox_workers = 1
  config.data.template = "tool"
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  run = GRPOConfig.from_config(config)
  machinery, state, ref_params, _ = grpo.setup(run, mesh, runtime.rules_of(config))
  tokenizer = machinery.tokenizer
  program = " Let me compute.\n```python\nprint(6 * 7)\n```\n```output"

  def scripted_rows(params, model_config, contexts, sampling, rng, *, row_ids, limits, samples_per_prompt=1,
                    **kwargs):
    contexts = [c for c in contexts for _ in range(samples_per_prompt)]
    assert len(contexts) == len(row_ids) == len(limits)
    rows = []
    for context, limit in zip(contexts, limits):
      if "```output" in tokenizer.decode(context):              # the program ran: answer
        ids, finish, stop = tokenizer.encode(" The answer is \\boxed{42}.") + [tokenizer.eos_id], "eos", -1
      else:
        ids, finish, stop = tokenizer.encode(program), "stop", 0
      assert len(ids) <= limit
      rows.append(sampler.RowResult(ids, [-0.5] * len(ids), finish, stop))
    return rows

  packed = []
  pack = packing.pack_outputs
  monkeypatch.setattr(sampler, "generate_rows", scripted_rows)
  monkeypatch.setattr(packing, "pack_outputs", lambda *a, **k: packed.append(pack(*a, **k)) or packed[-1])
  try:
    _, metrics, completions = grpo_step.rl_step(run.rl, machinery, state, ref_params,
                                           [dict(question="What is 6 times 7?", answer="42")], jax.random.key(0))
  finally:
    machinery.close()
  assert len(completions) == config.rl.group_size
  for completion in completions:
    assert "```output\n42\n```" in completion.text and completion.text.endswith("\\boxed{42}.")
    inserted = sum(completion.tool_mask)
    assert inserted == len(tokenizer.encode("\n42\n```\n"))
  assert metrics["accuracy"] == 1.0
  rows = packed[0]
  written = [len(c.token_ids) - sum(c.tool_mask) for c in completions]
  np.testing.assert_array_equal(rows["loss_mask"][0].sum(-1), written)     # inserted tokens: no loss
  first = completions[0]
  mask_row = rows["loss_mask"][0, 0, :len(first.token_ids)]
  np.testing.assert_array_equal(mask_row, 1 - np.asarray(first.tool_mask))


@pytest.mark.parametrize("reward", ["process_rm", "outcome_rm"])
def test_iterative_rl_tiny_retrains_the_reward_model_and_scores_with_it(tmp_path, monkeypatch, reward):
  """configs/grpo_iterative.py:tiny end to end: the reward model starts from the policy's
  decoder, is trained on labelled samples, scores every GRPO step (process: per step, outcome:
  at the last token), is retrained after each of the 2 iterations, and both models are saved."""
  from configs import grpo_iterative
  from dsmath_jax.model import loading
  from dsmath_jax.rl import iterative
  from dsmath_jax.rl import reward_model as rm_lib
  from dsmath_jax.train.metrics import read_metrics
  monkeypatch.setattr(rewards_lib, "rule_reward", _letter_reward)
  scored = []
  score_outputs = scoring.score_outputs

  def recording_score_outputs(*args, **kwargs):
    out = score_outputs(*args, **kwargs)
    scored.append(out)
    return out

  monkeypatch.setattr(scoring, "score_outputs", recording_score_outputs)
  config = grpo_iterative.get_config("tiny")
  config.data.questions = f"jsonl:{_questions(tmp_path)}"
  config.rl.update(reward=reward, max_prompt_len=96, max_new_tokens=8)
  workdir = tmp_path / "run"
  iterative.run(config, str(workdir))
  records = read_metrics(str(workdir / "metrics.jsonl"))
  assert [r["iteration"] for r in records if "iteration" in r] == [1, 2]
  assert all(np.isfinite(r["rm_loss"]) for r in records if "rm_loss" in r)
  assert len(scored) == 2                                   # one GRPO step per iteration
  for out in scored:
    token_advantages, rewards = out.token_advantages, out.rewards
    assert rewards.valid.all() and ((0 < rewards.values) & (rewards.values < 1)).all()   # sigmoid scores
    assert all(np.isfinite(a).all() for a in token_advantages)
  assert loading.load_pretrained(str(workdir / "model")).config.hidden_size == 64
  rm_config, rm_params, _ = rm_lib.load_reward_model(str(workdir / "reward_model"))
  assert rm_config.hidden_size == 64 and "score_head" in rm_params
  assert json.loads((workdir / "config.json").read_text())["rl"]["reward"] == reward    # the resolved config


def test_model_remat_reaches_the_compiled_update_of_a_loaded_policy(tmp_path):
  """--config.model.remat=full with a checkpoint: the policy update is compiled with the layers
  recomputed in the backward pass. The run-time fields of config.model apply to a loaded model
  (model.loading.load_or_init); a loader that kept the saved model's remat="none" compiles the
  same program twice."""
  import flax.linen as nn
  from dsmath_jax.model import llama, loading
  from dsmath_jax.tokenizer import ByteTokenizer
  config = _config(tmp_path)
  saved = llama.LlamaConfig.from_config(config.model)
  assert saved.remat == "none"
  config.checkpoint = loading.save_pretrained(str(tmp_path / "policy"), saved,
                                              nn.unbox(llama.init_params(saved, jax.random.key(0))), ByteTokenizer())
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  programs = {}
  for remat in ("none", "full"):
    config.model.remat = remat
    machinery, state, _, _ = grpo.setup(GRPOConfig.from_config(config), mesh, runtime.rules_of(config))
    assert machinery.model_config.remat == remat
    batch = {name: jax.ShapeDtypeStruct(shape, np.float32 if name in ("loss_mask", "old_logprobs", "advantages",
                                                                      "ref_logprobs") else np.int32)
             for name, shape in machinery.batch_spec.items()}
    lowered = machinery.train_step.lower(state, batch)
    programs[remat] = lowered.as_text(), lowered.compile().memory_analysis().temp_size_in_bytes
  (text_none, temp_none), (text_full, temp_full) = programs["none"], programs["full"]
  assert text_full != text_none
  assert temp_full < temp_none, (temp_full, temp_none)       # activations recomputed, not kept


def test_iterative_rl_killed_after_an_iteration_resumes_with_identical_metrics(tmp_path, monkeypatch):
  """configs/grpo_iterative.py:tiny (2 iterations of 1 GRPO step): a run that dies while labelling
  the second iteration's samples (after the first iteration's checkpoint) and is re-run logs the
  metrics of an uninterrupted run, and saves the same policy and reward model."""
  from configs import grpo_iterative
  from dsmath_jax.model import loading
  from dsmath_jax.rl import iterative, rm_task
  from dsmath_jax.rl import reward_model as rm_lib
  from dsmath_jax.train.metrics import read_metrics
  monkeypatch.setattr(rewards_lib, "rule_reward", _letter_reward)
  config = grpo_iterative.get_config("tiny")
  config.data.questions = f"jsonl:{_questions(tmp_path)}"
  config.rl.update(max_prompt_len=96, max_new_tokens=8)

  def logged(workdir):
    """(step, key) -> value, the last logged (a step redone after the resume logs again); no timings."""
    return {(r["step"], k): v for r in read_metrics(str(workdir / "metrics.jsonl")) for k, v in r.items()
            if k != "step" and not k.startswith("time") and "per_s" not in k}

  iterative.run(config, str(tmp_path / "full"))
  policy_examples, calls = rm_task.policy_examples, []

  def dies_labelling_the_second_iteration(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:                          # initial policy, iteration 1, iteration 2
      raise KeyboardInterrupt("killed")
    return policy_examples(*args, **kwargs)

  monkeypatch.setattr(rm_task, "policy_examples", dies_labelling_the_second_iteration)
  with pytest.raises(KeyboardInterrupt):
    iterative.run(config, str(tmp_path / "killed"))
  assert not (tmp_path / "killed" / "model").exists()
  monkeypatch.setattr(rm_task, "policy_examples", policy_examples)
  iterative.run(config, str(tmp_path / "killed"))
  expected, got = logged(tmp_path / "full"), logged(tmp_path / "killed")
  assert sorted(got) == sorted(expected) and ((2, "iteration") in got)
  for key in sorted(expected):
    np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, err_msg=str(key))
  for name, load in (("model", lambda p: loading.load_pretrained(p).params),
                     ("reward_model", lambda p: rm_lib.load_reward_model(p)[1])):
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5),
                 load(str(tmp_path / "killed" / name)), load(str(tmp_path / "full" / name)))


def test_attention_and_logits_chunk_reach_a_loaded_policy_and_its_logprob_pass(tmp_path):
  """--config.model.attention / --config.model.logits_chunk with a checkpoint saved under other
  values: the loader applies them (loading.RUNTIME_FIELDS) and both compiled functions of the
  run (the policy update and the log-prob pass) change with them; the chunked log-prob pass
  never holds the [rows, k * n, vocab] logits."""
  import flax.linen as nn
  from dsmath_jax.model import llama, loading
  from dsmath_jax.tokenizer import ByteTokenizer
  config = _config(tmp_path)
  saved = dataclasses.replace(llama.LlamaConfig.from_config(config.model), attention="xla", logits_chunk=0)
  config.checkpoint = loading.save_pretrained(str(tmp_path / "policy"), saved,
                                              nn.unbox(llama.init_params(saved, jax.random.key(0))), ByteTokenizer())
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  texts = {}
  for attention, chunk in (("xla", 0), ("dot_product", 4)):
    config.model.attention, config.model.logits_chunk = attention, chunk
    machinery, state, _, _ = grpo.setup(GRPOConfig.from_config(config), mesh, runtime.rules_of(config))
    model_config = machinery.model_config
    assert (model_config.attention, model_config.logits_chunk) == (attention, chunk)
    spec = {name: jax.ShapeDtypeStruct(shape, np.float32 if name in ("loss_mask", "old_logprobs", "advantages",
                                                                     "ref_logprobs", "is_weights") else np.int32)
            for name, shape in machinery.batch_spec.items()}
    rows, k, n = machinery.batch_spec["target_slots"]
    packed = {name: spec[name] for name in packing.ROW_FIELDS + ("target_slots", "target_tokens")}
    logprob_text = machinery.logprobs.lower(state.params, packed).as_text()
    texts[chunk] = (machinery.train_step.lower(state, spec).as_text(), logprob_text)
    full_logits = f"tensor<{rows}x{k * n}x{model_config.vocab_size}xf32>"
    assert (full_logits in logprob_text) == (chunk == 0), full_logits
  assert texts[0][0] != texts[4][0] and texts[0][1] != texts[4][1]


def test_grpo_raises_a_dense_reward_the_random_policy_rarely_earns(tmp_path, monkeypatch):
  """The whole loop learns: with reward = share of letters in the output (a random tiny policy
  over bytes earns ~0.23), 40 GRPO steps at lr 3e-3 take the mean reward of the last 5 steps
  well above the first 5. Measured: 0.23 -> 0.61; with lr 1e-9 (no learning, same batches and
  keys) 0.23 -> 0.27, so the margin 0.2 is learning, not the question mix. A sign error in the
  advantages or the ratio drives the reward down instead."""
  monkeypatch.setattr(rewards_lib, "rule_reward", _letter_reward)
  path = tmp_path / "questions.jsonl"
  path.write_text("".join(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(16)))
  config = grpo_config.get_config("tiny")
  config.data.questions = f"jsonl:{path}"
  config.rl.update(max_prompt_len=96, max_new_tokens=8)
  config.optim.update(lr=3e-3, steps=40)
  run = GRPOConfig.from_config(config)
  machinery, state, ref_params, _ = grpo.setup(run, *runtime.setup(config))
  batches = questions_lib.question_batches(questions_lib.load_questions(run.data.questions),
                                           run.data.questions_per_step, 0)
  rewards = []
  for step in range(40):
    state, metrics, _ = grpo_step.rl_step(run.rl, machinery, state, ref_params, next(batches), jax.random.key(step))
    rewards.append(metrics["reward_mean"])
  assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.2, rewards
