"""Reward models (§4.1.2-4.1.3): scalar head, BCE losses, Math-Shepherd labels, PRM800K reader."""
import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from dsmath_jax.model.llama import LlamaConfig, Transformer, init_params
from dsmath_jax.rl import reward_model as rm


def _config():
  return LlamaConfig.from_config(common.model("tiny"))


def test_head_reads_the_decoder_hidden_state_with_base_params_nested():
  config = _config()
  base = nn.unbox(init_params(config, jax.random.key(0)))
  params = nn.unbox(rm.init_params(config, jax.random.key(1), base_params=base))
  assert set(params) == {"base", "score_head"}
  assert "lm_head" in base and "lm_head" not in params["base"]
  jax.tree.map(np.testing.assert_array_equal, params["base"],
               {k: v for k, v in base.items() if k != "lm_head"})    # the checkpoint, unchanged
  params["score_head"] = {"kernel": jnp.asarray(np.random.default_rng(0).normal(size=(64, 1)), jnp.float32),
                          "bias": jnp.array([0.3], jnp.float32)}
  tokens = jnp.asarray(np.random.default_rng(1).integers(0, 320, (2, 7)))
  scores = rm.RewardModel(config).apply({"params": params}, tokens)
  hidden = Transformer(config).apply({"params": base}, tokens, return_hidden=True)
  expected = np.asarray(hidden) @ np.asarray(params["score_head"]["kernel"])[:, 0] + 0.3
  assert scores.shape == (2, 7)
  np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_bce_loss_matches_numpy_for_outcome_and_process_labels():
  prompt = [5, 6, 7]
  outcome = rm.outcome_example(prompt, [10, 11, 12, 13], correct=True)
  process = rm.process_example(prompt, [[20, 21], [22], [23, 24]], [1.0, 0.0, 1.0])
  assert outcome.label_positions == [3] and process.label_positions == [1, 2, 4]
  batch = rm.make_batch([outcome, process], seq_len=9, pad_id=0)
  np.testing.assert_array_equal(batch["label_mask"][0], [0, 0, 0, 0, 0, 0, 1, 0, 0])
  np.testing.assert_array_equal(batch["label_mask"][1], [0, 0, 0, 0, 1, 1, 0, 1, 0])
  np.testing.assert_array_equal(batch["labels"][1, [4, 5, 7]], [1.0, 0.0, 1.0])
  scores = np.random.default_rng(0).normal(size=(2, 9)).astype(np.float32)
  loss_sum, weight, aux = rm.rm_loss_terms(jnp.asarray(scores), batch)
  labelled = [(0, 6, 1.0), (1, 4, 1.0), (1, 5, 0.0), (1, 7, 1.0)]
  sigmoid = lambda s: 1 / (1 + np.exp(-s))
  expected = [-np.log(sigmoid(scores[r, t])) if y else -np.log(1 - sigmoid(scores[r, t])) for r, t, y in labelled]
  assert float(weight) == 4
  np.testing.assert_allclose(float(loss_sum), np.sum(expected), rtol=1e-5)
  hits = sum((scores[r, t] > 0) == (y > 0.5) for r, t, y in labelled)
  assert float(aux["accuracy"]) == hits
  # Cut rows lose the labels past seq_len and nothing else.
  short = rm.make_batch([process], seq_len=6)
  assert short["label_mask"].sum() == 2


def test_scores_at_gives_sigmoid_rewards():
  scores = np.array([[0.0, 2.0, -1.0]])
  np.testing.assert_allclose(rm.scores_at(scores, [[1, 2]]), [[1 / (1 + np.exp(-2)), 1 / (1 + np.e)]])


