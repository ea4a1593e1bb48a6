"""maj@k and pass@k, k = 1 .. 64, of the SFT model and of each RL seed's policy (paper §5.2.2,
Figure 7: RL raises maj@k more than pass@k).

  python experiments/grpo_arithmetic/maj_pass.py --config=configs/grpo_arithmetic.py --workdir=runs/grpo_arith
  python experiments/grpo_arithmetic/report.py runs/grpo_arith/results

Reads the models run.py wrote (WORKDIR/sft/model, WORKDIR/seed_s/model for experiment.rl_seeds);
samples experiment.maj_pass.k outputs (temperature rl.temperature) per held-out question; writes
WORKDIR/results/maj_pass.json.
"""
import json
import os
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import evaluate as evaluate_lib  # noqa: E402
import experiment_config  # noqa: E402
import stages  # noqa: E402
from dsmath_jax import config_types, runtime  # noqa: E402
from dsmath_jax.model import loading  # noqa: E402
from dsmath_jax.rl import grpo  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/grpo_arithmetic.py[:tiny]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "the workdir of run.py")


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  config_types.write_config(config, os.path.join(workdir, "maj_pass"))
  run, e = experiment_config.typed(config)
  mesh, rules = runtime.setup(config)
  run, data, _ = stages.prepare(run, e, mesh, rules, workdir)
  questions = data["test"][:e.maj_pass.questions]
  models = {}
  for seed in e.rl_seeds:                          # every policy must exist before any sampling starts
    path = os.path.join(workdir, f"seed_{seed}", "model")
    if not os.path.isfile(os.path.join(path, "model.json")):
      raise FileNotFoundError(f"{path}: no RL policy; run experiments/grpo_arithmetic/run.py first")
    models[f"rl_seed_{seed}"] = path
  machinery, state, _, _ = grpo.setup(run, mesh, rules)
  results = {"k": e.maj_pass.k, "questions": len(questions), "overlap": data["overlap"],
             "rl_steps": e.rl_steps, "temperature": run.rl.temperature,
             "cpu_count": os.cpu_count(), "load_average_before": list(os.getloadavg())}
  for name in ["sft"] + list(models):
    params = state.params if name == "sft" else loading.load_pretrained(models[name], mesh=mesh, rules=rules).params
    results[name] = evaluate_lib.evaluate(machinery, params, questions, jax.random.key(stages.EVAL_SEED),
                                          e.maj_pass.k)
    print(name, json.dumps(results[name]), flush=True)
  results["load_average_after"] = list(os.getloadavg())
  machinery.close()
  stages.write_json(results, os.path.join(workdir, "results", "maj_pass.json"))


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
