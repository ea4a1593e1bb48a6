"""Task `sft` (paper §3.1): instruction tuning on prompt/response pairs, loss on responses only."""
from dsmath_jax.train import trainer


def run(config, workdir: str) -> dict:
  return trainer.train(config, workdir, kind="sft")
