"""GGUF import: synthetic files against torch models and transformers' dequantizer; unsupported types."""
import gguf
import jax.numpy as jnp
import numpy as np
import pytest

from dsmath_jax.model import gguf as our_gguf
from dsmath_jax.model import llama, loading

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def llama_cpp_permute(weights, n_head, n_head_kv):
  """convert_hf_to_gguf.py LlamaModel.permute: rows of each head to llama.cpp's RoPE order."""
  if n_head_kv is not None and n_head != n_head_kv:
    n_head = n_head_kv
  return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
          .swapaxes(1, 2).reshape(weights.shape))


def write_gguf(path, model, *, qtype=gguf.GGMLQuantizationType.F32, arch="llama"):
  """A llama/qwen2/qwen3 GGUF as llama.cpp's converter writes it (norms and biases F32,
  matrices in `qtype`; q/k rows permuted for llama only; llama3 RoPE as rope_freqs.weight)."""
  c = model.config
  head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
  writer = gguf.GGUFWriter(str(path), arch)
  writer.add_block_count(c.num_hidden_layers)
  writer.add_context_length(c.max_position_embeddings)
  writer.add_embedding_length(c.hidden_size)
  writer.add_feed_forward_length(c.intermediate_size)
  writer.add_head_count(c.num_attention_heads)
  writer.add_head_count_kv(c.num_key_value_heads)
  writer.add_rope_freq_base(c.rope_parameters["rope_theta"])
  writer.add_layer_norm_rms_eps(c.rms_norm_eps)
  writer.add_rope_dimension_count(head_dim)
  writer.add_vocab_size(c.vocab_size)
  names = {"embed_tokens": "token_embd", "norm": "output_norm", "lm_head": "output",
           "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
           "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
           "post_attention_layernorm": "ffn_norm", "self_attn.q_norm": "attn_q_norm",
           "self_attn.k_norm": "attn_k_norm"}
  rope = c.rope_parameters
  if rope.get("rope_type") == "llama3":       # convert_hf_to_gguf.py LlamaModel.generate_extra_tensors
    scaling = (rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"],
               rope["original_max_position_embeddings"])
    writer.add_tensor("rope_freqs.weight", our_gguf.llama3_rope_divisors(head_dim, rope["rope_theta"], scaling))
  for name, tensor in model.state_dict().items():
    if name == "lm_head.weight" and c.tie_word_embeddings:
      continue
    weight = tensor.detach().float().numpy()
    suffix = "bias" if name.endswith(".bias") else "weight"
    parts = name.removeprefix("model.").removesuffix(f".{suffix}").split(".")
    if parts[0] == "layers":
      out = f"blk.{parts[1]}.{names['.'.join(parts[2:])]}.{suffix}"
    else:
      out = f"{names[parts[0]]}.{suffix}"
    if arch != "llama":
      pass
    elif out.endswith("attn_q.weight"):
      weight = llama_cpp_permute(weight, c.num_attention_heads, c.num_attention_heads)
    elif out.endswith("attn_k.weight"):
      weight = llama_cpp_permute(weight, c.num_attention_heads, c.num_key_value_heads)
    if weight.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
      writer.add_tensor(out, weight)
    else:
      writer.add_tensor(out, gguf.quants.quantize(weight, qtype), raw_dtype=qtype)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()


def tiny_model(*, kv_heads, tie, seed=0, family="llama"):
  torch.manual_seed(seed)
  shape = dict(vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=kv_heads, intermediate_size=96, rms_norm_eps=1e-5,
               max_position_embeddings=64, tie_word_embeddings=tie, initializer_range=0.15)
  rope = dict(rope_type="default", rope_theta=20000.0)
  if family == "llama3":      # Llama-3.1's released scaling (llama.cpp assumes 1/4/8192 too)
    rope = dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                high_freq_factor=4.0, original_max_position_embeddings=8192)
  config_class, model_class = {
      "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
      "llama3": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
      "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
      "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM)}[family]
  if family != "qwen2":
    shape["head_dim"] = 16
  model = model_class(config_class(**shape, rope_parameters=rope)).eval()
  with torch.no_grad():                    # non-trivial norms and biases, so a swap shows
    for name, p in model.named_parameters():
      if name.endswith("norm.weight"):
        p.copy_(1.0 + 0.3 * torch.randn_like(p))
      elif name.endswith("bias"):
        p.copy_(0.5 * torch.randn_like(p))
  return model


@pytest.mark.parametrize("kv_heads,tie", [(2, False), (4, True)])
def test_f32_gguf_logits_match_the_torch_model(kv_heads, tie, tmp_path):
  """The q/k rows llama.cpp permutes come back: logits equal the unpermuted HF model's."""
  model = tiny_model(kv_heads=kv_heads, tie=tie)
  write_gguf(tmp_path / "m.gguf", model)
  config, params, tokenizer = loading.load_pretrained(str(tmp_path / "m.gguf"))
  assert tokenizer is None and config.tie_embeddings == tie and config.num_kv_heads == kv_heads
  tokens = np.random.default_rng(0).integers(0, 64, (2, 10))
  with torch.no_grad():
    expected = model(torch.tensor(tokens)).logits.numpy()
  logits = np.asarray(llama.Transformer(config).apply({"params": params}, jnp.asarray(tokens)))
  print(f"GGUF F32 kv_heads={kv_heads} tie={tie}: max |logit gap| {np.abs(logits - expected).max():.2e}")
  np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family,arch,tie", [("qwen2", "qwen2", True), ("qwen3", "qwen3", False),
                                             ("llama3", "llama", False)])
