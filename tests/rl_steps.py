"""Real RL steps of the tiny model for the method tests (test_rl_methods.py, test_rl_ppo.py): a few
`grpo_step.rl_step` calls on a chosen mesh, recording the host batch of every policy update, so a
test can check what reached the update against its own expectation."""
import functools
import json
import math

import jax

from dsmath_jax import runtime, sharding
from dsmath_jax.rl import grpo, grpo_step
from dsmath_jax.rl import questions as questions_lib
from dsmath_jax.rl.config import GRPOConfig


def parity_reward(output, gold):
  """A stand-in reward both values of which the random tiny policy earns: 1 for an even-length output."""
  return 1.0 if len(output) % 2 == 0 else 0.0


def write_questions(tmp_path, count: int = 4) -> str:
  """`count` questions "i+i?" (answer 2i) in tmp_path/questions.jsonl -> the data.questions spec."""
  path = tmp_path / "questions.jsonl"
  path.write_text("".join(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(count)))
  return f"jsonl:{path}"


def recorded_steps(config, *, mesh_shape=(1, 1, 1), steps: int = 1):
  """(per step: (metrics, completions, the host batches of its updates)), the final state on the host).

  Step k trains on questions[k * per_step:(k + 1) * per_step] of config.data.questions with key
  jax.random.key(k), on a mesh of the first prod(mesh_shape) devices; dynamic sampling's extra rounds
  draw from all of them (questions.fresh_questions, seed = config.seed)."""
  run = GRPOConfig.from_config(config)
  devices = jax.devices()[:math.prod(mesh_shape)]
  mesh = sharding.make_mesh(dict(zip(("data", "fsdp", "tensor"), mesh_shape)), devices)
  machinery, state, ref_params, _ = grpo.setup(run, mesh, runtime.rules_of(config))
  batches, train_step = [], machinery.train_step

  def recording_step(state, batch):
    batches.append(jax.device_get(batch))
    return train_step(state, batch)

  machinery.train_step = recording_step
  questions = questions_lib.load_questions(run.data.questions)
  per_step = run.data.questions_per_step
  history = []
  for step in range(steps):
    batches = []
    fresh = functools.partial(questions_lib.fresh_questions, questions, per_step, run.seed, step)
    state, metrics, completions = grpo_step.rl_step(run.rl, machinery, state, ref_params,
                                                    questions[per_step * step:per_step * (step + 1)],
                                                    jax.random.key(step), fresh_questions=fresh)
    history.append((metrics, completions, batches))
  return history, jax.device_get(state)
