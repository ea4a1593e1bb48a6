"""Task `pretrain` (paper §2.3): next-token prediction on a packed mixture of corpora."""
from dsmath_jax.train import trainer


def run(config, workdir: str, benchmark_evaluator=None) -> dict:
  """benchmark_evaluator: see trainer.train (config.benchmark_eval)."""
  return trainer.train(config, workdir, kind="text", benchmark_evaluator=benchmark_evaluator)
