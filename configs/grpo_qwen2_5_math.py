"""GRPO (paper §4.1-4.2) from a Qwen2.5-Math base checkpoint instead of DeepSeekMath-Instruct.

  huggingface-cli download Qwen/Qwen2.5-Math-1.5B --local-dir Qwen2.5-Math-1.5B
  python -m dsmath_jax.main --config=configs/grpo_qwen2_5_math.py \
      --config.checkpoint=Qwen2.5-Math-1.5B --workdir=runs/rl_qwen2_5_math

The checkpoint directory (HF safetensors, a save_pretrained dir or a GGUF) brings its own shape
and tokenizer; `model` only says how to run it (bfloat16, remat), and its preset is the one the
checkpoint must match. Prompts use the checkpoint's own chat template (data.template="chat":
the CoT instruction as the user's message, rendered by its chat_template.jinja or
tokenizer_config.json) instead of the paper's "User:/Assistant:"; set data.template="cot" for
the paper's. Everything else is configs/grpo.py: the paper's GRPO hyper-parameters. `:tiny` runs
configs/grpo.py:tiny with the Qwen2 decoder switch on (a random tiny model with q/k/v biases)
and the chat template (ChatML for the byte tokenizer), so the plumbing is checked in seconds.
"""
from configs import common
from configs import grpo


def get_config(arg: str | None = None):
  args = common.parse_arg(arg)
  c = grpo.get_config(arg)
  c.data.template = "chat"
  if args.variant == "tiny":
    c.model = common.model("tiny", qkv_bias=True)
    return c
  c.checkpoint = "Qwen2.5-Math-1.5B"                      # a local directory; override it
  c.model = common.model("qwen2_5_math_1_5b", dtype="bfloat16", param_dtype="bfloat16")
  c.train.num_microbatches = 8                            # 1.5B: half the 7B's microbatching
  return c
