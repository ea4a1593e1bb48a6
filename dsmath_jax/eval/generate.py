"""Model outputs for benchmark questions: prompts -> token ids -> the sampler (or the tool loop).

Takes values (params, model config, tokenizer, typed settings), so the eval task and a trainer
evaluating during training (`evaluate.evaluate_benchmark`) share it.
"""
import time

from absl import logging

from dsmath_jax.benchmarks import prompts as prompts_lib
from dsmath_jax.benchmarks.catalog import Benchmark
from dsmath_jax.eval.settings import PromptConfig, SamplingConfig
from dsmath_jax.sample.tool_loop import SandboxConfig, ToolConfig


def prompt_texts(benchmark: Benchmark, questions: list[dict], prompt: PromptConfig, tokenizer=None) -> list[str]:
  """The prompt string of every question. prompt.chat: the template's user turn goes through the
  checkpoint's own chat template instead of DeepSeekMath's "User: ... Assistant:"."""
  texts = [prompts_lib.render(benchmark, q, template=prompt.template, fewshot=prompt.fewshot) for q in questions]
  if prompt.chat and not prompt.fewshot:
    from dsmath_jax import tokenizer as tokenizer_lib
    users = [t.removeprefix("User: ").removesuffix("\n\nAssistant:") for t in texts]
    texts = [tokenizer_lib.render_chat(tokenizer, [dict(role="user", content=u)]) for u in users]
  return texts


def generate_outputs(params, model_config, tokenizer, benchmark: Benchmark, questions: list[dict], texts: list[str], *,
                     prompt: PromptConfig, sampling: SamplingConfig, tool: ToolConfig, seed: int, mesh, rules,
                     sandbox: SandboxConfig = SandboxConfig(), progress=None) -> tuple[dict[str, list[str]], dict]:
  """({question id: [output text, ...]}, generation stats)."""
  import jax

  from dsmath_jax.sample import sampler
  # Chat templates write BOS themselves where they want it.
  bos = [tokenizer.bos_id] if tokenizer.bos_id is not None and not prompt.chat else []
  encoded = [bos + tokenizer.encode(text) for text in texts]
  room = model_config.max_position_embeddings - sampling.max_new_tokens
  too_long = [q["id"] for q, ids in zip(questions, encoded) if len(ids) > room]
  if too_long:
    raise ValueError(f"{benchmark.name}: {len(too_long)} prompts (e.g. {too_long[:3]}) exceed max_position_embeddings"
                     f" - max_new_tokens = {room} tokens; lower sampling.max_new_tokens or use zero-shot prompts")
  stops = prompts_lib.stop_strings(benchmark, prompt.fewshot)
  params_ = sampler.SamplingParams(
      max_new_tokens=sampling.max_new_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
      top_k=sampling.top_k, num_samples=sampling.num_samples, stop_strings=stops, greedy=sampling.greedy)
  rng = jax.random.key(seed)
  start = time.time()
  if prompt.tool:
    from dsmath_jax.sample import tool_loop
    with tool_loop.open_sandbox(tool, sandbox) as box:
      completions = tool_loop.generate_with_tools(
          params, model_config, tokenizer, encoded, params_, rng, mesh=mesh, rules=rules, sandbox=box,
          max_tool_rounds=tool.max_rounds, batch_size=sampling.batch_size, progress=progress)
  else:
    completions = sampler.generate(params, model_config, tokenizer, encoded, params_, rng, mesh=mesh, rules=rules,
                                   batch_size=sampling.batch_size, progress=progress)
  seconds = time.time() - start
  outputs: dict[str, list[str]] = {}
  for completion in completions:
    # An output that is only whitespace is still a sample: graded (as no answer), never dropped.
    outputs.setdefault(questions[completion.prompt_index]["id"], []).append(
        prompts_lib.truncate(completion.text, stops))
  new_tokens = sum(len(c.token_ids) for c in completions)
  finish: dict[str, int] = {}
  for completion in completions:
    finish[completion.finish_reason] = finish.get(completion.finish_reason, 0) + 1
  logging.info("%s: %d outputs, %d new tokens in %.1f s", benchmark.name, len(completions), new_tokens, seconds)
  return outputs, dict(sampling_seconds=round(seconds, 2), new_tokens=new_tokens,
                       tokens_per_second=round(new_tokens / seconds, 1) if seconds > 0 else None,
                       finish_reasons=finish)
