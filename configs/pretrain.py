"""Math pretraining (paper §2.3): DeepSeekMath-Base 7B = DeepSeek-Coder-Base-v1.5 7B trained
500B tokens on 56% DeepSeekMath Corpus, 4% AlgebraicStack, 10% arXiv, 20% GitHub code,
10% Common Crawl; AdamW (0.9, 0.95, wd 0.1), peak lr 4.2e-4, 2,000 warmup steps, x0.316 at
80% and x0.1 at 90% of training, batch 10M tokens, context 4K.

  python -m dsmath_jax.main --config=configs/pretrain.py:tiny --workdir=runs/pretrain_tiny
    seconds on a CPU: a 2-layer model on generated arithmetic text, loss falls below ~2.5.
  python -m dsmath_jax.main --config=configs/pretrain.py:small --workdir=runs/pretrain_small
    minutes on a CPU: the `small` preset (~5M params), byte tokenizer, 300 steps.
  python -m dsmath_jax.main --config=configs/pretrain.py \\
    --config.checkpoint=/ckpt/deepseek-coder-7b-base-v1.5 --config.data.sources.math.data_dir=... \\
    --workdir=gs://bucket/pretrain_7b
The corpus TFDS sources are built by the `corpus` task (dsmath_corpus) and the data task.
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, variants=("tiny", "small"), variant="7b")   # "tiny" | "small" | "7b"
  c = ml_collections.ConfigDict()
  c.task = "pretrain"
  c.seed = 0
  c.allow_config_change = False    # True: a resumed run may differ from WORKDIR/config.json (config_types.check_resume)
  c.checkpoint = ""                # load_pretrained path (HF dir, GGUF, save_pretrained dir)
  c.model = common.model("deepseek_math_7b", dtype="bfloat16", remat="dots")
  c.mesh = common.mesh(data=1, fsdp=-1, tensor=1)
  c.distributed = common.distributed()
  c.logical_axis_rules = common.LOGICAL_AXIS_RULES
  tfds_dir = "~/tensorflow_datasets"
  c.data = dict(
      tokenizer="", seq_len=4096, global_batch=2432, seed=0, packing="concat", packing_bins=16,
      worker_count=8,            # grain processes that tokenize and pack (0: in the loop)
      sources=dict(                # 2432 x 4096 = 9.96M tokens per step
          math=dict(tfds="dsmath_corpus", split="train", data_dir=tfds_dir, weight=0.56),
          algebraic_stack=dict(tfds="algebraic_stack", split="train", data_dir=tfds_dir, weight=0.04),
          arxiv=dict(tfds="arxiv", split="train", data_dir=tfds_dir, weight=0.10),
          github=dict(tfds="github_code", split="train", data_dir=tfds_dir, weight=0.20),
          common_crawl=dict(tfds="common_crawl", split="train", data_dir=tfds_dir, weight=0.10)))
  c.optim = dict(lr=4.2e-4, schedule="deepseek", steps=50_000, warmup_steps=2000, b1=0.9, b2=0.95,
                 eps=1e-8, weight_decay=0.1, clip_norm=1.0, end_lr_ratio=0.1, z_loss=0.0)
  c.train = dict(num_microbatches=1, log_every=10, checkpoint_every=500, keep_checkpoints=3,
                 peak_flops_per_device=0.0,   # 0: the chip's data-sheet peak (metrics.PEAK_FLOPS); no MFU on CPU
                 wandb_project="",            # Weights & Biases project (pip install wandb); "" = off
                 profile_steps=0)             # > 0: WORKDIR/profile holds a jax.profiler trace of that many steps
  c.eval = dict(every_steps=0, num_batches=0, sources=ml_collections.ConfigDict())
  c.benchmark_eval = common.benchmark_eval()      # greedy GSM8K accuracy every N steps; 0 = off
  if args.variant in ("tiny", "small"):
    arithmetic = dict(math=dict(generated="arithmetic", size=4000, seed=0, weight=0.8),
                      other=dict(generated="arithmetic", size=4000, seed=1, weight=0.2))
    c.model = common.model(args.variant)
    c.data.update(tokenizer="byte", seq_len=64, global_batch=8, worker_count=0)
    c.data.sources = arithmetic
    c.optim.update(lr=3e-3, steps=8, warmup_steps=2)
    c.train.update(log_every=1, checkpoint_every=4)
    c.benchmark_eval = common.benchmark_eval(**common.TINY_BENCHMARK_EVAL)
    c.eval = dict(every_steps=4, num_batches=2,
                  sources=dict(held_out=dict(generated="arithmetic", size=64, seed=7)))
  if args.variant == "small":
    c.data.update(seq_len=256, global_batch=16)
    c.optim.update(lr=1e-3, steps=300, warmup_steps=30)
    c.train.update(log_every=10, checkpoint_every=100)
    c.eval.every_steps = 50
  return c