def test_family_gguf_logits_match_the_torch_model(family, arch, tie, tmp_path):
  """qwen2 (biases, unpermuted q/k), qwen3 (q/k norms), llama with Llama-3's rope_freqs."""
  model = tiny_model(kv_heads=2, tie=tie, family=family)
  write_gguf(tmp_path / "m.gguf", model, arch=arch)
  config, params, _ = loading.load_pretrained(str(tmp_path / "m.gguf"))
  assert (config.qkv_bias, config.qk_norm) == (family == "qwen2", family == "qwen3")
  assert config.rope_scaling == ((8.0, 1.0, 4.0, 8192) if family == "llama3" else None)
  tokens = np.random.default_rng(0).integers(0, 64, (2, 10))
  with torch.no_grad():
    expected = model(torch.tensor(tokens)).logits.numpy()
  logits = np.asarray(llama.Transformer(config).apply({"params": params}, jnp.asarray(tokens)))
  print(f"GGUF F32 {family}: max |logit gap| {np.abs(logits - expected).max():.2e}")
  np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_gguf_rope_freqs_that_are_not_llama3_are_rejected(tmp_path):
  model = tiny_model(kv_heads=2, tie=False, family="llama3")
  write_gguf(tmp_path / "m.gguf", model)
  checkpoint = our_gguf.GGUFCheckpoint(str(tmp_path / "m.gguf"))
  assert checkpoint.config_fields()["rope_scaling"] == (8.0, 1.0, 4.0, 8192)
  original_get = checkpoint.get
  checkpoint.get = lambda name: original_get(name) * (1.5 if name == our_gguf.ROPE_FREQS else 1)
  with pytest.raises(ValueError, match="rope_freqs.weight holds RoPE divisors that are not Llama-3's"):
    checkpoint.config_fields()


@pytest.mark.parametrize("qtype", ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1"])
def test_quantized_tensors_equal_transformers_dequantization(qtype, tmp_path):
  model = tiny_model(kv_heads=2, tie=False)
  write_gguf(tmp_path / "m.gguf", model, qtype=gguf.GGMLQuantizationType[qtype])
  checkpoint = our_gguf.GGUFCheckpoint(str(tmp_path / "m.gguf"))
  reader = gguf.GGUFReader(str(tmp_path / "m.gguf"))
  tensor = next(t for t in reader.tensors if t.name == "blk.1.ffn_down.weight")
  assert tensor.tensor_type.name == qtype
  ours = checkpoint.get("blk.1.ffn_down.weight")                       # [out, in] = [64, 96]
  assert ours.shape == (64, 96)
  raw = np.asarray(tensor.data)
  if qtype == "F16":
    expected = raw.astype(np.float32)
  elif qtype == "BF16":      # bfloat16 = the high 16 bits of a float32
    expected = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(64, 96)
  else:
    from transformers.integrations.gguf import dequant
    flat = torch.from_numpy(raw.reshape(-1).view(np.uint8).copy())
    expected = dequant.dequantize(flat, int(tensor.tensor_type)).numpy().reshape(64, 96)
  np.testing.assert_array_equal(ours, expected)
  original = model.model.layers[1].mlp.down_proj.weight.detach().numpy()
  tolerance = {"F16": 1e-3, "BF16": 1e-2, "Q8_0": 2e-2, "Q4_0": 0.2, "Q4_1": 0.2}[qtype]
  assert np.abs(ours - original).max() < tolerance * np.abs(original).max()


@pytest.mark.parametrize("qtype", ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
def test_k_quants_equal_transformers_dequantization(qtype, tmp_path):
  """Random blocks (no numpy K-quantizer exists) with finite fp16 scales, both dequantizers."""
  kind = gguf.GGMLQuantizationType[qtype]
  block_size, block_bytes = gguf.GGML_QUANT_SIZES[kind]
  rng = np.random.default_rng(0)
  raw = rng.integers(0, 256, (4, 2 * block_bytes), dtype=np.uint8)     # 4 rows of 512 values
  halves = raw.view(np.uint16)
  halves[halves & 0x7C00 == 0x7C00] &= 0x3FFF                          # no inf/nan fp16 anywhere
  writer = gguf.GGUFWriter(str(tmp_path / "k.gguf"), "llama")
  writer.add_tensor("blk.0.ffn_up.weight", raw, raw_dtype=kind)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  ours = our_gguf.GGUFCheckpoint(str(tmp_path / "k.gguf")).get("blk.0.ffn_up.weight")
  from transformers.integrations.gguf import dequant
  expected = dequant.dequantize(torch.from_numpy(raw.reshape(-1).copy()), int(kind)).numpy()
  np.testing.assert_allclose(ours, expected.reshape(4, 2 * block_size), rtol=1e-6, atol=1e-6)


def test_unsupported_quantization_is_named(tmp_path):
  model = tiny_model(kv_heads=2, tie=False)
  write_gguf(tmp_path / "m.gguf", model, qtype=gguf.GGMLQuantizationType.Q5_0)
  with pytest.raises(ValueError, match=r"token_embd\.weight uses quantization Q5_0"):
    loading.load_pretrained(str(tmp_path / "m.gguf"))


def test_not_a_gguf_file_says_so(tmp_path):
  (tmp_path / "bad.gguf").write_bytes(b"NOPE" + bytes(64))
  with pytest.raises(ValueError, match="not a GGUF file"):
    loading.load_pretrained(str(tmp_path / "bad.gguf"))
