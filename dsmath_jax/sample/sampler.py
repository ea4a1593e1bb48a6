"""Batched sampling with a static KV cache: the generator behind GRPO (paper §4.2) and evaluation (§2.2, §3.2).

One jitted function per (rows, prompt bucket, max_new_tokens, sampling mode) prefills
left-padded prompts into a `KVCache`, then decodes one token per row per step inside
`lax.while_loop`s that exit as soon as every row is done. Decoding runs in segments
(`segment_ends`: 64, 128, 256, ... new tokens) and the cache grows by one segment at a
time, so a step's attention reads at most twice the filled slots (plus the prompt) instead
of `bucket + max_new_tokens`: its cost follows the tokens generated, not the budget.
Prompt lengths are bucketed (`bucket_length`) and the last chunk of rows is padded to the
chunk size, so GRPO steps and evaluation batches reuse one compiled program.

Per-token log-probabilities are `log_softmax` of the RAW logits (no temperature, no top-p)
at the sampled token: exactly what the training forward pass computes for the same tokens,
so GRPO can use them as pi_old.

Stop strings are detected on device, exactly, whatever the tokenization: each stop string
becomes a Knuth-Morris-Pratt automaton over bytes, folded into a table
`[state, token] -> state` that advances by a token's whole text in one gather. The
tool-integrated loop (tool_loop.py) relies on it to stop at "```output".

Randomness: row r of a call draws from `fold_in(fold_in(rng, row_id), step)`, so a row's
sample depends on the seed and its index only, never on batch padding or chunking.
"""
import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dsmath_jax import sharding, xla_cpu
from dsmath_jax.model import llama

FINISH_REASONS = ("", "eos", "stop", "length")   # device codes 0..3; 0 = still running


@dataclasses.dataclass(frozen=True)
class SamplingParams:
  """How to sample. `greedy` (or temperature <= 0) takes the argmax and ignores temperature,
  top-p and top-k; `top_k=0` means no top-k."""
  max_new_tokens: int
  temperature: float = 1.0
  top_p: float = 1.0
  top_k: int = 0
  num_samples: int = 1
  stop_strings: tuple[str, ...] = ()
  greedy: bool = False


class Completion(NamedTuple):
  """One sampled continuation. Lists are aligned: one entry per generated token."""
  prompt_index: int
  prompt_ids: list[int]
  token_ids: list[int]        # generated ids (tool-output ids included for tool runs; EOS kept)
  logprobs: list[float]       # log_softmax(raw logits)[token]; 0.0 at tool-output tokens
  tool_mask: list[int]        # 1 at tokens inserted from tool output (no loss)
  finish_reason: str          # "eos" | "stop" | "length" | "tool_rounds"
  text: str                   # decode(token_ids); includes the stop string when one ended it


class RowResult(NamedTuple):
  """What one device row produced (tool_loop.py assembles rounds of these)."""
  token_ids: list[int]
  logprobs: list[float]
  finish_reason: str
  stop_index: int             # which stop string ended the row, -1 if none


