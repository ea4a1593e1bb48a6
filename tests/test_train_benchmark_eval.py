"""Benchmark accuracy during training (config.benchmark_eval): SFT and GRPO log bench/gsm8k/accuracy at
the steps it names, equal to a regrade of the samples they log and to what was put in front of the
grader; it is off by default and a misspelt key fails at the door."""
import json
import os

import numpy as np
import pytest

from configs import grpo as grpo_config
from configs import sft as sft_config
from dsmath_jax import main
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading.grader import Grader
from dsmath_jax.rl.config import GRPOConfig
from dsmath_jax.train import trainer

KEY = "bench/gsm8k/accuracy"


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


def _bench_steps(workdir):
  return [r["step"] for r in _records(workdir) if KEY in r]


def _samples(workdir, step):
  with open(os.path.join(workdir, "bench", "gsm8k", f"step_{step}.jsonl")) as f:
    return [json.loads(line) for line in f]


def _regraded_accuracy(rows):
  """The accuracy of logged samples graded again from their raw text (extraction included)."""
  with Grader(workers=1) as grader:
    verdicts = grader.grade_many([(answer_lib.extract_answer(r["prediction"]), r["gold"], "math") for r in rows])
  return 100.0 * np.mean([v.correct for v in verdicts])


def test_sft_tiny_logs_benchmark_accuracy_every_2_steps_from_the_trained_params(tmp_path):
  """Rows at 0 (before training), 2, 4, 6 and 8 (the last step) beside the loss; each accuracy is the
  regrade of its logged samples, and the last step's predictions are an independent greedy decode
  of the saved model."""
  import jax

  from dsmath_jax.benchmarks import catalog, load, prompts
  from dsmath_jax.model import loading
  from dsmath_jax.sample import sampler
  config = sft_config.get_config("tiny")
  config.benchmark_eval.every_steps = 2
  config.eval.every_steps = 0
  workdir = str(tmp_path / "sft")
  main.tasks()["sft"](config, workdir)
  records = {r["step"]: r for r in _records(workdir)}
  assert _bench_steps(workdir) == [0, 2, 4, 6, 8]
  assert "loss" in records[2] and KEY in records[2]           # one record: training and benchmark metrics
  for step in (0, 2, 4, 6, 8):
    rows = _samples(workdir, step)
    assert len(rows) == 4 == records[step]["bench/gsm8k/questions"]
    assert records[step][KEY] == pytest.approx(_regraded_accuracy(rows))

  pretrained = loading.load_pretrained(os.path.join(workdir, "model"))
  questions = load.questions("gsm8k", config.benchmark_eval.paths.gsm8k, limit=4)
  benchmark = catalog.get("gsm8k")
  ids = [[pretrained.tokenizer.bos_id] + pretrained.tokenizer.encode(prompts.render(benchmark, q, template="cot"))
         for q in questions]
  completions = sampler.generate(
      pretrained.params, pretrained.config, pretrained.tokenizer, ids,
      sampler.SamplingParams(max_new_tokens=16, greedy=True, num_samples=1,
                             stop_strings=prompts.stop_strings(benchmark, False)),
      jax.random.key(0))
  assert [prompts.truncate(c.text, prompts.stop_strings(benchmark, False)) for c in completions] == \
      [r["prediction"] for r in _samples(workdir, 8)]
  assert os.path.exists(os.path.join(workdir, "loss.png"))


def test_grpo_tiny_logs_benchmark_accuracy_equal_to_the_graded_outputs(tmp_path, monkeypatch):
  """GRPO with every_steps=2 over 3 steps: rows at 0, 2 and 3 (the last). The evaluation's greedy
  outputs are replaced by the gold answer for the first k questions at its k-th call, so the logged
  accuracies must be 0, 25 and 50%, and equal the regrade of the logged samples."""
  from dsmath_jax.sample import sampler
  generate, calls = sampler.generate, []

  def answer_some(params, model_config, tokenizer, prompt_ids, sampling, *args, **kwargs):
    completions = generate(params, model_config, tokenizer, prompt_ids, sampling, *args, **kwargs)
    if not sampling.greedy:                      # GRPO's own samples: untouched
      return completions
    golds = ["18", "3", "70000", "540"]          # math_sample/gsm8k_test.jsonl, first 4 answers
    right = len(calls)
    calls.append(right)
    return [c._replace(text=f"The answer is \\boxed{{{golds[c.prompt_index]}}}." if c.prompt_index < right
                       else "I do not know.") for c in completions]

  monkeypatch.setattr(sampler, "generate", answer_some)
  config = grpo_config.get_config("tiny")
  config.optim.steps = 3
  config.benchmark_eval.every_steps = 2
  workdir = str(tmp_path / "grpo")
  main.tasks()["grpo"](config, workdir)
  records = {r["step"]: r for r in _records(workdir)}
  assert _bench_steps(workdir) == [0, 2, 3]
  assert [records[s][KEY] for s in (0, 2, 3)] == [0.0, 25.0, 50.0]
  assert "reward_mean" in records[2] and "reward_mean" in records[3]
  for step in (0, 2, 3):
    assert records[step][KEY] == pytest.approx(_regraded_accuracy(_samples(workdir, step)))
  assert os.path.exists(os.path.join(workdir, "curves.png"))


def test_benchmark_eval_is_off_by_default_and_its_keys_are_checked_at_the_door(tmp_path):
  for get_config in (sft_config.get_config, grpo_config.get_config):
    for arg in ("tiny", None):
      assert get_config(arg).benchmark_eval.every_steps == 0
  assert trainer.typed_config(sft_config.get_config("tiny")).benchmark_eval.every_steps == 0
  assert GRPOConfig.from_config(grpo_config.get_config("tiny")).benchmark_eval.every_steps == 0

  misspelt = sft_config.get_config("tiny")
  misspelt.benchmark_eval.every_step = 2
  with pytest.raises(ValueError, match=r"config\.benchmark_eval\.every_step \(did you mean"):
    trainer.typed_config(misspelt)
  misspelt = grpo_config.get_config("tiny")
  misspelt.benchmark_eval.max_question = 2
  with pytest.raises(ValueError, match=r"config\.benchmark_eval\.max_question"):
    GRPOConfig.from_config(misspelt)
  bad = grpo_config.get_config("tiny")
  bad.benchmark_eval.update(every_steps=2, benchmarks=("gsm8kk",))
  with pytest.raises(ValueError, match=r"config\.benchmark_eval\.benchmarks: unknown benchmark\(s\) \['gsm8kk'\]"):
    GRPOConfig.from_config(bad)
  negative = sft_config.get_config("tiny")
  negative.benchmark_eval.every_steps = -1
  with pytest.raises(ValueError, match=r"config\.benchmark_eval\.every_steps"):
    trainer.typed_config(negative)


def test_benchmark_eval_on_without_an_evaluator_fails_before_any_work(tmp_path):
  """The training stage cannot import the evaluation stage: a run started below the entry point
  with the evaluation on must be handed the evaluator, and says so before building anything."""
  from dsmath_jax.rl import grpo
  from dsmath_jax.train import sft
  config = sft_config.get_config("tiny")
  config.benchmark_eval.every_steps = 2
  with pytest.raises(ValueError, match="benchmark_evaluator"):
    sft.run(config, str(tmp_path / "sft"))
  config = grpo_config.get_config("tiny")
  config.benchmark_eval.every_steps = 2
  with pytest.raises(ValueError, match="benchmark_evaluator"):
    grpo.run(config, str(tmp_path / "grpo"))
  assert not os.path.exists(tmp_path / "sft" / "config.json")
