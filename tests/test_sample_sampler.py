"""The sampler against transformers' generate, the training forward pass and hand-computed softmaxes."""
import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from dsmath_jax import sharding
from dsmath_jax.model import llama
from dsmath_jax.sample import sampler
from dsmath_jax.tokenizer import ByteTokenizer

TINY = llama.LlamaConfig(vocab_size=259, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                         head_dim=8, mlp_dim=64)


@functools.lru_cache(maxsize=None)
def tiny_params(config=TINY, scale: float = 1.0, seed: int = 0):
  """Random params; `scale` multiplies them so that greedy choices have clear margins."""
  params = nn.unbox(llama.init_params(config, jax.random.key(seed)))
  return jax.tree.map(lambda x: x * scale, params)


@functools.lru_cache(maxsize=None)
def _forward(config):
  return jax.jit(lambda params, tokens: llama.Transformer(config).apply({"params": params}, tokens))


def training_logprobs(params, config, prompt, completion, length: int = 48):
  """log_softmax of the no-cache forward pass over prompt + completion, at the completion tokens.

  Right-padded to `length` (causal: padding after a token never changes its logits) so one
  compiled forward serves every sequence.
  """
  tokens = np.zeros((1, length), np.int32)
  tokens[0, :len(prompt) + len(completion)] = list(prompt) + list(completion)
  logits = _forward(config)(params, tokens)[0]
  logprobs = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1))
  start = len(prompt) - 1
  return logprobs[np.arange(start, start + len(completion)), completion]


def ragged_prompts(seed=0, lengths=(5, 14, 1, 9)):
  rng = np.random.default_rng(seed)
  return [rng.integers(3, 259, size=n).tolist() for n in lengths]


# ----------------------------------------------------------------------- against transformers

@pytest.mark.parametrize("tie,kv_heads", [(False, 2), (True, 4)])
def test_greedy_matches_transformers_generate(tmp_path, tie, kv_heads):
  """Random small Llama built by transformers, imported by load_pretrained: same greedy tokens."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from dsmath_jax.model.loading import load_pretrained
  torch.manual_seed(0)
  hf_config = transformers.LlamaConfig(
      vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=kv_heads, head_dim=8, rope_theta=500.0,
      rms_norm_eps=1e-5, tie_word_embeddings=tie, initializer_range=0.2,
      max_position_embeddings=256)
  hf_model = transformers.LlamaForCausalLM(hf_config).eval()
  hf_model.save_pretrained(tmp_path)
  config, params, _ = load_pretrained(str(tmp_path))
  prompts = [np.random.default_rng(i).integers(0, 97, size=n).tolist()
             for i, n in enumerate((3, 11, 6))]
  new_tokens = 20
  ours = sampler.generate(params, config, None, prompts,
                          sampler.SamplingParams(max_new_tokens=new_tokens, greedy=True), 0)
  for prompt, completion in zip(prompts, ours):
    with torch.no_grad():
      theirs = hf_model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens,
                                 do_sample=False, eos_token_id=None, pad_token_id=0)
    assert completion.token_ids == theirs[0, len(prompt):].tolist()
    assert completion.finish_reason == "length"


def test_decoding_across_cache_segments_matches_transformers_and_training(tmp_path):
  """150 new tokens cross the cache's growth points (64, 128): same greedy tokens as
  transformers, log-probs equal to the training forward pass."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from dsmath_jax.model.loading import load_pretrained
  assert sampler.segment_ends(150) == [64, 128, 150]
  torch.manual_seed(1)
  hf_config = transformers.LlamaConfig(
      vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=2, head_dim=8, rope_theta=500.0,
      rms_norm_eps=1e-5, initializer_range=0.2, max_position_embeddings=256)
  hf_model = transformers.LlamaForCausalLM(hf_config).eval()
  hf_model.save_pretrained(tmp_path)
  config, params, _ = load_pretrained(str(tmp_path))
  prompts = [np.random.default_rng(10 + i).integers(0, 97, size=n).tolist() for i, n in enumerate((4, 19))]
  new_tokens = 150
  ours = sampler.generate(params, config, None, prompts,
                          sampler.SamplingParams(max_new_tokens=new_tokens, greedy=True), 0)
  for prompt, completion in zip(prompts, ours):
    with torch.no_grad():
      theirs = hf_model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens,
                                 do_sample=False, eos_token_id=None, pad_token_id=0)
    assert completion.token_ids == theirs[0, len(prompt):].tolist()
    gap = np.abs(np.array(completion.logprobs)
                 - training_logprobs(params, config, prompt, completion.token_ids, length=192))
    assert gap.max() < 2e-5, gap.max()


def test_segment_ends():
  assert sampler.segment_ends(16) == [16]
  assert sampler.segment_ends(64) == [64]
  assert sampler.segment_ends(65) == [64, 65]
  assert sampler.segment_ends(1024) == [64, 128, 256, 512, 1024]


