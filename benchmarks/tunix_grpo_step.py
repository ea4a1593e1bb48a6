"""google-tunix 0.1.7 GRPO on the shapes of benchmarks/grpo_step.py; run by it in /work/venvs/tunix.

Builds tunix's Llama3 with the llama_125m shapes (random weights, float32), one mesh for actor,
reference and rollout (vanilla engine), GRPOConfig(num_generations=4, num_iterations=1,
beta=0.04, epsilon=0.2), and times each phase by wrapping RLCluster.generate (sampling),
get_ref_per_token_logps (reference), the reward function (reward) and update_actor (update).
Prints one JSON line of mean seconds per step after the first (compile) step.
"""
import argparse
import collections
import json
import time

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import AxisType

from tunix.models.llama3 import model as llama3
from tunix.rl import rl_cluster as rl_cluster_lib
from tunix.rl.grpo import grpo_learner
from tunix.rl.rollout import base_rollout

QUESTIONS, GROUP, NEW_TOKENS = 2, 4, 64
# dsmath_jax.templates.COT (the paper's CoT prompt), so both sides prefill the same prompts.
COT = ("User: {question}\nPlease reason step by step, "
       "and put your final answer within \\boxed{{}}.\n\nAssistant:")


class ByteTokenizer:
  """UTF-8 bytes + 3, as dsmath_jax.tokenizer.ByteTokenizer (pad 0, bos 1, eos 2)."""

  def encode(self, text, **kwargs):
    return [1] + [b + 3 for b in str(text).encode("utf-8")]

  def decode(self, ids, **kwargs):
    return bytes(int(i) - 3 for i in ids if 3 <= int(i) < 259).decode("utf-8", "replace")

  def bos_id(self):
    return 1

  def eos_id(self):
    return 2

  def pad_id(self):
    return 0


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  mesh = jax.make_mesh((1, 1), ("fsdp", "tp"), axis_types=(AxisType.Auto,) * 2, devices=jax.devices()[:1])
  config = llama3.ModelConfig(num_layers=12, vocab_size=32000, embed_dim=768, hidden_dim=2048, num_heads=12,
                              head_dim=64, num_kv_heads=4, rope_theta=10000, norm_eps=1e-6)
  with jax.set_mesh(mesh):
    policy = llama3.Llama3(config, rngs=nnx.Rngs(0))
    reference = llama3.Llama3(config, rngs=nnx.Rngs(0))
  steps = args.repeats + 1
  rollout = base_rollout.RolloutConfig(max_tokens_to_generate=NEW_TOKENS, max_prompt_length=128,
                                       kv_cache_size=256, temperature=1.0, top_p=1.0, top_k=None,
                                       eos_tokens=[2])
  training = rl_cluster_lib.RLTrainingConfig(actor_optimizer=optax.adamw(1e-6), eval_every_n_steps=10_000,
                                             max_steps=steps)
  cluster = rl_cluster_lib.RLCluster(
      actor=policy, reference=reference, tokenizer=ByteTokenizer(),
      cluster_config=rl_cluster_lib.ClusterConfig(
          role_to_mesh={rl_cluster_lib.Role.ACTOR: mesh, rl_cluster_lib.Role.REFERENCE: mesh,
                        rl_cluster_lib.Role.ROLLOUT: mesh},
          rollout_engine="vanilla", offload_to_cpu=False, training_config=training, rollout_config=rollout))

  times = collections.defaultdict(list)
  marks = []

  def timed(name, fn):
    def wrapper(*a, **k):
      if name == "sampling":
        marks.append(time.perf_counter())
      start = time.perf_counter()
      out = fn(*a, **k)
      jax.block_until_ready(jax.tree.leaves(out) if out is not None else None)
      times[name].append(time.perf_counter() - start)
      return out
    return wrapper

  cluster.generate = timed("sampling", cluster.generate)
  cluster.get_ref_per_token_logps = timed("reference", cluster.get_ref_per_token_logps)
  cluster.update_actor = timed("update", cluster.update_actor)

  def reward(prompts, completions, **kwargs):
    start = time.perf_counter()
    values = [float(len(c) % 2) for c in completions]
    times["reward"].append(time.perf_counter() - start)
    return values

  learner = grpo_learner.GRPOLearner(
      rl_cluster=cluster, reward_fns=[reward],
      algo_config=grpo_learner.GRPOConfig(num_generations=GROUP, num_iterations=1, beta=0.04, epsilon=0.2))
  # Arrays, not lists: tunix repeats every leaf G times with jax.tree.map.
  data = [{"prompts": np.array([COT.format(question=f"What is {i} + {i + 3}?") for i in range(QUESTIONS)]),
           "answer": np.array([str(2 * i + 3) for i in range(QUESTIONS)])} for _ in range(steps)]
  start = time.perf_counter()
  learner.train(data)
  marks.append(time.perf_counter())
  totals = np.diff(marks)[1:]                     # step k = generate start k -> generate start k+1 (or end)
  result = {name: float(np.mean(values[1:])) for name, values in times.items() if len(values) > 1}
  result["total"] = float(np.mean(totals)) if len(totals) else float("nan")
  result["steps_timed"] = int(len(totals))
  result["wall"] = time.perf_counter() - start
  print(json.dumps(result))


if __name__ == "__main__":
  main()
