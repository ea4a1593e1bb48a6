"""Checkpoint conversion: HF safetensors / GGUF / save_pretrained dir -> orbax model dir or HF dir.

  python -m dsmath_jax.main --config=configs/convert.py:tiny --workdir=runs/convert_tiny
    seconds on a CPU: a random `tiny` model -> WORKDIR/model (orbax), loadable by every task.
  python -m dsmath_jax.main --config=configs/convert.py --workdir=runs/random7b \
    --config.source=random --config.format=hf     (a random 7B checkpoint: tests a cluster's I/O)
  python -m dsmath_jax.main --config=configs/convert.py --workdir=runs/convert \\
    --config.source=PATH --config.output=DIR --config.format=orbax|hf
    e.g. deepseek-ai/deepseek-math-7b-base (HF dir) -> the `checkpoint` of configs/sft.py.
  python -m dsmath_jax.main --config=configs/convert.py --workdir=runs/convert \
    --config.source=runs/sft/model --config.output=sft.gguf --config.format=gguf --config.gguf_type=Q8_0
    a trained model -> one GGUF file (tokenizer and chat template inside) for llama.cpp / ollama.
Tensors stream one at a time into their shardings over `mesh` (the 7B needs one stacked
parameter of host memory, not two copies of the model); WORKDIR/convert.json has the summary.
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, variant="default")            # "default" | "tiny"
  c = ml_collections.ConfigDict()
  c.task = "convert"
  c.seed = 0
  c.source = ""            # *.gguf | HF dir | save_pretrained dir | "random" (init of `model`)
  c.output = ""            # default WORKDIR/model (WORKDIR/model.gguf for format gguf)
  c.format = "orbax"       # "orbax" (save_pretrained dir) | "hf" (config.json + safetensors) | "gguf"
  c.param_dtype = ""       # "" keeps the checkpoint's; "bfloat16" halves a float32 checkpoint
  c.tokenizer = ""         # attach this tokenizer instead of the checkpoint's (load_tokenizer path)
  c.max_shard_gb = 5.0     # HF export: safetensors shard size
  c.gguf_type = "F16"      # GGUF export: "F32" | "F16" | "BF16" | "Q8_0" (llama.cpp's default outtype: F16)
  c.model = common.model("deepseek_math_7b", param_dtype="bfloat16")   # for source="random"
  c.mesh = common.mesh(data=1, fsdp=-1, tensor=1)
  c.distributed = common.distributed()
  c.logical_axis_rules = common.LOGICAL_AXIS_RULES
  if args.variant == "tiny":
    c.source = "random"
    c.model = common.model("tiny")
  return c