def bucket_length(length: int) -> int:
  """Prompt slots for a prompt of `length` tokens: a power of two up to 64, then multiples of 64."""
  if length <= 64:
    return max(16, 1 << max(0, length - 1).bit_length())
  return -(-length // 64) * 64


def segment_ends(max_new_tokens: int, first: int = 64) -> list[int]:
  """Token counts at which the decode loop grows its cache: first, 2 x first, ... and
  max_new_tokens. Doubling keeps the slots a step reads within twice the filled ones with
  log2(max_new_tokens / first) + 1 compiled loop bodies."""
  ends, end = [], first
  while end < max_new_tokens:
    ends.append(end)
    end *= 2
  return ends + [max_new_tokens]


# ------------------------------------------------------------------------------- stop strings

def _kmp_automaton(pattern: bytes) -> np.ndarray:
  """[len+1, 256] int32: the KMP automaton of `pattern`; state len (matched) is absorbing."""
  m = len(pattern)
  delta = np.zeros((m + 1, 256), np.int32)
  delta[0, pattern[0]] = 1
  restart = 0
  for j in range(1, m):
    delta[j] = delta[restart]
    delta[j, pattern[j]] = j + 1
    restart = delta[restart, pattern[j]]
  delta[m] = m
  return delta


@functools.lru_cache(maxsize=4)
def token_bytes(tokenizer, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
  """UTF-8 bytes of every token as it reads inside a text: ([vocab, longest] uint8, [vocab] lengths).

  Decoded after an anchor token, so SentencePiece's leading space survives; ids the
  tokenizer does not know (a model's padded vocabulary) and special tokens are empty.
  """
  anchor = tokenizer.encode("a")
  anchor_text = tokenizer.decode(anchor)
  pieces = []
  for token in range(vocab_size):
    if token >= tokenizer.vocab_size:
      pieces.append(b"")
      continue
    text = tokenizer.decode(anchor + [token])
    text = text[len(anchor_text):] if text.startswith(anchor_text) else tokenizer.decode([token])
    pieces.append(text.encode("utf-8"))
  lengths = np.array([len(p) for p in pieces], np.int32)
  table = np.zeros((vocab_size, max(1, lengths.max())), np.uint8)
  for token, piece in enumerate(pieces):
    table[token, :len(piece)] = np.frombuffer(piece, np.uint8)
  return table, lengths


def stop_tables(tokenizer, vocab_size: int, stop_strings: Sequence[str]):
  """([stops, states, vocab] int32 next-state table, [stops] matched state) for on-device stops.

  Entry [i, s, t] is the state of stop string i's automaton after reading token t's text
  from state s. With no stop strings, one dummy automaton that never matches is returned.
  """
  patterns = [s.encode("utf-8") for s in stop_strings if s]
  if not patterns or tokenizer is None:
    return np.zeros((1, 1, vocab_size), np.int32), np.full((1,), -1, np.int32)
  table_bytes, lengths = token_bytes(tokenizer, vocab_size)
  num_states = max(len(p) for p in patterns) + 1
  tables = np.zeros((len(patterns), num_states, vocab_size), np.int32)
  for i, pattern in enumerate(patterns):
    delta, matched = _kmp_automaton(pattern), len(pattern)
    state = np.broadcast_to(np.arange(matched + 1, dtype=np.int32)[:, None],
                            (matched + 1, vocab_size)).copy()        # [states, vocab]
    for j in range(table_bytes.shape[1]):
      has_byte = j < lengths                                          # [vocab]
      moved = delta[state, table_bytes[None, :, j]]
      state = np.where(has_byte[None] & (state != matched), moved, state)
    tables[i, :matched + 1] = state
  return tables, np.array([len(p) for p in patterns], np.int32)


# ------------------------------------------------------------------------------- device side

def sample_from_logits(logits, keys, temperature, top_p, top_k, *, greedy: bool, filtered: bool):
  """Next tokens [rows] from float32 logits [rows, vocab].

  Temperature scales the logits; top-k keeps the k largest; top-p keeps the smallest set
  of most likely tokens whose probability reaches top_p (the token that crosses it is
  kept). `filtered=False` skips the sort when top_p >= 1 and top_k == 0.
  """
  if greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  scaled = logits.astype(jnp.float32) / temperature
  if filtered:
    sorted_desc = -jnp.sort(-scaled, axis=-1)                         # [rows, vocab]
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    rank = jnp.arange(scaled.shape[-1])
    keep = (mass_before < top_p) & ((top_k <= 0) | (rank < top_k))
    threshold = jnp.min(jnp.where(keep, sorted_desc, jnp.inf), axis=-1, keepdims=True)
    scaled = jnp.where(scaled >= threshold, scaled, -jnp.inf)
  # Inverse-CDF sampling: one uniform per row instead of jax.random.categorical's one Gumbel
  # per vocabulary entry (5x faster per decode step at vocab 32000 on a CPU). u is in (0, 1],
  # so a token of probability 0 (cut by top-p/top-k) can never be drawn.
  cdf = jnp.cumsum(jax.nn.softmax(scaled, axis=-1), axis=-1)          # [rows, vocab]
  u = 1.0 - jax.vmap(lambda key: jax.random.uniform(key, ()))(keys)   # [rows]
  return jnp.sum(cdf < (u * cdf[:, -1])[:, None], axis=-1).astype(jnp.int32)


def _lm_head(params, config: llama.LlamaConfig, hidden):
  """Logits [rows, vocab] float32 from final normed hidden states [rows, embed], as the model does."""
  dtype = jnp.dtype(config.dtype)
  if config.tie_embeddings:
    weight = params["embed_tokens"]["embedding"].T
  else:
    weight = params["lm_head"]["kernel"]
  return jnp.dot(hidden.astype(dtype), weight.astype(dtype)).astype(jnp.float32)


def unstack_layers(params, config: llama.LlamaConfig):
  """(params, config) with nn.scan's stacked `layers` split into `layers_i` trees, once per
  call: the decode loop then reads every layer's weights, and updates its own KV cache, where
  they lie instead of slicing weights out of the stack and re-stacking the cache at every step
  (copies of all weights or of the whole cache per token on a CPU)."""
  if not config.scan_layers:
    return params, config
  unstacked = {name: value for name, value in params.items() if name != "layers"}
  for i in range(config.num_layers):
    unstacked[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], params["layers"])
  return unstacked, dataclasses.replace(config, scan_layers=False)


def _constrain_cache(cache: llama.KVCache) -> llama.KVCache:
  if isinstance(cache.k, tuple):                        # per-layer arrays: the names without "layers"
    names = llama.CACHE_LOGICAL_AXES.k[1:]
    per_layer = lambda arrays: tuple(nn.with_logical_constraint(x, names) for x in arrays)
    return cache.replace(k=per_layer(cache.k), v=per_layer(cache.v), segment_ids=nn.with_logical_constraint(
        cache.segment_ids, llama.CACHE_LOGICAL_AXES.segment_ids))
  return jax.tree.map(lambda x, names: nn.with_logical_constraint(x, names), cache,
                      llama.CACHE_LOGICAL_AXES)


def decode(params, tokens, prompt_lengths, row_ids, limits, rng, temperature, top_p, top_k,
           stop_table, stop_matched, eos_ids, *, config: llama.LlamaConfig, max_new_tokens: int,
           greedy: bool, filtered: bool, samples_per_prompt: int = 1):
  """Prefill left-padded prompts, then sample until every row is done (jit with partial).

  tokens [prompts, bucket] left-padded; prompt_lengths [prompts] int32. Each prompt is
  prefilled once and its cache copied to `samples_per_prompt` rows (prompt-major), so
  rows = prompts * samples_per_prompt; row_ids, limits [rows] int32 (a row stops after
  `limits[r]` tokens; 0 marks a padding row). Returns (tokens [rows, max_new],
  logprobs [rows, max_new], counts [rows], finish codes [rows], stop index [rows]).
  """
  num_prompts, bucket = tokens.shape
  rows = num_prompts * samples_per_prompt
  params, config = unstack_layers(params, config)
  model = llama.Transformer(config)
  slots = jnp.arange(bucket, dtype=jnp.int32)
  padding = (bucket - prompt_lengths)[:, None]                        # [prompts, 1]
  segment_ids = (slots[None] >= padding).astype(jnp.int32)            # [prompts, bucket]
  positions = jnp.maximum(slots[None] - padding, 0)
  ends = segment_ends(max_new_tokens)
  cache = _constrain_cache(llama.KVCache.init(config, num_prompts, bucket + ends[0]))
  hidden, cache = model.apply({"params": params}, tokens, positions, segment_ids, cache,
                              return_hidden=True)
  logits = _lm_head(params, config, hidden[:, -1])                    # [prompts, vocab]
  if samples_per_prompt > 1:                                          # prompts -> rows
    logits = jnp.repeat(logits, samples_per_prompt, axis=0)
    prompt_lengths = jnp.repeat(prompt_lengths, samples_per_prompt)
    batch_axis = 0 if isinstance(cache.k, tuple) else 1
    repeat = lambda x: jnp.repeat(x, samples_per_prompt, axis=batch_axis)
    cache = _constrain_cache(cache.replace(
        k=jax.tree.map(repeat, cache.k), v=jax.tree.map(repeat, cache.v),
        segment_ids=jnp.repeat(cache.segment_ids, samples_per_prompt, axis=0)))
  row_keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, row_ids)
  num_stops = stop_table.shape[0]

  def emit(state, logits, step):
    """Samples token `step` of every running row and records it."""
    keys = jax.vmap(jax.random.fold_in, (0, None))(row_keys, step)
    token = sample_from_logits(logits, keys, temperature, top_p, top_k,
                               greedy=greedy, filtered=filtered)
    logprob = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), token[:, None], axis=-1)[:, 0]
    running = state["finish"] == 0
    counts = state["counts"] + running
    stop_state = stop_table[jnp.arange(num_stops)[None], state["stop_state"], token[:, None]]
    hit_stop = stop_state == stop_matched[None]                       # [rows, stops]
    hit_eos = jnp.any(token[:, None] == eos_ids[None], axis=-1)
    finish = jnp.where(hit_eos, 1, jnp.where(hit_stop.any(-1), 2, jnp.where(counts >= limits, 3, 0)))
    return dict(
        cache=state["cache"], step=step + 1, last=token,
        tokens=state["tokens"].at[:, step].set(jnp.where(running, token, 0)),
        logprobs=state["logprobs"].at[:, step].set(jnp.where(running, logprob, 0.0)),
        counts=counts, stop_state=stop_state,
        finish=jnp.where(running, finish, state["finish"]).astype(jnp.int32),
        stop_index=jnp.where(running & (finish == 2), jnp.argmax(hit_stop, -1), state["stop_index"]))

  state = dict(
      cache=cache, step=jnp.zeros((), jnp.int32), last=jnp.zeros((rows,), jnp.int32),
      tokens=jnp.zeros((rows, max_new_tokens), jnp.int32),
      logprobs=jnp.zeros((rows, max_new_tokens), jnp.float32),
      counts=jnp.zeros((rows,), jnp.int32),
      stop_state=jnp.zeros((rows, num_stops), jnp.int32),
      finish=jnp.where(limits <= 0, 3, 0).astype(jnp.int32),
      stop_index=jnp.full((rows,), -1, jnp.int32))
  state = emit(state, logits, jnp.zeros((), jnp.int32))

  def next_token(state):
    # Token `step - 1` sits at position prompt_length + step - 1 and cache slot bucket + step - 1.
    logits, cache = model.apply(
        {"params": params}, state["last"][:, None], (prompt_lengths + state["step"] - 1)[:, None],
        jnp.ones((rows, 1), jnp.int32), state["cache"])
    return emit(dict(state, cache=cache), logits[:, 0].astype(jnp.float32), state["step"])

  # Segment i emits tokens up to ends[i] with a cache of bucket + ends[i] slots; each segment
  # is its own loop (static cache shape) and exits at once when every row is done.
  for i, end in enumerate(ends):
    if i:
      state["cache"] = _constrain_cache(state["cache"].extend(end - ends[i - 1]))
    running = lambda state, end=end: (state["step"] < end) & jnp.any(state["finish"] == 0)
    state = jax.lax.while_loop(running, next_token, state)
  return state["tokens"], state["logprobs"], state["counts"], state["finish"], state["stop_index"]


