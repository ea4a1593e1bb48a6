"""Task `sft` (paper §3.1): instruction tuning on prompt/response pairs, loss on responses only."""
from dsmath_jax.train import trainer


def run(config, workdir: str, benchmark_evaluator=None) -> dict:
  """benchmark_evaluator: see trainer.train (config.benchmark_eval)."""
  return trainer.train(config, workdir, kind="sft", benchmark_evaluator=benchmark_evaluator)
