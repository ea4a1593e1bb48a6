"""Shared pieces of every experiment config: model presets, sharding rules, arg parsing.

An experiment file imports this module and copies what it needs, so that the
experiment file itself reads as the full description of a run.
"""
import os
import pathlib

import ml_collections

REPO = pathlib.Path(__file__).resolve().parents[1]
# Files shipped inside the package: every `:tiny` config reads only these (or generates data).
ASSETS = str(REPO / "dsmath_jax" / "assets")
# The real datasets the full configs name: ../shared/data beside the repository (SOURCE.md in
# each folder), or wherever DSMATH_SHARED_DATA points.
SHARED_DATA = os.environ.get("DSMATH_SHARED_DATA", str(REPO.parent / "shared" / "data"))

# Model presets (fields of dsmath_jax.model.llama.LlamaConfig). Copy with `model(name)`.
MODELS = {
    # DeepSeek LLM 7B = DeepSeekMath-Base 7B (paper §2.3): the LLaMA architecture.
    "deepseek_math_7b": dict(
        vocab_size=102400, hidden_size=4096, num_layers=30, num_heads=32, num_kv_heads=32,
        head_dim=128, mlp_dim=11008, rope_theta=10000.0, rms_norm_eps=1e-6,
        max_position_embeddings=4096, tie_embeddings=False),
    # SmolLM2-135M-Instruct; these numbers are checked against its GGUF metadata in tests.
    "smollm2_135m": dict(
        vocab_size=49152, hidden_size=576, num_layers=30, num_heads=9, num_kv_heads=3,
        head_dim=64, mlp_dim=1536, rope_theta=100000.0, rms_norm_eps=1e-5,
        max_position_embeddings=8192, tie_embeddings=True),
    # Bases today's GRPO research starts from (numbers from the released config.json files on the
    # Hugging Face hub; tests check num_params against the published counts).
    # Qwen/Qwen2.5-Math-1.5B: Qwen2 (q/k/v biases), tied embeddings, 4K context.
    "qwen2_5_math_1_5b": dict(
        vocab_size=151936, hidden_size=1536, num_layers=28, num_heads=12, num_kv_heads=2,
        head_dim=128, mlp_dim=8960, rope_theta=10000.0, rms_norm_eps=1e-6,
        max_position_embeddings=4096, tie_embeddings=True, qkv_bias=True),
    # Qwen/Qwen2.5-Math-7B.
    "qwen2_5_math_7b": dict(
        vocab_size=152064, hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4,
        head_dim=128, mlp_dim=18944, rope_theta=10000.0, rms_norm_eps=1e-6,
        max_position_embeddings=4096, tie_embeddings=False, qkv_bias=True),
    # Qwen/Qwen2.5-7B (base).
    "qwen2_5_7b": dict(
        vocab_size=152064, hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4,
        head_dim=128, mlp_dim=18944, rope_theta=1000000.0, rms_norm_eps=1e-6,
        max_position_embeddings=131072, tie_embeddings=False, qkv_bias=True),
    # meta-llama/Llama-3.1-8B: llama3 RoPE (factor 8, low/high freq factors 1/4, original 8192).
    "llama3_8b": dict(
        vocab_size=128256, hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=8,
        head_dim=128, mlp_dim=14336, rope_theta=500000.0, rms_norm_eps=1e-5,
        max_position_embeddings=131072, tie_embeddings=False, rope_scaling=(8.0, 1.0, 4.0, 8192)),
    # ~125M Llama used by the GRPO benchmark and the ~100M train benchmark.
    "llama_125m": dict(
        vocab_size=32000, hidden_size=768, num_layers=12, num_heads=12, num_kv_heads=4,
        head_dim=64, mlp_dim=2048, rope_theta=10000.0, rms_norm_eps=1e-6,
        max_position_embeddings=2048, tie_embeddings=False),
    # A few-million-parameter model for CPU experiments (quickstart, GRPO on arithmetic).
    "small": dict(
        vocab_size=512, hidden_size=256, num_layers=4, num_heads=8, num_kv_heads=4,
        head_dim=32, mlp_dim=704, rope_theta=10000.0, rms_norm_eps=1e-6,
        max_position_embeddings=1024, tie_embeddings=False),
    # Seconds on one CPU: every `:tiny` config uses it.
    "tiny": dict(
        vocab_size=320, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
        head_dim=16, mlp_dim=128, rope_theta=10000.0, rms_norm_eps=1e-6,
        max_position_embeddings=512, tie_embeddings=False),
}