@functools.lru_cache(maxsize=32)
def _compiled(config: llama.LlamaConfig, max_new_tokens: int, greedy: bool, filtered: bool,
              samples_per_prompt: int, small_batch: bool = False):
  """The jitted `decode`; `small_batch` (<= xla_cpu.SMALL_BATCH_ROWS rows per device) compiles
  it with Eigen's dots on a CPU, faster than YNNPACK's when a step multiplies a few vectors."""
  options = xla_cpu.SMALL_BATCH_DECODE if small_batch and jax.default_backend() == "cpu" else {}
  return jax.jit(functools.partial(decode, config=config, max_new_tokens=max_new_tokens,
                                   greedy=greedy, filtered=filtered, samples_per_prompt=samples_per_prompt),
                 compiler_options=options or None)


# ------------------------------------------------------------------------------- host side

def _freeze(rules):
  """Logical axis rules as nested tuples (hashable; ConfigDicts hand back lists)."""
  return tuple((name, tuple(axes) if isinstance(axes, list) else axes) for name, axes in rules)


@functools.lru_cache(maxsize=8)
def _param_shardings(config: llama.LlamaConfig, mesh, rules):
  abstract = jax.eval_shape(functools.partial(llama.init_params, config), jax.random.key(0))
  return sharding.tree_shardings(abstract, mesh, rules)


