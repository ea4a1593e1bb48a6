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


def write_gguf(path, model, *, qtype=gguf.GGMLQuantizationType.F32):
  """A llama GGUF as llama.cpp's converter writes it (norms F32, matrices in `qtype`)."""
  c = model.config
  writer = gguf.GGUFWriter(str(path), "llama")
  writer.add_block_count(c.num_hidden_layers)
  writer.add_context_length(c.max_position_embeddings)
  writer.add_embedding_length(c.hidden_size)
  writer.add_feed_forward_length(c.intermediate_size)
  writer.add_head_count(c.num_attention_heads)
  writer.add_head_count_kv(c.num_key_value_heads)
  writer.add_rope_freq_base(c.rope_parameters["rope_theta"])
  writer.add_layer_norm_rms_eps(c.rms_norm_eps)
  writer.add_rope_dimension_count(c.head_dim)
  writer.add_vocab_size(c.vocab_size)
  names = {"embed_tokens": "token_embd", "norm": "output_norm", "lm_head": "output",
           "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
           "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
           "post_attention_layernorm": "ffn_norm"}
  for name, tensor in model.state_dict().items():
    if name == "lm_head.weight" and c.tie_word_embeddings:
      continue
    weight = tensor.detach().float().numpy()
    parts = name.removeprefix("model.").removesuffix(".weight").split(".")
    if parts[0] == "layers":
      out = f"blk.{parts[1]}.{names['.'.join(parts[2:])]}.weight"
    else:
      out = f"{names[parts[0]]}.weight"
    if out.endswith("attn_q.weight"):
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


def tiny_model(*, kv_heads, tie, seed=0):
  torch.manual_seed(seed)
  config = transformers.LlamaConfig(
      vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
      num_key_value_heads=kv_heads, head_dim=16, intermediate_size=96, rope_theta=20000.0,
      rms_norm_eps=1e-5, max_position_embeddings=64, tie_word_embeddings=tie,
      initializer_range=0.15)
  return transformers.LlamaForCausalLM(config).eval()


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