# Every logical axis the models name, mapped to mesh axes ('data', 'fsdp', 'tensor').
# Parameters are sharded over fsdp on their embed axis and over tensor on heads/mlp/vocab;
# activations over (data, fsdp) on batch. A test checks that every name used has a rule.
LOGICAL_AXIS_RULES = (
    ("batch", ("data", "fsdp")),
    ("seq", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_kv_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("cache_seq", None),
    ("head_dim", None),
    ("layers", None),
    ("embed", "fsdp"),
    ("q_heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("vocab", "tensor"),
    ("norm", None),
)


# How a process joins a multi-process run (sharding.DistributedConfig). Left as is, the launcher's
# environment decides (JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID, a TPU pod, SLURM);
# e.g. --config.distributed.coordinator_address=host0:1234 --config.distributed.num_processes=2
# --config.distributed.process_id=1.
def distributed() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(coordinator_address="", num_processes=0, process_id=-1))


# Benchmark accuracy during training (dsmath_jax/train/benchmark_eval.py says what each key means):
# greedy zero-shot accuracy of a fixed subset every `every_steps`, logged as bench/<name>/accuracy
# beside the training metrics, the graded samples in WORKDIR/bench/<name>/step_<N>.jsonl. Off by
# default; e.g. --config.benchmark_eval.every_steps=50.
def benchmark_eval(**overrides) -> ml_collections.ConfigDict:
  section = dict(every_steps=0, benchmarks=("gsm8k",), root=SHARED_DATA, paths={}, max_questions=64,
                 max_new_tokens=512, batch_size=64, template="cot")
  section.update(overrides)
  return ml_collections.ConfigDict(section)


# The tiny variants' benchmark subset: 4 GSM8K test questions shipped in the package (prompts of at
# most 372 byte tokens, so 16 new tokens fit the tiny model's 512 positions).
TINY_BENCHMARK_EVAL = dict(paths={"gsm8k": f"{ASSETS}/math_sample/gsm8k_test.jsonl"}, max_questions=4,
                           max_new_tokens=16, batch_size=4)


def model(name: str, **overrides) -> ml_collections.ConfigDict:
  """A model preset as a ConfigDict, with the run-time knobs every model config carries."""
  if name not in MODELS:
    raise ValueError(f"unknown model preset {name!r}; known: {sorted(MODELS)}")
  c = ml_collections.ConfigDict(dict(
      MODELS[name], preset=name, dtype="float32", param_dtype="float32",
      scan_layers=True, remat="none",
      attention="blocked",    # "blocked" (default, exact) | "xla" (reference) | "dot_product" (cuDNN) | "splash" (TPU)
      logits_chunk=0))        # losses project to the vocabulary this many positions at a time; 0 = all
  c.update(overrides)
  return c


def mesh(data: int = 1, fsdp: int = -1, tensor: int = 1) -> ml_collections.ConfigDict:
  """Mesh axis sizes; one of them may be -1, meaning all remaining devices."""
  return ml_collections.ConfigDict(dict(data=data, fsdp=fsdp, tensor=tensor))


def parse_arg(arg: str | None, *, variants: tuple[str, ...] = ("tiny",), **defaults):
  """Parses `tiny` or `tiny,group=8,steps=3` into a ConfigDict of typed fields.

  The first bare word is the `variant` and must be one of `variants` (the default variant is
  `defaults["variant"]`, else ""); `key=value` pairs must name a key of `defaults` and are cast
  to its type. Anything else fails naming it, so `:tinny` cannot silently build the 7B run.
  """
  result = ml_collections.ConfigDict(dict(defaults))
  result.variant = defaults.get("variant", "")
  known = tuple(dict.fromkeys((result.variant,) + tuple(variants) if result.variant else tuple(variants)))
  for token in (arg or "").split(","):
    token = token.strip()
    if not token:
      continue
    if "=" not in token:
      if token not in known:
        raise ValueError(f"unknown config variant {token!r} in {arg!r}; known: {list(known)}")
      result.variant = token
      continue
    key, value = token.split("=", 1)
    if key not in defaults or key == "variant":
      raise ValueError(f"unknown config argument {key!r} in {arg!r}; known: "
                       f"{sorted(k for k in defaults if k != 'variant')}")
    default = defaults[key]
    if isinstance(default, bool):
      if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
        raise ValueError(f"config argument {key}={value!r}: expected true or false")
      result[key] = value.lower() in ("1", "true", "yes")
    else:
      try:
        result[key] = type(default)(value)
      except ValueError as error:
        raise ValueError(f"config argument {key}={value!r}: expected {type(default).__name__}") from error
  return result
