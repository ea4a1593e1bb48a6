"""Task `sample`: completions of a JSONL of prompts from any checkpoint, to WORKDIR/samples.jsonl.

The same generator GRPO (§4.2) and evaluation (§2.2, §3.2) use, exposed for inspection and for
offline data generation (e.g. rejection-sampled SFT data, §3.1). See configs/sample.py. WORKDIR and
`checkpoint` may be gs:// URLs (dsmath_jax.paths); each output file appears whole or not at all.
"""
import dataclasses
import json
import time
from typing import NamedTuple

import flax.linen as nn
import jax
from absl import logging

from dsmath_jax import atomic, config_types, console, jsonl, paths, runtime, templates
from dsmath_jax.model import llama, loading
from dsmath_jax.sample import sampler, tool_loop


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


# Sections of a sample config; every other key belongs to SampleConfig or to SamplingParams.
SECTIONS = ("task", "model", "tool", "sandbox", "mesh", "distributed", "logical_axis_rules")
SAMPLING_KEYS = tuple(f.name for f in dataclasses.fields(sampler.SamplingParams))


@dataclasses.dataclass(frozen=True)
class SampleConfig:
  """The top-level keys of configs/sample.py besides the sampling knobs (SamplingParams)."""
  seed: int                      # random init of `model` and the sampling key
  checkpoint: str                # load_or_init source; "" = random init of config.model
  tokenizer: str                 # used when the checkpoint carries none (a path or "byte")
  prompts: str                   # JSONL of prompts; "" = `questions`
  questions: tuple[str, ...]     # inline questions, rendered with `template`
  template: str                  # templates.py name for `question` records; "tool" runs the tool loop
  add_bos: bool                  # prepend the tokenizer's BOS to text prompts
  limit: int                     # first N prompts (0 = all)
  batch_size: int                # rows (prompt x sample) per sampler call

  @classmethod
  def from_config(cls, config) -> "SampleConfig":
    return config_types.from_section(cls, config, where="config", ignore=SECTIONS + SAMPLING_KEYS)


def sampling_params(config) -> sampler.SamplingParams:
  """The sampling knobs of configs/sample.py (top-level keys, named as SamplingParams' fields)."""
  own = tuple(f.name for f in dataclasses.fields(SampleConfig))
  return config_types.from_section(sampler.SamplingParams, config, where="config",
                                   ignore=SECTIONS + own)


def load_model(checkpoint: str, model: llama.LlamaConfig, *, tokenizer: str, seed: int, mesh,
               rules) -> loading.Pretrained:
  """`checkpoint` through load_or_init, or a random init of `model` from `seed`."""
  pretrained = loading.load_or_init(checkpoint, model, tokenizer=tokenizer, mesh=mesh, rules=rules)
  if pretrained.params is not None:
    return pretrained
  params = nn.unbox(llama.init_params(pretrained.config, jax.random.key(seed)))
  return pretrained._replace(params=params)


class TaskConfig(NamedTuple):
  """configs/sample.py as typed values."""
  sample: SampleConfig
  sampling: sampler.SamplingParams
  tool: tool_loop.ToolConfig
  sandbox: tool_loop.SandboxConfig
  model: llama.LlamaConfig
  mesh: runtime.MeshConfig


def typed_config(config) -> TaskConfig:
  """The door: every key of the config read once, unknown or missing keys refused by name."""
  return TaskConfig(sample=SampleConfig.from_config(config), sampling=sampling_params(config),
                    tool=tool_loop.ToolConfig.from_config(config.tool),
                    sandbox=tool_loop.SandboxConfig.from_config(config.sandbox),
                    model=llama.LlamaConfig.from_config(config.model),
                    mesh=runtime.MeshConfig.from_config(config.mesh))


def run(config, workdir: str) -> dict:
  """Task `sample`: typed values (typed_config), mesh and model, then `sample_prompts`."""
  config_types.write_config(config, workdir)
  c = typed_config(config)
  mesh, rules = runtime.setup(config)
  pretrained = load_model(c.sample.checkpoint, c.model, tokenizer=c.sample.tokenizer,
                          seed=c.sample.seed, mesh=mesh, rules=rules)
  return sample_prompts(pretrained, workdir, c.sample, c.sampling, c.tool, c.sandbox, mesh=mesh, rules=rules)


def sample_prompts(pretrained: loading.Pretrained, workdir: str, job: SampleConfig,
                   sampling: sampler.SamplingParams, tool: tool_loop.ToolConfig,
                   sandbox: tool_loop.SandboxConfig = tool_loop.SandboxConfig(), *, mesh, rules) -> dict:
  """Samples every prompt `sampling.num_samples` times; returns (and writes) the summary."""
  model_config, params, tokenizer = pretrained
  if job.prompts:
    records, where = read_prompts(job.prompts, job.limit), job.prompts
  else:
    records, where = [dict(question=q) for q in job.questions], "config.questions"
    records = records[:job.limit] if job.limit else records
    if not records:
      raise ValueError("sample: give --config.prompts=FILE.jsonl (or config.questions)")
  prompts, texts = encode_prompts(records, tokenizer, template=job.template, add_bos=job.add_bos,
                                  vocab_size=model_config.vocab_size, where=where)
  rng = jax.random.key(job.seed)
  bar = console.progress("samples", len(prompts) * sampling.num_samples, unit="sample",
                         enabled=jax.process_index() == 0)
  start = time.time()
  tools = tool_loop.uses_tools(job.template)
  if tools:
    with tool_loop.open_sandbox(tool, sandbox) as box:
      completions = tool_loop.generate_with_tools(
          params, model_config, tokenizer, prompts, sampling, rng, max_tool_rounds=tool.max_rounds,
          sandbox=box, mesh=mesh, rules=rules, batch_size=job.batch_size, progress=bar.update)
  else:
    completions = sampler.generate(params, model_config, tokenizer, prompts, sampling, rng, mesh=mesh,
                                   rules=rules, batch_size=job.batch_size, progress=bar.update)
  seconds = time.time() - start
  bar.close()

  path = paths.join(workdir, "samples.jsonl")
  finish_reasons: dict[str, int] = {}
  with atomic.write_file(path) as f:
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
                 finish_reasons=finish_reasons, checkpoint=job.checkpoint or "random init", tools=tools)
  with atomic.write_file(paths.join(workdir, "sample_summary.json")) as f:
    json.dump(summary, f, indent=1)
  logging.info("wrote %d samples to %s (%s)", len(completions), path, summary)
  return summary
