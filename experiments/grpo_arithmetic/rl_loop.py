"""A fixed number of GRPO steps (grpo_step.rl_step) with held-out greedy accuracy every few steps.

The budget is counted in steps, never in wall-clock time, so a run's result does not depend on
the machine's load. A step's questions and sampling key depend only on (seed, global step):
a run continued from step s (a fork, iterative RL) sees the questions a straight run would.
"""
import time

import jax

import evaluate as evaluate_lib
from dsmath_jax.rl import grpo_step
from dsmath_jax.rl import questions as questions_lib


def run_steps(run, machinery, state, ref_params, questions, test, *, seed: int, first_step: int,
              last_step: int, eval_every: int, writer, rm_params=None):
  """GRPO steps first_step+1 .. last_step of `run` (rl/config.GRPOConfig); returns (state, curve, seconds).

  curve: [(step, greedy accuracy %)] at every multiple of `eval_every` and at `last_step`."""
  batches = questions_lib.question_batches(questions, run.data.questions_per_step, seed)
  for _ in range(first_step):                              # the questions of the steps already done
    next(batches)
  rng = jax.random.key(seed)
  curve, start = [], time.time()
  for step in range(first_step + 1, last_step + 1):
    state, metrics, _ = grpo_step.rl_step(run.rl, machinery, state, ref_params, next(batches),
                                          jax.random.fold_in(rng, step - 1), rm_params)
    writer.write(step, metrics)
    if step % eval_every == 0 or step == last_step:
      accuracy = evaluate_lib.greedy_accuracy(machinery, state.params, test)
      writer.write(step, {"test_greedy_accuracy": accuracy})
      curve.append((step, accuracy))
  return state, curve, time.time() - start