# ----------------------------------------------------------------------- padding, log-probs, seeds

def test_ragged_left_padded_batch_equals_each_prompt_alone():
  params = tiny_params(scale=4.0)
  prompts = ragged_prompts()
  sampling = sampler.SamplingParams(max_new_tokens=12, greedy=True)
  batch = sampler.generate(params, TINY, None, prompts, sampling, 0)
  for i, prompt in enumerate(prompts):
    alone = sampler.generate(params, TINY, None, [prompt], sampling, 0)[0]
    assert batch[i].token_ids == alone.token_ids
    np.testing.assert_allclose(batch[i].logprobs, alone.logprobs, atol=1e-5)
  # Sampled rows draw from fold_in(seed, row_id): the same row id gives the same sample alone.
  sampling = sampler.SamplingParams(max_new_tokens=12, temperature=1.0, top_p=0.9)
  batch = sampler.generate_rows(params, TINY, prompts, sampling, 7)
  for i, prompt in enumerate(prompts):
    alone = sampler.generate_rows(params, TINY, [prompt], sampling, 7, row_ids=[i])[0]
    assert batch[i].token_ids == alone.token_ids


def test_logprobs_equal_training_forward_pass():
  """pi_old from the sampler == log_softmax of the trainer's forward pass (float32 CPU)."""
  params = tiny_params()
  prompts = ragged_prompts(seed=1)
  sampling = sampler.SamplingParams(max_new_tokens=16, temperature=0.7, top_p=0.9, top_k=50,
                                    num_samples=2)
  completions = sampler.generate(params, TINY, None, prompts, sampling, 3)
  gaps = [np.abs(np.array(c.logprobs) - training_logprobs(params, TINY, c.prompt_ids, c.token_ids))
          for c in completions]
  max_gap = max(g.max() for g in gaps)
  print(f"max |sampler logprob - training logprob| = {max_gap:.2e}")
  assert max_gap < 2e-5
  assert [c.prompt_index for c in completions] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_seed_determinism_and_chunking():
  params = tiny_params()
  prompts = ragged_prompts(seed=2)
  sampling = sampler.SamplingParams(max_new_tokens=8, num_samples=3)
  first = sampler.generate(params, TINY, None, prompts, sampling, jax.random.key(5))
  again = sampler.generate(params, TINY, None, prompts, sampling, jax.random.key(5), batch_size=5)
  other = sampler.generate(params, TINY, None, prompts, sampling, jax.random.key(6))
  assert [c.token_ids for c in first] == [c.token_ids for c in again]
  assert [c.token_ids for c in first] != [c.token_ids for c in other]
  # The samples of one prompt differ from each other.
  assert len({tuple(c.token_ids) for c in first[:3]}) > 1


def test_sharded_mesh_gives_the_same_tokens():
  """rows over (data, fsdp), heads over tensor on 8 simulated devices == one device."""
  from configs import common
  config = dataclasses.replace(TINY, vocab_size=264)               # divides over tensor=2
  params = tiny_params(config, scale=4.0)
  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2))
  prompts = ragged_prompts(seed=3, lengths=(4, 9, 2))
  sampling = sampler.SamplingParams(max_new_tokens=10, greedy=True, num_samples=2)
  one = sampler.generate(params, config, None, prompts, sampling, 0)
  many = sampler.generate(params, config, None, prompts, sampling, 0, mesh=mesh,
                          rules=common.LOGICAL_AXIS_RULES)
  assert [c.token_ids for c in one] == [c.token_ids for c in many]
  np.testing.assert_allclose(np.concatenate([c.logprobs for c in one]),
                             np.concatenate([c.logprobs for c in many]), atol=1e-5)


# ----------------------------------------------------------------------- EOS and stop strings

def test_eos_and_stop_strings_end_rows_at_the_right_token():
  params, tokenizer = tiny_params(scale=4.0), ByteTokenizer()
  prompt = tokenizer.encode("Question: 1+1=")
  free = sampler.generate(params, TINY, tokenizer, [prompt],
                          sampler.SamplingParams(max_new_tokens=24, greedy=True), 0)[0]
  tokens = free.token_ids
  assert free.finish_reason == "length" and len(tokens) == 24
  # EOS: pretend the 6th generated token is EOS; the row keeps it and stops there.
  eos = sampler.generate(params, TINY, tokenizer, [prompt],
                         sampler.SamplingParams(max_new_tokens=24, greedy=True), 0,
                         eos_ids=[tokens[5]])[0]
  first = tokens.index(tokens[5])
  assert eos.finish_reason == "eos" and eos.token_ids == tokens[:first + 1]
  # Stop string: an ASCII 3-byte piece of the free text; the row ends at the byte completing it.
  text = bytes(t - 3 for t in tokens)
  start = next(i for i in range(4, len(text) - 3) if all(b < 128 for b in text[i:i + 3]))
  piece = text[start:start + 3]
  end = text.find(piece) + len(piece)
  stop = sampler.generate(params, TINY, tokenizer, [prompt],
                          sampler.SamplingParams(max_new_tokens=24, greedy=True,
                                                 stop_strings=("never here", piece.decode())), 0)[0]
  assert stop.finish_reason == "stop" and stop.token_ids == tokens[:end]
  assert stop.text.endswith(piece.decode()) and len(stop.token_ids) < 24


