"""The one entry point: `python -m dsmath_jax.main --config=configs/X.py[:arg] --workdir=DIR`.

`config.task` picks the job; `--config.a.b=v` overrides any field (a mistyped key fails,
the config is locked). Every task is a function `run(config, workdir)` that a notebook
or a test can call directly.
"""

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for everything the run writes: a local path or a "
                                "gs:// URL (README, 'Workdirs anywhere').")
flags.mark_flags_as_required(["config", "workdir"])


def tasks():
  """Task name -> run(config, workdir). Imported on demand: `corpus` needs no jax."""
  # Each import is local so that starting one task does not import every stage.
  def corpus(c, w):
    from dsmath_jax.corpus import pipeline
    return pipeline.run(c, w)

  def dataset(c, w):
    from dsmath_jax.datasets import task as dataset_task
    return dataset_task.run(c, w)

  def eval_(c, w):
    from dsmath_jax.eval import task as eval_task
    return eval_task.run(c, w)

  # Training tasks get the evaluation stage's benchmark evaluator (config.benchmark_eval) from here:
  # evaluation ranks above training, so training cannot import it.
  def grpo(c, w):
    if c.rl.get("iterations", 0) > 0:       # iterative RL (§4.1.4): reward model retrained between rounds
      from dsmath_jax.rl import iterative
      return iterative.run(c, w)
    from dsmath_jax.eval import during_training
    from dsmath_jax.rl import grpo as grpo_lib
    return grpo_lib.run(c, w, benchmark_evaluator=during_training.make_evaluator)

  def pretrain(c, w):
    from dsmath_jax.eval import during_training
    from dsmath_jax.train import pretrain as pretrain_lib
    return pretrain_lib.run(c, w, benchmark_evaluator=during_training.make_evaluator)

  def sft(c, w):
    from dsmath_jax.eval import during_training
    from dsmath_jax.train import sft as sft_lib
    return sft_lib.run(c, w, benchmark_evaluator=during_training.make_evaluator)

  def reward_model(c, w):
    from dsmath_jax.rl import rm_task
    return rm_task.run(c, w)

  def convert(c, w):
    from dsmath_jax.model import convert as convert_lib
    return convert_lib.run(c, w)

  def tokenizer(c, w):
    from dsmath_jax import tokenizer_task
    return tokenizer_task.run(c, w)

  def sample(c, w):
    from dsmath_jax.sample import task as sample_task
    return sample_task.run(c, w)

  def quickstart(c, w):
    from dsmath_jax import quickstart as quickstart_lib
    return quickstart_lib.run(c, w)

  return {"convert": convert, "corpus": corpus, "dataset": dataset, "eval": eval_, "grpo": grpo, "reward_model": reward_model, "pretrain": pretrain, "sft": sft, "tokenizer": tokenizer, "sample": sample, "quickstart": quickstart}


# Tasks whose every read and write goes through dsmath_jax.paths, so that --workdir may be a URL.
# The others still use local file APIs; a URL workdir is refused for them rather than written to a
# local folder named after it.
REMOTE_WORKDIR_TASKS = ("pretrain", "sft", "grpo", "reward_model", "eval", "sample")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config, workdir = _CONFIG.value, _WORKDIR.value
  if flags.FLAGS.verbosity <= 0:            # --verbosity=1 shows the libraries' INFO lines again
    from dsmath_jax import console
    console.quiet_libraries()
  known = tasks()
  if config.task not in known:
    raise app.UsageError(f"config.task={config.task!r} is not a task; known: {sorted(known)}")
  if "distributed" in config:               # jax tasks: join the other processes before any jax call
    from dsmath_jax import sharding
    sharding.maybe_initialize_distributed(config)
  from dsmath_jax import paths             # a local folder or a gs:// / s3:// URL (unknown schemes refused)
  if paths.is_remote(workdir) and config.task not in REMOTE_WORKDIR_TASKS:
    raise app.UsageError(f"--workdir={workdir}: task {config.task!r} writes local files only; a URL "
                         f"workdir works for {', '.join(REMOTE_WORKDIR_TASKS)} (README, 'Workdirs anywhere'); "
                         f"use a local path or a mounted bucket")
  paths.path(workdir).mkdir(parents=True, exist_ok=True)
  if config.task != "quickstart":           # its console is its own stage lines, bars and table
    logging.info("task %s, workdir %s", config.task, workdir)
  known[config.task](config, workdir)


if __name__ == "__main__":
  app.run(main)
