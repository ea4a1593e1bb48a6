"""Greedy accuracy of the pretrained SmolLM2-135M-Instruct on the training distribution, before any RL.

  python experiments/grpo_smollm2/base_rate.py [--new_tokens 160] [--problems 16]

GRPO learns only from groups in which some answers are right, so the base rate on the
*training* problems decides whether a CPU-sized run can move at all. Prints, for the
experiment's two-step training templates (task.py, factors <= 6, counts <= 12) and for the
one-step word problems of dsmath_jax/data/word_problems.py (start <= 20, change <= 9): greedy
accuracy (the grader against the true answer), the share cut off at the token limit, the mean
length, the decode seconds, and the first outputs. No test problem is read.
"""
import argparse
import importlib.util
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)


def _task():
  spec = importlib.util.spec_from_file_location("grpo_smollm2_task", os.path.join(os.path.dirname(__file__), "task.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--new_tokens", type=int, default=160)
  parser.add_argument("--problems", type=int, default=16)
  args = parser.parse_args()
  import jax
  import numpy as np
  from configs.grpo_smollm2 import smollm2_gguf
  from dsmath_jax.data import word_problems
  from dsmath_jax.grading.grader import grade_output
  from dsmath_jax.model import loading
  from dsmath_jax.rl import questions
  from dsmath_jax.sample import sampler
  pretrained = loading.load_pretrained(smollm2_gguf())
  tokenizer = pretrained.tokenizer
  two_step, _ = _task().generate(200, 1, 0, 6, 12)
  one_step, _ = word_problems.generate(200, 1, seed=0, family="one_step", max_start=20, max_addend=9)
  for name, records in (("two_step_train_templates", two_step[:args.problems]),
                        ("one_step_word_problems", one_step[:args.problems])):
    prompts = [questions.encode_prompt(tokenizer, r["question"], "chat") for r in records]
    start = time.time()
    completions = sampler.generate(pretrained.params, pretrained.config, tokenizer, prompts,
                                   sampler.SamplingParams(max_new_tokens=args.new_tokens, greedy=True),
                                   jax.random.key(0), batch_size=len(prompts))
    correct = [grade_output(c.text, records[c.prompt_index]["answer"]) for c in completions]
    print(name, f"accuracy {np.mean(correct):.4f} ({sum(correct)}/{len(correct)})",
          f"truncated {np.mean([c.finish_reason == 'length' for c in completions]):.4f}",
          f"mean_length {np.mean([len(c.token_ids) for c in completions]):.1f}",
          f"decode_seconds {time.time() - start:.0f}", flush=True)
    for completion in completions[:3]:
      print("  ", repr(completion.text[:300]))


if __name__ == "__main__":
  main()
