"""HF Llama/Qwen2/Qwen3 (and Llama-3.x llama3 RoPE) checkpoints <-> our params, against
transformers (torch CPU, test only)."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file

from configs import common

from dsmath_jax import sharding
from dsmath_jax.model import hf, llama, loading

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RULES = common.LOGICAL_AXIS_RULES


# Llama-3.1's released rope scaling, with original_max_position_embeddings shrunk to 64 so the
# test's short contexts straddle all three bands (kept / interpolated / stretched wavelengths).
LLAMA3_ROPE = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=64)


def make_hf_model(directory, *, kv_heads, tie, max_shard_size=None, seed=0, family="llama"):
  """A random Llama/Qwen2/Qwen3/Llama-3 (llama3 rope) CausalLM saved by transformers'
  save_pretrained(safe_serialization=True)."""
  torch.manual_seed(seed)
  shape = dict(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=kv_heads, intermediate_size=112, rms_norm_eps=1e-5,
               max_position_embeddings=128, tie_word_embeddings=tie, initializer_range=0.15)
  rope = dict(rope_type="default", rope_theta=5000.0)
  if family == "llama3":
    rope = dict(LLAMA3_ROPE, rope_theta=5000.0)
  config_class, model_class = {
      "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
      "llama3": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
      "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
      "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM),
      "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM)}[family]
  if family != "qwen2":                   # Qwen2 derives head_dim = hidden / heads = 16
    shape["head_dim"] = 16
  if family == "mistral":                 # Mistral-7B-v0.2+: no sliding window = Llama-compatible
    shape["sliding_window"] = None
  config = config_class(**shape, rope_parameters=rope)
  model = model_class(config).eval()
  with torch.no_grad():                    # non-trivial norm scales and biases, so a swap shows
    for name, p in model.named_parameters():
      if name.endswith("norm.weight"):
        p.copy_(1.0 + 0.3 * torch.randn_like(p))
      elif name.endswith("bias"):
        p.copy_(0.5 * torch.randn_like(p))
  kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
  model.save_pretrained(directory, safe_serialization=True, **kwargs)
  return model


# (family, kv_heads, tied, also check cached decode): the cache path does not depend on tying, so
# two Llama cases cover it and the compile time of the other two is saved; every other family
# checks decode once (its switches sit on the cached path).
CASES = {"mha_untied": ("llama", 4, False, False), "gqa_untied": ("llama", 2, False, True),
         "mha_tied": ("llama", 4, True, True), "gqa_tied": ("llama", 2, True, False),
         "qwen2_gqa_tied": ("qwen2", 2, True, True), "qwen2_untied": ("qwen2", 4, False, False),
         "qwen3_gqa_tied": ("qwen3", 2, True, True),
         "llama3_rope_gqa": ("llama3", 2, False, True), "mistral_gqa": ("mistral", 2, False, False)}
SWITCHES = {"llama": (False, False, None), "mistral": (False, False, None), "qwen2": (True, False, None), "qwen3": (False, True, None),
            "llama3": (False, False, (8.0, 1.0, 4.0, 64))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_logits_and_cached_decode_match_transformers(case, tmp_path):
  family, kv_heads, tie, check_decode = CASES[case]
  reference = make_hf_model(tmp_path, kv_heads=kv_heads, tie=tie, family=family)
  config, params, _ = loading.load_pretrained(str(tmp_path))
  assert (config.num_kv_heads, config.tie_embeddings, config.rope_theta) == (kv_heads, tie, 5000.0)
  assert (config.qkv_bias, config.qk_norm, config.rope_scaling) == SWITCHES[family]
  # Positions up to 100 reach past original_max_position_embeddings=64 (llama3 case).
  tokens = np.random.default_rng(1).integers(0, 96, (2, 100 if family == "llama3" else 12))
  with torch.no_grad():
    expected = reference(torch.tensor(tokens)).logits.numpy()
  model = llama.Transformer(config)
  logits = np.asarray(model.apply({"params": params}, jnp.asarray(tokens)))
  print(f"{case}: max |logit gap| full forward {np.abs(logits - expected).max():.2e}")
  np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
  if not check_decode:
    return

  # Prefill 7 tokens, then one token at a time, against transformers' own cached decode.
  prefill = 7
  cache = llama.KVCache.init(config, batch=2, max_len=tokens.shape[1] + 4)
  step = jax.jit(lambda p, t, c: model.apply({"params": p}, t, cache=c))
  decoded = []
  step_logits, cache = step(params, jnp.asarray(tokens[:, :prefill]), cache)
  decoded.append(np.asarray(step_logits))
  for t in range(prefill, tokens.shape[1]):
    step_logits, cache = step(params, jnp.asarray(tokens[:, t:t + 1]), cache)
    decoded.append(np.asarray(step_logits))
  decoded = np.concatenate(decoded, axis=1)
  with torch.no_grad():
    out = reference(torch.tensor(tokens[:, :prefill]), use_cache=True)
    hf_steps, past = [out.logits.numpy()], out.past_key_values
    for t in range(prefill, tokens.shape[1]):
      out = reference(torch.tensor(tokens[:, t:t + 1]), past_key_values=past, use_cache=True)
      hf_steps.append(out.logits.numpy())
      past = out.past_key_values
  hf_decoded = np.concatenate(hf_steps, axis=1)
  print(f"{case}: max |logit gap| KV-cache decode {np.abs(decoded - hf_decoded).max():.2e}")
  np.testing.assert_allclose(decoded, hf_decoded, atol=1e-4, rtol=0)


def test_sharded_checkpoint_with_index_streams_onto_a_mesh(tmp_path):
  reference = make_hf_model(tmp_path, kv_heads=2, tie=False, max_shard_size="60KB")
  index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
  assert len(set(index["weight_map"].values())) > 2, "expected several shards"
  mesh = sharding.make_mesh(dict(data=1, fsdp=4, tensor=2))
  config, params, _ = loading.load_pretrained(str(tmp_path), mesh=mesh, rules=RULES)
  q = params["layers"]["self_attn"]["q_proj"]["kernel"]       # [layers, embed, q_heads]
  assert q.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor")
  assert q.addressable_shards[0].data.shape == (2, 16, 32)
  tokens = np.arange(24).reshape(2, 12) % 96
  with torch.no_grad():
    expected = reference(torch.tensor(tokens)).logits.numpy()
  logits = llama.Transformer(config).apply({"params": params}, jnp.asarray(tokens))
  np.testing.assert_allclose(np.asarray(logits), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family,tie", [("llama", False), ("llama", True), ("qwen2", True),
                                        ("qwen2", False), ("qwen3", True), ("llama3", False)])
def test_round_trip_is_bit_identical_and_transformers_loads_it(family, tie, tmp_path):
  make_hf_model(tmp_path / "in", kv_heads=2, tie=tie, seed=3, family=family)
  config, params, _ = loading.load_pretrained(str(tmp_path / "in"))
  hf.save_hf(str(tmp_path / "out"), config, params, max_shard_bytes=40_000)
  original = load_file(str(tmp_path / "in" / "model.safetensors"))
  written = {}
  for name in os.listdir(tmp_path / "out"):
    if name.endswith(".safetensors"):
      written.update(load_file(str(tmp_path / "out" / name)))
  assert sorted(written) == sorted(original)
  for name, array in original.items():
    assert written[name].dtype == array.dtype and np.array_equal(written[name], array), name
  assert (tmp_path / "out" / "model.safetensors.index.json").exists()
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "out")).eval()
  again = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "in")).eval()
  assert type(reloaded) is type(again), (type(reloaded), type(again))
  assert reloaded.config.rope_parameters == again.config.rope_parameters
  tokens = torch.tensor([[5, 9, 2, 77, 3] * 20])
  with torch.no_grad():
    assert torch.equal(reloaded(tokens).logits, again(tokens).logits)
  assert reloaded.config.num_key_value_heads == 2 and reloaded.config.tie_word_embeddings == tie


def test_bf16_checkpoint_keeps_its_dtype(tmp_path):
  model = make_hf_model(tmp_path / "f32", kv_heads=2, tie=False)
  model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16", safe_serialization=True)
  config, params, _ = loading.load_pretrained(str(tmp_path / "bf16"))
  assert config.param_dtype == "bfloat16" and config.dtype == "bfloat16"
  embed = params["embed_tokens"]["embedding"]
  assert embed.dtype == jnp.bfloat16
  expected = model.model.embed_tokens.weight.detach().float().numpy()
  np.testing.assert_array_equal(np.asarray(embed, np.float32), expected)
  config32, params32, _ = loading.load_pretrained(str(tmp_path / "bf16"), param_dtype="float32")
  assert params32["norm"]["scale"].dtype == jnp.float32 and config32.dtype == "float32"


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path):
  make_hf_model(tmp_path, kv_heads=2, tie=False)
  preset = llama.LlamaConfig(vocab_size=96, hidden_size=64, num_layers=2, num_heads=4,
                             num_kv_heads=4, head_dim=16, mlp_dim=112)
  with pytest.raises(ValueError) as error:
    loading.load_pretrained(str(tmp_path), config=preset)
  message = str(error.value)
  assert "model.layers.0.self_attn.k_proj.weight" in message, message
  assert "(32, 64)" in message and "(64, 64)" in message, message


def test_extra_and_missing_tensors_are_named(tmp_path):
  make_hf_model(tmp_path, kv_heads=2, tie=False)
  one_layer = llama.LlamaConfig(vocab_size=96, hidden_size=64, num_layers=1, num_heads=4,
                                num_kv_heads=2, head_dim=16, mlp_dim=112)
  with pytest.raises(ValueError, match=r"model\.layers\.1\."):
    loading.load_pretrained(str(tmp_path), config=one_layer)
  three_layers = llama.LlamaConfig(vocab_size=96, hidden_size=64, num_layers=3, num_heads=4,
                                   num_kv_heads=2, head_dim=16, mlp_dim=112)
  with pytest.raises(KeyError, match=r"has no tensor 'model\.layers\.2\."):
    loading.load_pretrained(str(tmp_path), config=three_layers)


def test_unsupported_hf_configs_say_why(tmp_path):
  base = json.loads(json.dumps(hf.config_to_hf(llama.LlamaConfig(
      vocab_size=8, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=2, head_dim=4,
      mlp_dim=8))))
  with pytest.raises(ValueError, match="model_type='gemma'.*supported"):
    hf.config_from_hf(dict(base, model_type="gemma", architectures=["GemmaForCausalLM"]))
  with pytest.raises(ValueError, match="attention_bias"):
    hf.config_from_hf(dict(base, attention_bias=True))
  with pytest.raises(ValueError, match="'yarn'"):
    hf.config_from_hf(dict(base, rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 1.0}))
  with pytest.raises(ValueError, match="'llama3' without 'low_freq_factor'"):
    hf.config_from_hf(dict(base, rope_parameters={"rope_type": "llama3", "factor": 8.0, "rope_theta": 1.0}))
  # Sliding windows: rejected where a layer actually uses one, accepted where they are off.
  qwen = dict(base, model_type="qwen2", use_sliding_window=False, sliding_window=4096,
              max_window_layers=28)
  assert hf.config_from_hf(qwen)["qkv_bias"]
  with pytest.raises(ValueError, match="sliding-window.*use_sliding_window=true"):
    hf.config_from_hf(dict(qwen, use_sliding_window=True, max_window_layers=0))
  with pytest.raises(ValueError, match="sliding-window.*sliding_attention"):
    hf.config_from_hf(dict(qwen, layer_types=["sliding_attention"]))
  mistral = dict(base, model_type="mistral", sliding_window=None)
  assert not hf.config_from_hf(mistral)["qkv_bias"]
  with pytest.raises(ValueError, match="sliding_window=4096 < max_position_embeddings"):
    hf.config_from_hf(dict(mistral, sliding_window=4096, max_position_embeddings=32768))


def test_transformers_own_sliding_window_configs_are_rejected(tmp_path):
  """Configs as transformers writes them (not hand-made dicts): Qwen2 with its window on."""
  config = transformers.Qwen2Config(
      vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
      num_key_value_heads=2, intermediate_size=112, use_sliding_window=True, sliding_window=8,
      max_window_layers=1)
  with pytest.raises(ValueError, match="sliding-window"):
    hf.config_from_hf(config.to_dict())
  off = transformers.Qwen2Config(vocab_size=96, hidden_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, intermediate_size=112)
  assert hf.config_from_hf(off.to_dict())["qkv_bias"]


@pytest.mark.parametrize("preset,published", [
    ("qwen2_5_math_1_5b", 1_543_714_304), ("qwen2_5_7b", 7_615_616_512),
    ("llama3_8b", 8_030_261_248), ("deepseek_math_7b", 6_910_365_696)])
def test_family_presets_have_the_published_parameter_counts(preset, published):
  """The counts Hugging Face lists for the released safetensors (Qwen2.5 "1.54B"/"7.62B",
  Llama-3.1 "8.03B", DeepSeekMath "6.91B"), not numbers derived from our presets."""
  config = llama.LlamaConfig.from_config(common.MODELS[preset])
  assert config.num_params == published
  shapes, _ = loading.abstract_params(config)
  assert sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes)) == published
  assert llama.LlamaConfig.from_config(hf.config_from_hf(hf.config_to_hf(config))) == config
