"""DAPO's dynamic sampling with resampling (rl.dynamic_sampling="resample", issue 18): the group
selection and the counts against hand-computed expectations, on handcrafted rewards and through the
real step of the tiny model; the extra rounds' questions a function of (seed, step, round) alone,
also after a resume; configs/grpo.py:tiny end to end with the switch."""
import json
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

import rl_steps
from configs import grpo as grpo_config
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.rl import dynamic_sampling, grpo, grpo_step, scoring
from dsmath_jax.rl import questions as questions_lib
from dsmath_jax.rl import rewards as rewards_lib
from dsmath_jax.rl.config import GRPOConfig, RLConfig
from dsmath_jax.sample.sampler import Completion

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_select_groups_takes_the_first_groups_with_signal_then_fills_with_the_earliest_without():
  signal = [False, True, False, True, True, False]
  np.testing.assert_array_equal(dynamic_sampling.select_groups(signal, 2), [1, 3])
  np.testing.assert_array_equal(dynamic_sampling.select_groups(signal, 3), [1, 3, 4])
  np.testing.assert_array_equal(dynamic_sampling.select_groups(signal, 4), [0, 1, 3, 4])      # filler: group 0
  np.testing.assert_array_equal(dynamic_sampling.select_groups(signal, 5), [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(dynamic_sampling.select_groups([False] * 3, 2), [0, 1])


# Three groups of two outputs per round; an output's text is its reward, its token ids its (round, group,
# output). Signal: round 0 [no, yes, no], round 1 [no, yes, no], round 2 [yes, no, yes].
ROUND_REWARDS = ([[1, 1], [0, 1], [0, 0]], [[0, 0], [1, 0], [1, 1]], [[1, 0], [0, 0], [0, 1]])


def _fake_round(rl, calls):
  def sample_round(round_index):
    calls.append(round_index)
    completions = [Completion(group, [1], [round_index, group, output], [0.0], [0], "eos", str(reward))
                   for group, rewards in enumerate(ROUND_REWARDS[round_index]) for output, reward in enumerate(rewards)]
    scored = scoring.score_outputs(rl, None, completions, [""] * len(completions))
    return completions, scored
  return sample_round


@pytest.mark.parametrize("max_rounds,rounds,kept,with_signal", [
    (4, 3, [(0, 1), (1, 1), (2, 0)], 4),           # three groups with signal after round 2
    (2, 3, [(0, 1), (1, 1), (2, 0)], 4),
    (1, 2, [(0, 0), (0, 1), (1, 1)], 2),           # rounds spent: the earliest zero-signal group fills
])
def test_resample_keeps_the_first_groups_with_signal_and_counts(monkeypatch, max_rounds, rounds, kept, with_signal):
  monkeypatch.setattr(rewards_lib, "rule_reward", lambda output, gold: float(output))
  rl = RLConfig(group_size=2, dynamic_sampling="resample", resample_rounds=max_rounds)
  calls = []
  completions, scored, counts = dynamic_sampling.resample(_fake_round(rl, calls), 3, max_rounds, 2)
  assert calls == list(range(rounds))
  assert counts == {"groups_sampled": 3 * rounds, "groups_with_signal": with_signal, "sampling_rounds": rounds}
  assert [tuple(c.token_ids[:2]) for c in completions] == [g for g in kept for _ in range(2)]
  assert [c.token_ids[2] for c in completions] == [0, 1] * 3
  assert [c.prompt_index for c in completions] == [0, 0, 1, 1, 2, 2]
  rewards = np.array([ROUND_REWARDS[r][g][o] for r, g in kept for o in range(2)], np.float32)
  np.testing.assert_array_equal(scored.rewards.values, rewards)
  signal = np.array([len(set(ROUND_REWARDS[r][g])) > 1 for r, g in kept])
  np.testing.assert_array_equal(scored.zero_groups, ~signal)
  np.testing.assert_array_equal(scored.trained, np.repeat(signal, 2))         # the filler carries no loss
  expected = np.where(np.repeat(signal, 2), np.where(rewards > 0, 1.0, -1.0), 0.0)    # (r - 0.5) / 0.5
  np.testing.assert_allclose([a[0] for a in scored.token_advantages], expected, atol=1e-5)


def test_a_round_zero_with_enough_signal_samples_nothing_more(monkeypatch):
  monkeypatch.setattr(rewards_lib, "rule_reward", lambda output, gold: float(output))
  rl = RLConfig(group_size=2, dynamic_sampling="resample")
  calls = []
  completions, scored, counts = dynamic_sampling.resample(_fake_round(rl, calls), 1, 4, 2)
  # round 0's only group with signal is group 1
  assert calls == [0] and counts == {"groups_sampled": 3, "groups_with_signal": 1, "sampling_rounds": 1}
  assert [tuple(c.token_ids) for c in completions] == [(0, 1, 0), (0, 1, 1)]


def test_fresh_questions_depend_on_seed_step_and_round_only():
  questions = [{"question": str(i)} for i in range(50)]
  draw = lambda seed, step, round_index: [q["question"] for q in
                                          questions_lib.fresh_questions(questions, 5, seed, step, round_index)]
  assert draw(0, 7, 1) == draw(0, 7, 1)
  assert len(set(draw(0, 7, 1))) == 5 and set(draw(0, 7, 1)) <= {q["question"] for q in questions}
  assert len({tuple(draw(*key)) for key in ((0, 7, 1), (0, 7, 2), (0, 8, 1), (1, 7, 1))}) == 4
  assert len(questions_lib.fresh_questions(questions[:3], 5, 0, 0, 1)) == 3     # fewer than a step's worth


def test_resample_config_is_typed_at_the_door():
  config = grpo_config.get_config("tiny")
  assert RLConfig.from_config(config.rl).resample_rounds == 4 and config.rl.dynamic_sampling == "off"
  config.rl.update(dynamic_sampling="resample", resample_rounds=0)
  with pytest.raises(ValueError, match="config.rl.resample_rounds=0"):
    GRPOConfig.from_config(config)
  config.rl.update(dynamic_sampling="off", resample_rounds=-1)
  with pytest.raises(ValueError, match="config.rl.resample_rounds=-1"):
    GRPOConfig.from_config(config)
  config.rl.update(dynamic_sampling="resampled", resample_rounds=1)
  with pytest.raises(ValueError, match="config.rl.dynamic_sampling='resampled'"):
    GRPOConfig.from_config(config)
  valid = np.array([True, True, True, False])
  np.testing.assert_array_equal(scoring.kept(RLConfig(group_size=2, dynamic_sampling="resample"), valid,
                                             np.array([True, False])), [False, False, True, False])


SIGNAL_GOLDS = {"8", "10", "12", "14"}         # questions 4..7 of rl_steps.write_questions(count=8)


def _has_signal(question: str) -> bool:
  return str(2 * int(question.split("+")[0])) in SIGNAL_GOLDS


def test_resampling_step_trains_on_groups_with_signal_with_the_shape_of_a_plain_step(tmp_path, monkeypatch):
  """Questions 0..3 earn a constant reward (no signal), 4..7 alternately 1 and 0 within their group.
  Each step's own two questions (0-1, then 2-3) have none, so it resamples (one extra round at most);
  what it keeps and counts is derived here from the questions each round was seen to sample."""
  calls = []

  def reward(output, gold):
    if gold not in SIGNAL_GOLDS:
      return 0.0
    calls.append(1)
    return float(len(calls) % 2)

  monkeypatch.setattr(rewards_lib, "rule_reward", reward)
  drawn, sample, real_step = [], grpo_step.sample, grpo_step.rl_step

  def recording_step(*args, **kwargs):
    drawn.append([])                               # the rounds of this step
    return real_step(*args, **kwargs)

  def recording_sample(machinery, params, questions, rng):
    drawn[-1].append([q["question"] for q in questions])
    return sample(machinery, params, questions, rng)

  monkeypatch.setattr(grpo_step, "rl_step", recording_step)
  monkeypatch.setattr(grpo_step, "sample", recording_sample)
  config = grpo_config.get_config("tiny")
  config.data.questions = rl_steps.write_questions(tmp_path, count=8)
  config.rl.update(max_prompt_len=96, max_new_tokens=8, dynamic_sampling="resample", resample_rounds=1)
  history, _ = rl_steps.recorded_steps(config, steps=2)
  per_step, group, k = 2, config.rl.group_size, config.rl.outputs_per_row
  byte = tokenizers.ByteTokenizer()
  filled = []
  for step, ((metrics, completions, [batch]), rounds) in enumerate(zip(history, drawn)):
    assert rounds[0] == [f"{i}+{i}?" for i in (2 * step, 2 * step + 1)]
    assert len(rounds) == 2 and all(len(r) == per_step for r in rounds)      # round 0 had no signal
    groups = [q for r in rounds for q in r]                                    # in draw order
    with_signal = [i for i, q in enumerate(groups) if _has_signal(q)][:per_step]
    filler = [i for i, q in enumerate(groups) if not _has_signal(q)][:per_step - len(with_signal)]
    filled.append(bool(filler))
    kept = [groups[i] for i in sorted(with_signal + filler)]
    assert metrics["sampling_rounds"] == 2 and metrics["groups_sampled"] == 4
    assert metrics["groups_with_signal"] == sum(map(_has_signal, groups))
    assert len(completions) == per_step * group
    for n, c in enumerate(completions):
      assert kept[n // group] in byte.decode(c.prompt_ids) and c.prompt_index == n // group
    assert batch["loss_mask"].shape[0] * k == per_step * group                # a plain step's rows
    trained = [bool(batch["loss_mask"][n // k, n % k].any()) for n in range(len(completions))]
    assert trained == [_has_signal(kept[n // group]) and len(c.token_ids) > 0 for n, c in enumerate(completions)]
    assert metrics["trained_outputs"] == np.mean([_has_signal(q) for q in kept]) and np.isfinite(metrics["loss"])
  assert filled == [True, False]            # step 0's rounds drew one group with signal, step 1's two


class _Checkpointer:
  """Stands in for train/checkpointing.py: `done` steps restored, nothing saved."""
  def __init__(self, done):
    self.done = done

  def restore(self, state):
    return state, self.done

  def save(self, done, state, force=False):
    return True

  def should_stop(self, done):
    return False


def test_train_draws_the_same_extra_questions_after_a_resume(tmp_path, monkeypatch):
  """grpo.train hands rl_step the extra rounds' questions of (seed, step, round): a run resumed after
  two steps sees at step 3 what the uninterrupted run saw."""
  config = grpo_config.get_config("tiny")
  config.data.questions = rl_steps.write_questions(tmp_path, count=8)
  config.rl.update(max_prompt_len=96, dynamic_sampling="resample")
  config.optim.steps = 3
  run = GRPOConfig.from_config(config)
  seen = []

  def fake_step(rl, machinery, state, ref_params, questions, rng, rm_params=None, fresh_questions=None):
    seen.append([[q["question"] for q in batch] for batch in (questions, fresh_questions(1), fresh_questions(2))])
    return state, {"reward_mean": 0.0}, []

  monkeypatch.setattr(grpo_step, "rl_step", fake_step)
  machinery = types.SimpleNamespace(tokenizer=tokenizers.ByteTokenizer())
  grpo.train(run, str(tmp_path / "whole"), machinery, None, None)
  whole, seen[:] = list(seen), []
  grpo.train(run, str(tmp_path / "resumed"), machinery, None, None, checkpointer=_Checkpointer(2))
  assert len(whole) == 3 and seen == whole[2:]
  assert whole[0][1] != whole[1][1] and whole[0][1] != whole[0][2]      # fresh per step and per round


def test_grpo_tiny_runs_end_to_end_with_resampling(tmp_path):
  """The random tiny policy never answers right: no group has signal, so every step spends its one
  extra round and trains on round 0's groups, which carry no loss."""
  result = subprocess.run([sys.executable, "-m", "dsmath_jax.main", "--config=configs/grpo.py:tiny",
                           f"--workdir={tmp_path}", "--config.rl.dynamic_sampling=resample",
                           "--config.rl.resample_rounds=1"], cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  metrics = [m for m in metrics if "loss" in m]
  assert [m["step"] for m in metrics] == [1, 2]
  for m in metrics:
    assert (m["sampling_rounds"], m["groups_sampled"], m["groups_with_signal"]) == (2, 4, 0)
    assert m["trained_outputs"] == 0 and m["zero_advantage_groups"] == 1 and np.isfinite(m["loss"])
