"""The accelerator figures in one run: train-step MFU (~1B, bf16), decode tok/s at 7B shapes, a GRPO step.

  bash benchmarks/gpu.sh [OUT.json]               # on one GPU (or TPU chip): a few minutes
  bash benchmarks/gpu.sh --cpu_tiny [OUT.json]    # the same code at toy shapes on a CPU

Random weights throughout (no checkpoint needed); one device.
  train   the train step (dsmath_jax/train/step.py, AdamW, float32 master weights, bfloat16
          compute) of a ~1.2B DeepSeek-shaped model (hidden 2048, 16 layers, vocab 102400) on
          --train_batch x 2048 tokens. MFU = tokens/s x LlamaConfig.flops_per_token / peak,
          against the card's bf16 dense peak (the table below; `--peak_flops` overrides) and
          against a measured bf16 matmul.
  decode  greedy decoding with the sampler (dsmath_jax/sample/sampler.py) at deepseek_math_7b
          shapes in bfloat16: batch 1 and 64, 128-token prompts, 128 new tokens. Decode tok/s
          = batch x (N - 1) / (time(N new) - time(1 new)), as benchmarks/sampling.py.
  grpo    one GRPO step (dsmath_jax/rl/grpo.py: sampling, reference log-probs, rule reward,
          update) of llama_125m in bfloat16: 8 questions x G = 16 outputs x 256 new tokens.
Writes one JSON (default benchmarks/gpu_results.json) and prints it.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from configs import common  # noqa: E402
from dsmath_jax import sharding  # noqa: E402
from dsmath_jax.model import llama  # noqa: E402

# bf16 dense peak FLOP/s per chip, by jax device_kind substring (vendor datasheets).
PEAK_BF16 = (("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12),
             ("TPU v5p", 459e12), ("TPU v5 lite", 197e12), ("TPU v5e", 197e12), ("TPU v4", 275e12),
             ("TPU v6", 918e12))
MODEL_1B = dict(vocab_size=102400, hidden_size=2048, num_layers=16, num_heads=16, num_kv_heads=16,
                head_dim=128, mlp_dim=5504, rope_theta=10000.0, rms_norm_eps=1e-6,
                max_position_embeddings=4096, tie_embeddings=False)


def _seconds(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def spec_peak(device_kind: str) -> float | None:
  return next((peak for name, peak in PEAK_BF16 if name.lower() in device_kind.lower()), None)


def measured_peak(size: int) -> float:
  """FLOP/s of a jitted [size, size] @ [size, size] bfloat16 matmul (best of 5)."""
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.bfloat16)
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.bfloat16)
  matmul = jax.jit(lambda x, y: x @ y)
  matmul(a, b).block_until_ready()
  return 2 * size ** 3 / min(_seconds(lambda: matmul(a, b).block_until_ready()) for _ in range(5))


def train(model: dict, batch: int, seq: int, remat: str, steps: int, peak: float | None, matmul_peak: float) -> dict:
  from dsmath_jax.train import loss as loss_lib, optim, state as state_lib, step as step_lib
  config = ml_collections.ConfigDict(dict(
      seed=0, model=dict(model, dtype="bfloat16", param_dtype="float32", remat=remat, scan_layers=True),
      optim=dict(lr=1e-4, schedule="constant", steps=100, weight_decay=0.1, clip_norm=1.0)))
  model_config = llama.LlamaConfig.from_config(config.model)
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  rules = common.LOGICAL_AXIS_RULES
  state, shardings = state_lib.create_train_state(optim.OptimConfig.from_config(config.optim), model_config,
                                                  mesh, rules, seed=0)
  tokens = np.random.default_rng(0).integers(3, model_config.vocab_size, (batch, seq)).astype(np.int32)
  ones = np.ones((batch, seq), np.int32)
  host = dict(tokens=tokens, segment_ids=ones, loss_mask=ones.astype(np.float32),
              positions=np.broadcast_to(np.arange(seq, dtype=np.int32), (batch, seq)).copy())
  step = step_lib.compile_train_step(shardings, mesh, rules, {k: v.shape for k, v in host.items()},
                                     loss_fn=loss_lib.cross_entropy_loss,
                                     apply_fn=step_lib.make_apply_fn(model_config))
  device_batch = sharding.put_global(host, sharding.batch_sharding(mesh, rules, 2))
  holder = [state]

  def one_step():
    holder[0], metrics = step(holder[0], device_batch)
    jax.block_until_ready(metrics["loss"])

  compile_s = _seconds(one_step)
  best = min(_seconds(one_step) for _ in range(steps))
  tokens_per_s = batch * seq / best
  flops = model_config.flops_per_token(seq) * tokens_per_s
  return dict(params=model_config.num_params, batch=batch, seq=seq, remat=remat, step_s=best,
              compile_s=compile_s, tokens_per_s=tokens_per_s, model_flops_per_s=flops,
              mfu=None if peak is None else flops / peak, mfu_of_measured_matmul=flops / matmul_peak)


def decode(preset: str, batches: list[int], prompt_len: int, new_tokens: int) -> dict:
  from dsmath_jax.sample import sampler
  config = llama.LlamaConfig.from_config(common.model(preset, dtype="bfloat16", param_dtype="bfloat16"))
  params = nn.unbox(jax.jit(lambda key: llama.init_params(config, key))(jax.random.key(0)))
  rng = np.random.default_rng(0)
  out = dict(preset=preset, params=config.num_params, prompt_len=prompt_len, new_tokens=new_tokens)
  for batch in batches:
    prompts = rng.integers(3, config.vocab_size, size=(batch, prompt_len)).tolist()
    run = lambda n: sampler.generate_rows(params, config, prompts,
                                          sampler.SamplingParams(max_new_tokens=n, greedy=True), 0)
    run(1), run(new_tokens)                                            # compile both
    full = min(_seconds(lambda: run(new_tokens)) for _ in range(2))
    prefill = min(_seconds(lambda: run(1)) for _ in range(2))
    out[f"batch{batch}"] = dict(decode_tokens_per_s=batch * (new_tokens - 1) / max(full - prefill, 1e-9),
                                prefill_s=prefill, total_s=full)
  return out


def grpo(preset: str, questions: int, group: int, new_tokens: int, repeats: int) -> dict:
  from configs import grpo as grpo_config
  from dsmath_jax import runtime
  from dsmath_jax.rl import grpo as grpo_lib, grpo_step
  from dsmath_jax.rl.config import GRPOConfig
  config = grpo_config.get_config("tiny")
  config.model = common.model(preset, dtype="bfloat16")
  config.data.questions_per_step = questions
  config.rl.update(group_size=group, max_new_tokens=new_tokens, max_prompt_len=128, kl_coef=0.04,
                   logprob_gap_every=0, stop_strings=(), outputs_per_row=1)
  config.train.num_microbatches = 1
  config.optim.lr = 1e-6
  items = [dict(question=f"What is {i} + {i + 3}?", answer=str(2 * i + 3)) for i in range(questions)]
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  run = GRPOConfig.from_config(config)
  machinery, state, ref_params, _ = grpo_lib.setup(run, mesh, runtime.rules_of(config))
  runs = []
  for step in range(repeats + 1):                                     # step 0 compiles
    start = time.perf_counter()
    state, metrics, completions = grpo_step.rl_step(run.rl, machinery, state, ref_params, items,
                                                    jax.random.key(step))
    jax.block_until_ready(state.params)
    if step:
      runs.append(dict(total=time.perf_counter() - start, sampling=metrics["time_sampling"],
                       reference=metrics["time_reference"], reward=metrics["time_scoring"],
                       update=metrics["time_training"],
                       new_tokens=sum(len(c.token_ids) for c in completions)))
  mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
  return dict(preset=preset, questions=questions, group=group, max_new_tokens=new_tokens, **mean)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(__file__), "gpu_results.json"))
  parser.add_argument("--cpu_tiny", action="store_true", help="toy shapes, to check the script on a CPU")
  parser.add_argument("--train_batch", type=int, default=8)
  parser.add_argument("--remat", default="none")
  parser.add_argument("--peak_flops", type=float, default=0.0, help="bf16 peak FLOP/s of one chip")
  parser.add_argument("--only", default="train,decode,grpo")
  args = parser.parse_args()
  device = jax.devices()[0]
  peak = args.peak_flops or spec_peak(device.device_kind)
  if args.cpu_tiny:
    shapes = dict(model=dict(MODEL_1B, vocab_size=512, hidden_size=64, num_layers=2, num_heads=4,
                             num_kv_heads=4, head_dim=16, mlp_dim=128),
                  batch=2, seq=64, matmul=256, decode=("small", [1, 4], 16, 8), grpo=("tiny", 2, 2, 8))
  else:
    shapes = dict(model=MODEL_1B, batch=args.train_batch, seq=2048, matmul=8192,
                  decode=("deepseek_math_7b", [1, 64], 128, 128), grpo=("llama_125m", 8, 16, 256))
  matmul_peak = measured_peak(shapes["matmul"])
  result = dict(benchmark="gpu", device=device.device_kind, platform=device.platform,
                jax=jax.__version__, cpu_tiny=args.cpu_tiny, spec_peak_flops=peak,
                measured_matmul_flops=matmul_peak)
  print(f"{device.device_kind}: spec bf16 peak {peak or 0:.3g}, measured matmul {matmul_peak:.3g} FLOP/s", flush=True)
  parts = args.only.split(",")
  if "train" in parts:
    result["train"] = train(shapes["model"], shapes["batch"], shapes["seq"], args.remat, 3, peak, matmul_peak)
    print("train:", json.dumps(result["train"]), flush=True)
  if "decode" in parts:
    preset, batches, prompt_len, new_tokens = shapes["decode"]
    result["decode"] = decode(preset, batches, prompt_len, new_tokens)
    print("decode:", json.dumps(result["decode"]), flush=True)
  if "grpo" in parts:
    preset, questions, group, new_tokens = shapes["grpo"]
    result["grpo"] = grpo(preset, questions, group, new_tokens, repeats=2)
    print("grpo:", json.dumps(result["grpo"]), flush=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
