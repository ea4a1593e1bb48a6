"""Task `pretrain` (paper §2.3): next-token prediction on a packed mixture of corpora."""
from dsmath_jax.train import trainer


def run(config, workdir: str) -> dict:
  return trainer.train(config, workdir, kind="text")