def test_math_shepherd_labels_any_and_fraction():
  solutions = [("x=2\ny=3\nanswer 5", "5"), ("x=2\nanswer 9", "5")]
  asked = []

  def complete(requests, n):
    asked.extend(requests)
    # A step prefix containing "y=3" always finishes correctly; "x=2" alone sometimes does.
    return [["answer 5"] * n if "y=3" in prefix else ["answer 5"] + ["answer 4"] * (n - 1)
            for _, prefix in requests]

  grade = lambda text, gold: text.strip().endswith("answer " + gold)
  hard = rm.math_shepherd_labels(solutions, complete, grade, num_completions=4)
  assert asked == [(0, "x=2\n"), (0, "x=2\ny=3\n"), (1, "x=2\n")]
  assert hard == [[1.0, 1.0, 1.0], [1.0, 0.0]]          # last step: the solution's own grade
  soft = rm.math_shepherd_labels(solutions, complete, grade, num_completions=4, soft=True)
  assert soft == [[0.25, 1.0, 1.0], [0.25, 0.0]]


def test_prm800k_reader_on_the_real_records(shared_data):
  path = shared_data / "prm800k" / "phase2_example_records.jsonl"
  records = list(rm.read_prm800k(str(path)))
  assert len(records) == 9
  first = records[0]
  assert first["answer"] == "28800"
  raw = json.loads(path.read_text().splitlines()[0])
  chosen = [s["completions"][s["chosen_completion"]] for s in raw["label"]["steps"]
            if s["chosen_completion"] is not None]
  assert first["steps"][:len(chosen)] == [c["text"] for c in chosen]
  ratings = {1: 1.0, 0: 1.0, -1: 0.0}
  assert first["labels"][:len(chosen)] == [ratings[c["rating"]] for c in chosen]
  assert first["labels"][-1] == 0.0                        # "found_error": the path ends at the error
  neutral_zero = list(rm.read_prm800k(str(path), neutral_label=0.0))
  assert sum(map(sum, (r["labels"] for r in neutral_zero))) < sum(map(sum, (r["labels"] for r in records)))
  phase1 = list(rm.read_prm800k(str(shared_data / "prm800k" / "phase1_example_records.jsonl")))
  assert len(phase1) == 3 and phase1[0]["steps"][1] == "We have $3p+e=1.24$ and $5p+e=1.82$."


def test_prm800k_reader_errors_name_file_line_field(tmp_path):
  bad = tmp_path / "bad.jsonl"
  bad.write_text(json.dumps({"question": {"problem": "p"}, "label": {"steps": []}}) + "\n" +
                 json.dumps({"question": {"problem": "p"},
                             "label": {"steps": [{"completions": [], "chosen_completion": 3}]}}) + "\n")
  with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'label.steps\[0\].chosen_completion'"):
    list(rm.read_prm800k(str(bad)))
  bad.write_text("{not json\n")
  with pytest.raises(ValueError, match="bad.jsonl:1: not JSON"):
    list(rm.read_prm800k(str(bad)))


def test_rm_task_reads_prm800k_into_step_labels(shared_data):
  from dsmath_jax.rl import rm_task
  from dsmath_jax.tokenizer import ByteTokenizer
  tokenizer = ByteTokenizer()
  path = shared_data / "prm800k" / "phase2_example_records.jsonl"
  examples = rm_task.file_examples(f"prm800k:{path}", "process", tokenizer)
  records = list(rm.read_prm800k(str(path)))
  assert len(examples) == 9
  for example, record in zip(examples, records):
    assert example.labels == record["labels"]
    text = tokenizer.decode(example.response_ids)
    # Each label sits on the newline that ends its step.
    assert [text[p] for p in example.label_positions] == ["\n"] * len(record["steps"])
    assert text == " " + "\n".join(record["steps"]) + "\n"
  with pytest.raises(ValueError, match="data.source"):
    rm_task.file_examples("csv:x", "process", tokenizer)


@pytest.mark.parametrize("name", ["grpo", "grpo_deepseekmath_rl", "grpo_process", "grpo_iterative",
                                  "reward_model", "grpo_arithmetic"])
def test_rl_configs_build_and_forks_change_only_what_differs(name):
  import importlib
  module = importlib.import_module(f"configs.{name}")
  full, tiny = module.get_config(None), module.get_config("tiny")
  assert tiny.model.hidden_size <= full.model.hidden_size
  if name == "grpo":
    assert (full.optim.lr, full.rl.kl_coef, full.rl.group_size, full.rl.max_new_tokens, full.rl.num_updates,
            full.data.questions_per_step * full.rl.group_size, full.rl.reward) == (
                1e-6, 0.04, 64, 1024, 1, 1024, "rule")
  if name == "reward_model":
    assert full.optim.lr == 2e-5
  if name == "grpo_process":
    assert full.rl.reward == "process_rm" and full.rl.kl_coef == 0.04
  if name == "grpo_iterative":
    assert full.rm.replay_fraction == 0.1 and full.rl.iterations >= 2


