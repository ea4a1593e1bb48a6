"""Task `sample`: completions of a JSONL of prompts from any checkpoint, to WORKDIR/samples.jsonl.

The same generator GRPO (§4.2) and evaluation (§2.2, §3.2) use, exposed for inspection and for
offline data generation (e.g. rejection-sampled SFT data, §3.1). See configs/sample.py.
"""
import json
import os
import time

from absl import logging

from dsmath_jax import templates
from dsmath_jax import jsonl


def read_prompts(path: str, limit: int = 0) -> list[dict]:
  """Records with a `prompt` (str), a `question` (str) or `prompt_ids` (list of ints)."""
  records = []
  for row in jsonl.read_jsonl(path, {"record": None}):
    record, line_number = row["record"], row["_line"]
    if "prompt_ids" in record:
      ids = record["prompt_ids"]
      if not (isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids)):
        raise ValueError(f"{path}:{line_number}: field 'prompt_ids' must be a non-empty list of ints")
    elif not isinstance(record.get("prompt", record.get("question")), str):
      raise ValueError(f"{path}:{line_number}: needs a string field 'prompt' or 'question', "
                       f"or a list 'prompt_ids' (has {sorted(record)})")
    records.append(record)
    if limit and len(records) >= limit:
      break
  if not records:
    raise ValueError(f"{path}: no prompts")
  return records


def encode_prompts(records: list[dict], tokenizer, *, template: str, add_bos: bool,
                   vocab_size: int, where: str) -> tuple[list[list[int]], list[str]]:
  """(token ids, prompt text) per record; `prompt_ids` pass through, text gets BOS + encode."""
  ids, texts = [], []
  for n, record in enumerate(records):
    if "prompt_ids" in record:
      prompt = list(record["prompt_ids"])
      if max(prompt) >= vocab_size or min(prompt) < 0:
        raise ValueError(f"{where}: record {n}: prompt_ids outside the vocabulary [0, {vocab_size})")
      ids.append(prompt)
      texts.append(tokenizer.decode(prompt) if tokenizer is not None else "")
      continue
    if tokenizer is None:
      raise ValueError(f"{where}: record {n} is text but the checkpoint has no tokenizer: give "
                       f"prompt_ids or --config.tokenizer")
    text = record["prompt"] if "prompt" in record else templates.render(record["question"], template)
    bos = [tokenizer.bos_id] if add_bos and tokenizer.bos_id is not None else []
    ids.append(bos + tokenizer.encode(text))
    texts.append(text)
  return ids, texts


def load_model(config, mesh, rules):
  """(LlamaConfig, params, tokenizer or None) from config.checkpoint, or a random config.model."""
  import flax.linen as nn
  import jax

  from dsmath_jax import tokenizer as tokenizer_lib
  from dsmath_jax.model import llama
  fallback = tokenizer_lib.load_tokenizer(config.tokenizer) if config.tokenizer else None
  if config.checkpoint:
    from dsmath_jax.model import loading
    pretrained = loading.load_pretrained(config.checkpoint, mesh=mesh, rules=rules)
    return pretrained.config, pretrained.params, pretrained.tokenizer or fallback
  model_config = llama.LlamaConfig.from_config(config.model)
  params = nn.unbox(llama.init_params(model_config, jax.random.key(int(config.seed))))
  return model_config, params, fallback


def run(config, workdir: str) -> dict:
  """Samples every prompt `num_samples` times; returns (and writes) the summary."""
  import jax
  import tqdm

  from dsmath_jax import sharding
  from dsmath_jax.sample import sampler
  mesh = sharding.make_mesh(config.mesh)
  rules = tuple(tuple(rule) for rule in config.logical_axis_rules)
  model_config, params, tokenizer = load_model(config, mesh, rules)
  if config.prompts:
    records, where = read_prompts(config.prompts, int(config.limit)), config.prompts
  else:
    records, where = [dict(question=q) for q in config.questions], "config.questions"
    records = records[:int(config.limit)] if config.limit else records
    if not records:
      raise ValueError("sample: give --config.prompts=FILE.jsonl (or config.questions)")
  prompts, texts = encode_prompts(records, tokenizer, template=config.template,
                                  add_bos=config.add_bos, vocab_size=model_config.vocab_size,
                                  where=where)
  sampling = sampler.SamplingParams(
      max_new_tokens=int(config.max_new_tokens), temperature=float(config.temperature),
      top_p=float(config.top_p), top_k=int(config.top_k), num_samples=int(config.num_samples),
      stop_strings=tuple(config.stop_strings), greedy=bool(config.greedy))
  rng = jax.random.key(int(config.seed))
  bar = tqdm.tqdm(total=len(prompts) * sampling.num_samples, desc="samples", unit="sample")
  start = time.time()
  if config.tools:
    from dsmath_jax.sandbox import sandbox as sandbox_lib
    from dsmath_jax.sample import tool_loop
    if tokenizer is None:
      raise ValueError("sample: tools=True needs a tokenizer (programs are text)")
    with sandbox_lib.Sandbox(**config.sandbox) as box:
      completions = tool_loop.generate_with_tools(
          params, model_config, tokenizer, prompts, sampling, rng, max_tool_rounds=int(config.max_tool_rounds),
          sandbox=box, mesh=mesh, rules=rules, batch_size=int(config.batch_size), progress=bar.update)
  else:
    completions = sampler.generate(params, model_config, tokenizer, prompts, sampling, rng, mesh=mesh,
                                   rules=rules, batch_size=int(config.batch_size), progress=bar.update)
  seconds = time.time() - start
  bar.close()

  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "samples.jsonl")
  finish_reasons: dict[str, int] = {}
  with open(path, "w") as f:
    for n, c in enumerate(completions):
      record = records[c.prompt_index]
      finish_reasons[c.finish_reason] = finish_reasons.get(c.finish_reason, 0) + 1
      f.write(json.dumps(dict(
          id=record.get("id", c.prompt_index), prompt_index=c.prompt_index,
          sample_index=n % sampling.num_samples, prompt=texts[c.prompt_index], completion=c.text,
          prompt_ids=c.prompt_ids, token_ids=c.token_ids, logprobs=[round(x, 6) for x in c.logprobs],
          tool_mask=c.tool_mask, finish_reason=c.finish_reason), ensure_ascii=False) + "\n")
  new_tokens = sum(len(c.token_ids) for c in completions)
  summary = dict(samples=len(completions), prompts=len(prompts), new_tokens=new_tokens,
                 seconds=round(seconds, 2), tokens_per_second=round(new_tokens / max(seconds, 1e-9), 1),
                 finish_reasons=finish_reasons, checkpoint=config.checkpoint or "random init",
                 tools=bool(config.tools))
  with open(os.path.join(workdir, "sample_summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  logging.info("wrote %d samples to %s (%s)", len(completions), path, summary)
  return summary