def test_stop_table_matches_brute_force_on_a_bpe_vocabulary():
  """KMP token automaton == `stop in decode(tokens)` for random multi-token sequences."""
  tokenizers = pytest.importorskip("tokenizers")
  from tokenizers import models, pre_tokenizers, decoders, trainers
  backend = tokenizers.Tokenizer(models.BPE())
  backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  backend.decoder = decoders.ByteLevel()
  corpus = ["```python\nprint(1)\n```\n```output\n1\n```\n", "output ``` `` outputs out put"] * 50
  backend.train_from_iterator(corpus, trainers.BpeTrainer(
      vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["</s>"]))
  from dsmath_jax.tokenizer import HFTokenizer
  tokenizer = HFTokenizer(None, backend=backend, special_tokens={"eos": "</s>"})
  stop = "```output"
  table, matched = sampler.stop_tables(tokenizer, tokenizer.vocab_size, [stop, "\n1\n"])
  pieces = [tokenizer.encode(s) for s in ["```", "output", "`", "``", "out", "put", "\n", "x",
                                          "```output", "1"]]
  rng = np.random.default_rng(0)
  checked = 0
  for _ in range(300):
    tokens = [t for i in rng.integers(0, len(pieces), size=8) for t in pieces[i]]
    state, first_hit = 0, None
    for n, token in enumerate(tokens):
      state = table[0, state, token]
      if state == matched[0] and first_hit is None:
        first_hit = n
    expected = next((n for n in range(len(tokens)) if stop in tokenizer.decode(tokens[:n + 1])), None)
    assert first_hit == expected, (tokens, tokenizer.decode(tokens))
    checked += expected is not None
  assert checked > 20


# ----------------------------------------------------------------------- sampling distribution

def _filtered_probs(logits, temperature, top_p, top_k):
  """The target distribution, by hand: softmax(logits / T) restricted to top-k, then top-p."""
  scaled = np.asarray(logits, np.float64) / temperature
  order = np.argsort(-scaled)
  probs = np.exp(scaled - scaled.max())
  probs /= probs.sum()
  keep = np.zeros_like(probs, bool)
  mass = 0.0
  for rank, token in enumerate(order):
    if (top_k and rank >= top_k) or mass >= top_p:
      break
    keep[token] = True
    mass += probs[token]
  probs = np.where(keep, probs, 0.0)
  return probs / probs.sum()


@pytest.mark.parametrize("temperature,top_p,top_k", [(1.0, 1.0, 0), (0.7, 0.8, 0), (1.3, 1.0, 3)])
def test_sampled_frequencies_match_softmax(temperature, top_p, top_k):
  """End to end on a vocabulary of 8: first-token frequencies vs the hand-computed distribution."""
  config = llama.LlamaConfig(vocab_size=8, hidden_size=16, num_layers=1, num_heads=2,
                             num_kv_heads=1, head_dim=8, mlp_dim=32)
  params = dict(tiny_params(config, seed=1))
  params["lm_head"] = {"kernel": params["lm_head"]["kernel"] * 15.0}   # logits of order 1
  prompt = [3, 1, 4]
  logits = np.asarray(llama.Transformer(config).apply({"params": params}, np.array([prompt]))[0, -1])
  expected = _filtered_probs(logits, temperature, top_p, top_k)
  assert expected.max() < 0.9 and (expected > 0.02).sum() >= 3     # a non-degenerate test
  draws = 4000
  sampling = sampler.SamplingParams(max_new_tokens=1, temperature=temperature, top_p=top_p,
                                    top_k=top_k, num_samples=draws)
  completions = sampler.generate(params, config, None, [prompt], sampling, 11)
  counts = np.bincount([c.token_ids[0] for c in completions], minlength=8)
  assert counts[expected == 0].sum() == 0                          # filtered tokens never appear
  support = expected > 0
  _, p_value = scipy.stats.chisquare(counts[support], draws * expected[support])
  assert p_value > 1e-3, (counts, draws * expected)


def test_bucket_lengths():
  assert [sampler.bucket_length(n) for n in (1, 16, 17, 33, 64, 65, 130)] == [16, 16, 32, 64, 64, 128, 192]
