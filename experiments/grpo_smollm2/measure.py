"""Times GRPO steps of configs/grpo_smollm2.py at a few (questions, G, new tokens) settings.

  python experiments/grpo_smollm2/measure.py --settings 4x8x160 2x8x160 4x8x96 [--steps 2]

For each setting: one warm-up step (compiles), then `--steps` timed steps on training problems,
each split into sampling / scoring / reference / update, with the response length and the
process's peak memory. The numbers size the experiment's budget (README, "Choosing the step").
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--settings", nargs="+", default=["4x8x160"], help="QUESTIONSxGxNEW_TOKENS")
  parser.add_argument("--steps", type=int, default=2)
  parser.add_argument("--microbatches", type=int, default=0, help="0: the config's")
  parser.add_argument("--outputs_per_row", type=int, default=0, help="0: the config's")
  args = parser.parse_args()
  import jax

  import task
  from configs import grpo_smollm2
  from dsmath_jax import runtime
  from dsmath_jax.rl import grpo, grpo_step
  from dsmath_jax.rl import questions as questions_lib
  from dsmath_jax.rl.config import GRPOConfig
  for setting in args.settings:
    questions_per_step, group, new_tokens = (int(v) for v in setting.split("x"))
    config = grpo_smollm2.get_config()
    e = config.experiment
    train, _ = task.generate(int(e.num_train), 1, int(e.task_seed), int(e.max_factor), int(e.max_count))
    config.data.questions = "jsonl:" + task.write_jsonl(train, os.path.join(tempfile.mkdtemp(), "train.jsonl"))
    config.data.questions_per_step = questions_per_step
    config.rl.update(group_size=group, max_new_tokens=new_tokens, logprob_gap_every=0)
    if args.outputs_per_row:
      config.rl.outputs_per_row = args.outputs_per_row
    if args.microbatches:
      config.train.num_microbatches = args.microbatches
    start = time.perf_counter()
    run = GRPOConfig.from_config(config, ignore=("experiment",))
    machinery, state, ref_params, _ = grpo.setup(run, *runtime.setup(config))
    setup_seconds = time.perf_counter() - start
    batches = questions_lib.question_batches(questions_lib.load_questions(run.data.questions), questions_per_step, 0)
    timings = []
    for step in range(args.steps + 1):
      start = time.perf_counter()
      state, metrics, _ = grpo_step.rl_step(run.rl, machinery, state, ref_params, next(batches), jax.random.key(step))
      timings.append({"seconds": time.perf_counter() - start,
                      **{k: round(v, 3) for k, v in metrics.items()
                         if k.startswith("time_") or k in ("response_length", "accuracy", "truncated")}})
    timed = timings[1:]
    print(json.dumps({
        "setting": setting, "setup_seconds": round(setup_seconds, 1),
        "first_step_seconds": round(timings[0]["seconds"], 1),
        "step_seconds": round(sum(t["seconds"] for t in timed) / len(timed), 1), "steps": timed,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "load_average": os.getloadavg()}), flush=True)
    del machinery, state, ref_params


if __name__ == "__main__":
  main()
