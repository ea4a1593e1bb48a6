"""Decode throughput of dsmath_jax.sample against transformers' `generate`, same weights, same run.

  python benchmarks/sampling.py [--batches 1,64] [--prompt_len 32] [--new_tokens 64] [--model smollm2_135m]

SmolLM2-135M shapes with random weights (copied into a transformers LlamaForCausalLM), greedy
decoding, no EOS, float32 on CPU. Decode tokens/s = batch x (N - 1) / (time(N new) - time(1 new)),
which removes prefill and compilation from the figure; each timing is the best of `--repeats`.
Prints one line per batch size and a final JSON line with the ratios.
"""
import argparse
import json
import os
import sys
import time

import flax.linen as nn
import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import common  # noqa: E402
from dsmath_jax.model import llama  # noqa: E402
from dsmath_jax.sample import sampler  # noqa: E402


def to_transformers(params, config: llama.LlamaConfig):
  """A transformers LlamaForCausalLM holding our (scan-stacked) parameters."""
  import torch
  import transformers
  hf_config = transformers.LlamaConfig(
      vocab_size=config.vocab_size, hidden_size=config.hidden_size,
      intermediate_size=config.mlp_dim, num_hidden_layers=config.num_layers,
      num_attention_heads=config.num_heads, num_key_value_heads=config.num_kv_heads,
      head_dim=config.head_dim, rope_theta=config.rope_theta, rms_norm_eps=config.rms_norm_eps,
      max_position_embeddings=config.max_position_embeddings,
      tie_word_embeddings=config.tie_embeddings, attention_bias=False, mlp_bias=False)
  model = transformers.LlamaForCausalLM(hf_config).eval()
  tensor = lambda x: torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32)))
  layers = params["layers"]
  state = {"model.embed_tokens.weight": tensor(params["embed_tokens"]["embedding"]),
           "model.norm.weight": tensor(params["norm"]["scale"])}
  if not config.tie_embeddings:
    state["lm_head.weight"] = tensor(params["lm_head"]["kernel"]).T
  else:
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
  for i in range(config.num_layers):
    prefix = f"model.layers.{i}."
    for group, names in (("self_attn", ("q_proj", "k_proj", "v_proj", "o_proj")),
                         ("mlp", ("gate_proj", "up_proj", "down_proj"))):
      for name in names:
        state[prefix + f"{group}.{name}.weight"] = tensor(layers[group][name]["kernel"][i]).T
    for name in ("input_layernorm", "post_attention_layernorm"):
      state[prefix + f"{name}.weight"] = tensor(layers[name]["scale"][i])
  model.load_state_dict(state, strict=True)
  return model


def best_time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batches", default="1,64")
  parser.add_argument("--prompt_len", type=int, default=32)
  parser.add_argument("--new_tokens", type=int, default=16)
  parser.add_argument("--model", default="smollm2_135m")
  parser.add_argument("--repeats", type=int, default=1)
  args = parser.parse_args()

  import torch
  torch.set_num_threads(os.cpu_count())
  config = llama.LlamaConfig.from_config(common.model(args.model))
  params = jax.device_get(nn.unbox(llama.init_params(config, jax.random.key(0))))
  hf_model = to_transformers(params, config)
  rng = np.random.default_rng(0)
  results = {"model": args.model, "prompt_len": args.prompt_len, "new_tokens": args.new_tokens,
             "device": jax.devices()[0].device_kind}
  for batch in [int(b) for b in args.batches.split(",")]:
    prompts = rng.integers(3, config.vocab_size, size=(batch, args.prompt_len))

    def ours(new_tokens):
      sampling = sampler.SamplingParams(max_new_tokens=new_tokens, greedy=True)
      return sampler.generate_rows(params, config, prompts.tolist(), sampling, 0)

    def theirs(new_tokens):
      with torch.no_grad():
        return hf_model.generate(
            torch.from_numpy(prompts), attention_mask=torch.ones(prompts.shape, dtype=torch.long),
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
            eos_token_id=None, pad_token_id=0)

    figures = {}
    for name, fn in (("dsmath_jax", ours), ("transformers", theirs)):
      if name == "dsmath_jax":
        fn(1), fn(args.new_tokens)                                    # compile both shapes
      else:
        fn(1)                                                         # warm up
      full = best_time(lambda: fn(args.new_tokens), args.repeats)
      prefill = best_time(lambda: fn(1), args.repeats)
      figures[name] = batch * (args.new_tokens - 1) / max(full - prefill, 1e-9)
    ratio = figures["dsmath_jax"] / figures["transformers"]
    print(f"batch {batch:3d}: dsmath_jax {figures['dsmath_jax']:8.1f} tok/s   "
          f"transformers {figures['transformers']:8.1f} tok/s   ratio {ratio:.2f}x", flush=True)
    results[f"batch{batch}"] = dict(figures, ratio=ratio)
  print(json.dumps(results))


if __name__ == "__main__":
  main()
