"""DeepSeekMath-Instruct 7B (paper §3.1): SFT of DeepSeekMath-Base 7B on the 776K-example
instruction set (CoT, PoT, tool-integrated; English + Chinese), examples concatenated to 4K
tokens; 500 steps, batch 256, constant lr 5e-5.

  python -m dsmath_jax.main --config=configs/sft_deepseekmath_instruct.py \\
    --config.checkpoint=/ckpt/deepseek-math-7b-base --workdir=gs://bucket/sft_7b
  python -m dsmath_jax.main --config=configs/sft_deepseekmath_instruct.py:tiny --workdir=/tmp/x
Ends with WORKDIR/model, the starting point of configs/grpo*.py (paper §4.2).
"""
import ml_collections

from configs import common, sft


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, variants=("tiny", "small"), variant="7b")   # as configs/sft.py
  c = sft.get_config(arg)
  if args.variant == "7b":
    c.checkpoint = "/checkpoints/deepseek-math-7b-base"  # HF deepseek-ai/deepseek-math-7b-base
    c.data.update(seq_len=4096, global_batch=256, packing="first_fit")
    c.optim.update(lr=5e-5, schedule="constant", steps=500, warmup_steps=0)
  return c
