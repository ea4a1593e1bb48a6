"""Time one GRPO step (paper §4.1) split into sampling, reference, reward and update, beside
google-tunix 0.1.7's GRPO on the same shapes in the same run.

  python benchmarks/grpo_step.py [--repeats 3] [--skip_tunix]

Shapes (the issue's): a ~125M Llama (preset llama_125m, float32, random weights), 2 questions x
G = 4 outputs x 64 new tokens, beta = 0.04, one update (mu = 1). Ours runs as configured for
short responses: the G outputs of a question share one prefill in the sampler and one copy of
the prompt in the reference and update passes (rl.outputs_per_row = G, dsmath_jax/rl/packing.py);
`--outputs_per_row 1` times one output per row. Tunix runs in its own venv
($TUNIX_PYTHON, default /work/venvs/tunix/bin/python; it pins an older transformers) through
benchmarks/tunix_grpo_step.py.
Prints the split, the ratio ours/tunix, and one JSON line.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TUNIX_PYTHON = os.environ.get("TUNIX_PYTHON", "/work/venvs/tunix/bin/python")   # a venv with google-tunix==0.1.7
QUESTIONS, GROUP, NEW_TOKENS = 2, 4, 64
# Importing dsmath_jax adds its CPU setting to XLA_FLAGS (dsmath_jax/xla_cpu.py); tunix runs with
# the flags this process was started with, as a tunix user would.
STARTING_XLA_FLAGS = os.environ.get("XLA_FLAGS")


def ours(repeats: int, outputs_per_row: int = GROUP) -> dict:
  import jax
  from configs import common, grpo as grpo_config
  from dsmath_jax import runtime, sharding
  from dsmath_jax.rl import grpo, grpo_step
  from dsmath_jax.rl.config import GRPOConfig
  config = grpo_config.get_config("tiny")
  config.model = common.model("llama_125m")
  config.data.questions_per_step = QUESTIONS
  config.rl.update(group_size=GROUP, max_new_tokens=NEW_TOKENS, max_prompt_len=128, kl_coef=0.04,
                   logprob_gap_every=0, stop_strings=(), outputs_per_row=outputs_per_row)
  config.optim.lr = 1e-6
  questions = [dict(question=f"What is {i} + {i + 3}?", answer=str(2 * i + 3)) for i in range(QUESTIONS)]
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  run = GRPOConfig.from_config(config)
  machinery, state, ref_params, _ = grpo.setup(run, mesh, runtime.rules_of(config))
  runs = []
  for step in range(repeats + 1):                   # step 0 compiles
    start = time.perf_counter()
    state, metrics, completions = grpo_step.rl_step(run.rl, machinery, state, ref_params, questions,
                                                    jax.random.key(step))
    jax.block_until_ready(state.params)
    total = time.perf_counter() - start
    if step:
      runs.append(dict(total=total, sampling=metrics["time_sampling"], reward=metrics["time_scoring"],
                       reference=metrics["time_reference"], update=metrics["time_training"],
                       new_tokens=sum(len(c.token_ids) for c in completions)))
  return {k: float(sum(r[k] for r in runs) / len(runs)) for k in runs[0]}


def _peer_env() -> dict:
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  if STARTING_XLA_FLAGS is not None:
    env["XLA_FLAGS"] = STARTING_XLA_FLAGS
  return env


def tunix(repeats: int) -> dict | None:
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tunix_grpo_step.py")
  if not os.path.exists(TUNIX_PYTHON):
    print(f"tunix: {TUNIX_PYTHON} missing (python -m venv /work/venvs/tunix && "
          "/work/venvs/tunix/bin/pip install google-tunix==0.1.7)")
    return None
  out = subprocess.run([TUNIX_PYTHON, script, "--repeats", str(repeats)], capture_output=True, text=True,
                       env=_peer_env())
  lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
  if out.returncode or not lines:
    print("tunix failed:\n" + out.stdout[-3000:] + out.stderr[-3000:])
    return None
  return json.loads(lines[-1])


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--skip_tunix", action="store_true")
  parser.add_argument("--outputs_per_row", type=int, default=GROUP)
  args = parser.parse_args()
  mine = ours(args.repeats, args.outputs_per_row)
  print("ours  (s): " + " ".join(f"{k}={v:.3f}" for k, v in mine.items()))
  theirs = None if args.skip_tunix else tunix(args.repeats)
  result = {"benchmark": "grpo_step", "model": "llama_125m fp32", "questions": QUESTIONS, "group": GROUP,
            "new_tokens": NEW_TOKENS, "outputs_per_row": args.outputs_per_row, "ours": mine, "tunix": theirs}
  if theirs:
    print("tunix (s): " + " ".join(f"{k}={v:.3f}" for k, v in theirs.items()))
    result["ratio_ours_over_tunix"] = mine["total"] / theirs["total"]
    print(f"step time ours / tunix = {result['ratio_ours_over_tunix']:.2f} (target <= 0.6)")
  print(json.dumps(result))


if __name__ == "__main__":
  main()