def test_reward_model_task_tiny_trains_the_head_and_saves_model_and_config(tmp_path):
  """configs/reward_model.py:tiny end to end: labels from the random policy's own samples, BCE
  steps move the zero-initialized head, WORKDIR/model loads back as a reward model with the
  trained parameters, and WORKDIR/config.json holds the resolved config."""
  from configs import reward_model as reward_model_config
  from dsmath_jax.rl import rm_task
  questions = tmp_path / "questions.jsonl"
  questions.write_text("".join(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(4)))
  config = reward_model_config.get_config("tiny")
  config.data.update(questions=f"jsonl:{questions}", global_batch=8)    # 8: divides over 1 or 8 devices
  config.label.samples_per_question = 4
  workdir = tmp_path / "rm"
  state, metrics = rm_task.run(config, str(workdir))
  assert np.isfinite(metrics["loss"])
  head = jax.device_get(state.params["score_head"])
  assert np.abs(head["kernel"]).sum() + np.abs(head["bias"]).sum() > 0      # init is zero: training moved it
  rm_config, params, _ = rm.load_reward_model(str(workdir / "model"))
  assert rm_config.hidden_size == config.model.hidden_size
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(params["score_head"]), head)
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["task"] == "reward_model" and saved["data"]["kind"] == "outcome"


def test_reward_model_task_killed_mid_run_resumes_with_identical_metrics(tmp_path, monkeypatch):
  """A reward_model run that dies after its step-2 checkpoint (an exception injected into the 3rd
  batch) and is re-run logs exactly the losses of an uninterrupted run, step for step, and trains
  on the labels of the first attempt (WORKDIR/examples.jsonl), not on new samples."""
  from configs import reward_model as reward_model_config
  from dsmath_jax.rl import rm_task
  from dsmath_jax.train.metrics import read_metrics
  questions = tmp_path / "questions.jsonl"
  questions.write_text("".join(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(4)))
  config = reward_model_config.get_config("tiny")
  config.data.update(questions=f"jsonl:{questions}", global_batch=8)
  config.label.samples_per_question = 4
  config.optim.steps = 4
  config.train.update(checkpoint_every=2)

  def losses(workdir):
    return {r["step"]: r["rm_loss"] for r in read_metrics(str(workdir / "metrics.jsonl")) if "rm_loss" in r}

  rm_task.run(config, str(tmp_path / "full"))
  make_batch, calls = rm.make_batch, []

  def dies_on_the_third_batch(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
      raise KeyboardInterrupt("killed")
    return make_batch(*args, **kwargs)

  monkeypatch.setattr(rm, "make_batch", dies_on_the_third_batch)
  with pytest.raises(KeyboardInterrupt):
    rm_task.run(config, str(tmp_path / "killed"))
  assert sorted(losses(tmp_path / "killed")) == [1, 2] and not (tmp_path / "killed" / "model").exists()
  monkeypatch.setattr(rm, "make_batch", make_batch)
  labelled = []
  monkeypatch.setattr(rm_task, "policy_examples", lambda *a, **k: labelled.append(1))
  state, metrics = rm_task.run(config, str(tmp_path / "killed"))
  assert not labelled                                     # the saved labels, not new samples
  expected, got = losses(tmp_path / "full"), losses(tmp_path / "killed")
  assert sorted(got) == sorted(expected) == [1, 2, 3, 4]
  np.testing.assert_allclose([got[s] for s in range(1, 5)], [expected[s] for s in range(1, 5)], rtol=1e-6)
  _, params, _ = rm.load_reward_model(str(tmp_path / "killed" / "model"))
  _, full_params, _ = rm.load_reward_model(str(tmp_path / "full" / "model"))
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-6), params, full_params)
