"""Held-out accuracy of a policy: greedy, and maj@k / pass@k for k = 1, 2, 4, ... up to K
(paper §5.2.2, Figure 7), graded against the true answers by the grader."""
import dataclasses

import jax
import numpy as np

from dsmath_jax.eval import metrics as eval_metrics
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading.grader import grade_output
from dsmath_jax.rl import questions as questions_lib

EVAL_BATCH_ROWS = 1024       # sampler rows per call: bounds the KV cache of k = 64 evaluations


def _generate(machinery, params, questions, sampling, rng):
  from dsmath_jax.sample import sampler
  prompts = [questions_lib.encode_prompt(machinery.tokenizer, q["question"], machinery.template) for q in questions]
  rows = len(prompts) * sampling.num_samples
  return sampler.generate(params, machinery.model_config, machinery.tokenizer, prompts, sampling, rng,
                          mesh=machinery.mesh, rules=machinery.rules, batch_size=min(rows, EVAL_BATCH_ROWS))


def greedy_accuracy(machinery, params, questions) -> float:
  """Percent of `questions` whose greedy solution the grader accepts (GRPO's response budget)."""
  completions = _generate(machinery, params, questions,
                          dataclasses.replace(machinery.sampling, greedy=True, num_samples=1), jax.random.key(0))
  return 100 * float(np.mean([grade_output(c.text, questions[c.prompt_index]["answer"]) for c in completions]))


def evaluate(machinery, params, questions, rng, k: int) -> dict:
  """greedy_accuracy, maj@j and pass@j (j = 1, 2, 4, ..., k; percent) and boxed_fraction; the
  samples at GRPO's temperature."""
  result = {"greedy_accuracy": greedy_accuracy(machinery, params, questions)}
  sampled = _generate(machinery, params, questions, dataclasses.replace(machinery.sampling, num_samples=k), rng)
  ks = eval_metrics.ks_up_to(k)
  maj, passk, boxed = {j: [] for j in ks}, {j: [] for j in ks}, []
  for i, question in enumerate(questions):
    texts = [c.text for c in sampled[i * k:(i + 1) * k]]                   # prompt-major
    correct = [grade_output(t, question["answer"]) for t in texts]
    answers = [answer_lib.extract_answer(t) for t in texts]
    for j in ks:
      maj[j].append(eval_metrics.maj_at_k(answers, correct, j))
      passk[j].append(eval_metrics.pass_at_k(k, sum(correct), j))
    boxed.extend("\\boxed{" in t for t in texts)
  for j in ks:
    result[f"maj@{j}"] = 100 * float(np.mean(maj[j]))
    result[f"pass@{j}"] = 100 * float(np.mean(passk[j]))
  result["boxed_fraction"] = 100 * float(np.mean(boxed))
  return result