def as_key(rng):
  """A typed PRNG key from an int seed, a raw uint32[2] key or a typed key."""
  if isinstance(rng, int):
    return jax.random.key(rng)
  if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    return rng
  return jax.random.wrap_key_data(rng)


def _rows_per_call(num_rows: int, batch_size: int | None, ways: int) -> int:
  size = num_rows if not batch_size else min(batch_size, num_rows)
  return -(-size // ways) * ways


def generate_rows(params, config: llama.LlamaConfig, prompts: Sequence[Sequence[int]],
                  sampling: SamplingParams, rng, *, row_ids: Sequence[int] | None = None,
                  limits: Sequence[int] | None = None, eos_ids: Sequence[int] = (),
                  stop_table=None, mesh=None, rules=None, batch_size: int | None = None,
                  progress=None, samples_per_prompt: int = 1) -> list[RowResult]:
  """`samples_per_prompt` device rows per prompt (prompt-major), each prompt prefilled once;
  the engine under `generate` and the tool loop.

  `limits[r]` caps row r's new tokens (default max_new_tokens); `row_ids` seed each row
  (default its index); `stop_table` comes from `stop_tables`. Rows run in calls of
  `batch_size` rows (default all), the last call padded so every call has the same shape.
  """
  per_prompt = int(samples_per_prompt)
  num_rows = len(prompts) * per_prompt
  if num_rows == 0:
    return []
  max_new = sampling.max_new_tokens
  row_ids = list(range(num_rows)) if row_ids is None else list(row_ids)
  limits = [max_new] * num_rows if limits is None else [min(int(l), max_new) for l in limits]
  for r, prompt in enumerate(prompts):
    if len(prompt) == 0:
      raise ValueError(f"prompt {r} is empty: every prompt needs at least one token (e.g. BOS)")
  if stop_table is None:
    stop_table = stop_tables(None, config.vocab_size, ())
  greedy = bool(sampling.greedy) or sampling.temperature <= 0.0
  filtered = not greedy and (sampling.top_p < 1.0 or sampling.top_k > 0)
  eos = np.array(list(eos_ids) or [-1], np.int32)
  key = as_key(rng)

  ways, place = 1, lambda x: x
  if mesh is not None:
    if rules is None:
      raise ValueError("generate: a mesh needs its logical axis rules (config.logical_axis_rules)")
    ways = int(np.prod(list(sharding.batch_axes(mesh, rules).values())))
    params = jax.device_put(params, _param_shardings(config, mesh, _freeze(rules)))
    place = lambda x: jax.device_put(x, sharding.batch_sharding(mesh, rules, x.ndim))
  per_call = _rows_per_call(len(prompts), batch_size and max(1, batch_size // per_prompt), ways)  # prompts
  small_batch = per_call * per_prompt // ways <= xla_cpu.SMALL_BATCH_ROWS
  fn = _compiled(config, max_new, greedy, filtered, per_prompt, small_batch)
  results = []
  for start in range(0, len(prompts), per_call):
    chunk = list(range(start, min(start + per_call, len(prompts))))
    bucket = bucket_length(max(len(prompts[p]) for p in chunk))
    tokens = np.zeros((per_call, bucket), np.int32)                  # [prompts, bucket] left-padded
    lengths = np.ones((per_call,), np.int32)
    ids = np.zeros((per_call * per_prompt,), np.int32)               # [rows]
    row_limits = np.zeros((per_call * per_prompt,), np.int32)        # 0: padding row
    for i, p in enumerate(chunk):
      prompt = np.asarray(prompts[p], np.int32)
      tokens[i, bucket - len(prompt):] = prompt
      lengths[i] = len(prompt)
      for j in range(per_prompt):
        ids[i * per_prompt + j] = row_ids[p * per_prompt + j]
        row_limits[i * per_prompt + j] = limits[p * per_prompt + j]
    batch = [place(x) for x in (tokens, lengths, ids, row_limits)]
    args = (key, np.float32(max(sampling.temperature, 1e-6)), np.float32(sampling.top_p),
            np.int32(sampling.top_k), stop_table[0], stop_table[1], eos)
    if mesh is None:
      out = fn(params, *batch, *args)
    else:
      with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        out = fn(params, *batch, *args)
    out_tokens, out_logprobs, counts, finish, stop_index = sharding.to_host(out)
    for i in range(len(chunk) * per_prompt):
      n = int(counts[i])
      results.append(RowResult(out_tokens[i, :n].tolist(), out_logprobs[i, :n].tolist(),
                               FINISH_REASONS[int(finish[i])] or "length", int(stop_index[i])))
    if progress is not None:
      progress(len(chunk) * per_prompt)
  return results


def default_eos_ids(tokenizer, eos_ids=None) -> tuple[int, ...]:
  if eos_ids is not None:
    return tuple(eos_ids)
  return () if tokenizer is None else (tokenizer.eos_id,)


def generate(params, config: llama.LlamaConfig, tokenizer, prompts: list[list[int]],
             sampling: SamplingParams, rng, *, mesh=None, rules=None,
             eos_ids: Sequence[int] | None = None, batch_size: int | None = None,
             progress=None) -> list[Completion]:
  """Samples `num_samples` continuations of every prompt; prompt-major order (i * num_samples + j).

  `tokenizer` may be None (a checkpoint without one): then only EOS ids given explicitly
  stop a row, stop strings are ignored and `text` is "". `eos_ids` defaults to the
  tokenizer's EOS. With a mesh, rows are sharded over the batch axes and heads over
  tensor (the config's logical rules); `progress(n)` is called after each call of n rows.
  """
  params = nn.unbox(params)
  rows = [(i, list(p)) for i, p in enumerate(prompts) for _ in range(sampling.num_samples)]
  table = stop_tables(tokenizer, config.vocab_size, sampling.stop_strings)
  results = generate_rows(params, config, [list(p) for p in prompts], sampling, rng,
                          eos_ids=default_eos_ids(tokenizer, eos_ids), stop_table=table,
                          mesh=mesh, rules=rules, batch_size=batch_size, progress=progress,
                          samples_per_prompt=sampling.num_samples)
  completions = []
  for (index, prompt), result in zip(rows, results):
    text = tokenizer.decode(result.token_ids) if tokenizer is not None else ""
    completions.append(Completion(index, prompt, result.token_ids, result.logprobs,
                                  [0] * len(result.token_ids), result.finish_reason, text))
  return completions
