"""Tool-integrated generation (paper §3.1 and §5: the ToRA protocol of DeepSeekMath-Instruct/RL).

The model writes reasoning and a ```python block and then "```output"; generation stops
there (an on-device stop string), the last program of the response runs in the sandbox,
and its stdout (or the error's last line) is appended as the rest of the output block,
"\\n<result>\\n```\\n"; generation then continues from the extended context. At most
`max_tool_rounds` programs run per sample; a sample that asks for one more ends with
finish_reason "tool_rounds".

The model's own "```output" tokens stay in the response with their log-probabilities
(RL should reinforce calling the tool); only the inserted tokens are marked in
`tool_mask` (logprob 0.0), so training masks exactly what the model did not write. The
resulting text is the same as cutting at "```output" and appending `format_output`.
`max_new_tokens` bounds the whole response, tool tokens included.

One switch turns the loop on in every task: the prompt template "tool" (`uses_tools`; sample:
`template`, grpo: `data.template`, eval: `prompt.template`); its knobs are a `ToolConfig`.
"""
import dataclasses
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax

from dsmath_jax import config_types
from dsmath_jax.sample import sampler
from dsmath_jax.sandbox import tool_protocol
from dsmath_jax.sandbox.sandbox import ExecResult, Sandbox

TOOL_TEMPLATE = "tool"          # the templates.py name whose prompts ask for programs


def uses_tools(template: str) -> bool:
  """Whether prompts rendered with `template` are sampled through the tool loop."""
  return template == TOOL_TEMPLATE


# generate_round(contexts, row_ids, limits, round_index) -> one RowResult per context.
RoundFn = Callable[[list[list[int]], list[int], list[int], int], list[sampler.RowResult]]

_NO_PROGRAM = ExecResult("error", "", "no ```python block before ```output", 0.0)


@dataclasses.dataclass(frozen=True)
class ToolConfig:
  """How tool-integrated sampling runs programs (the `tool` section of a task's config). The
  switch is the prompt template: only a "tool" template (paper §3.1, ToRA format) uses it."""
  max_rounds: int = 4           # programs run per sample at most; one more ends it ("tool_rounds")
  sandbox_workers: int = 4      # sandbox processes that run a round's programs in parallel

  @classmethod
  def from_config(cls, section, where: str = "config.tool") -> "ToolConfig":
    return config_types.from_section(cls, section, where=where)


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
  """How far tool-integrated programs may run unconfined (the `sandbox` section; sandbox/sandbox.py)."""
  allow_unisolated: bool = False  # True: run programs even where no kernel isolation exists

  @classmethod
  def from_config(cls, section, where: str = "config.sandbox") -> "SandboxConfig":
    return config_types.from_section(cls, section, where=where)


def open_sandbox(tool: ToolConfig, sandbox: SandboxConfig) -> Sandbox:
  """The warm sandbox pool of a tool-integrated run (close it, or use it as a context manager)."""
  return Sandbox(workers=tool.sandbox_workers, allow_unisolated=sandbox.allow_unisolated)


def run_tool_rounds(prompts: Sequence[Sequence[int]], generate_round: RoundFn, tokenizer, sandbox,
                    *, tool_stop_index: int, max_new_tokens: int, max_tool_rounds: int,
                    progress=None) -> list[dict]:
  """The host-side protocol, independent of how tokens are produced (tests script the model).

  Row r of `prompts` is one sample. Returns per row a dict with token_ids, logprobs,
  tool_mask, finish_reason and tool_rounds (programs run).
  """
  rows = [dict(prompt=list(p), token_ids=[], logprobs=[], tool_mask=[], finish_reason=None,
               tool_rounds=0) for p in prompts]
  round_index = 0
  while True:
    active = [r for r, row in enumerate(rows) if row["finish_reason"] is None]
    if not active:
      return rows
    contexts = [rows[r]["prompt"] + rows[r]["token_ids"] for r in active]
    limits = [max_new_tokens - len(rows[r]["token_ids"]) for r in active]
    results = generate_round(contexts, active, limits, round_index)
    if len(results) != len(active):
      raise RuntimeError(f"tool round {round_index}: {len(results)} results for {len(active)} rows")
    wants_tool = []
    for r, result in zip(active, results):
      row = rows[r]
      row["token_ids"] += result.token_ids
      row["logprobs"] += result.logprobs
      row["tool_mask"] += [0] * len(result.token_ids)
      asked = result.finish_reason == "stop" and result.stop_index == tool_stop_index
      if not asked:
        row["finish_reason"] = result.finish_reason
      elif row["tool_rounds"] >= max_tool_rounds:
        row["finish_reason"] = "tool_rounds"
      elif len(row["token_ids"]) >= max_new_tokens:
        row["finish_reason"] = "length"
      else:
        wants_tool.append(r)
    programs = [tool_protocol.last_program(tokenizer.decode(rows[r]["token_ids"])) for r in wants_tool]
    to_run = [code for code in programs if code is not None]
    ran = iter(sandbox.run_many(to_run) if to_run else [])
    for r, code in zip(wants_tool, programs):
      row = rows[r]
      result = _NO_PROGRAM if code is None else next(ran)
      block = tool_protocol.format_output(result)[len(tool_protocol.STOP):]
      inserted = tokenizer.encode(block)[:max_new_tokens - len(row["token_ids"])]
      row["token_ids"] += inserted
      row["logprobs"] += [0.0] * len(inserted)
      row["tool_mask"] += [1] * len(inserted)
      row["tool_rounds"] += 1
      if len(row["token_ids"]) >= max_new_tokens:
        row["finish_reason"] = "length"
    if progress is not None:
      progress(sum(rows[r]["finish_reason"] is not None for r in active))
    round_index += 1


def generate_with_tools(params, config, tokenizer, prompts: list[list[int]],
                        sampling: sampler.SamplingParams, rng, *, max_tool_rounds: int = 4,
                        sandbox=None, mesh=None, rules=None, eos_ids: Sequence[int] | None = None,
                        batch_size: int | None = None, progress=None) -> list[sampler.Completion]:
  """`sampler.generate` with program execution between rounds; same order and fields.

  `sandbox` is anything with `run_many(codes) -> list[ExecResult]`; by default a
  `Sandbox(workers=4)` is started for the call and closed after. Every round keeps the
  same number of device rows (`batch_size`, default all samples) so it reuses one program
  per prompt bucket.
  """
  params = nn.unbox(params)
  stops = tuple(s for s in sampling.stop_strings if s != tool_protocol.STOP) + (tool_protocol.STOP,)
  table = sampler.stop_tables(tokenizer, config.vocab_size, stops)
  eos = sampler.default_eos_ids(tokenizer, eos_ids)
  key = sampler.as_key(rng)
  samples = [(i, list(p)) for i, p in enumerate(prompts) for _ in range(sampling.num_samples)]
  calls_rows = batch_size or len(samples)

  def generate_round(contexts, row_ids, limits, round_index):
    # Round 0 runs every sample, prompt-major: each prompt is prefilled once for its samples.
    per_prompt = sampling.num_samples if round_index == 0 else 1
    return sampler.generate_rows(
        params, config, [list(p) for p in prompts] if round_index == 0 else contexts, sampling,
        jax.random.fold_in(key, round_index), row_ids=row_ids, limits=limits, eos_ids=eos,
        stop_table=table, mesh=mesh, rules=rules, batch_size=calls_rows, samples_per_prompt=per_prompt)

  owned = sandbox is None
  if owned:
    from dsmath_jax.sandbox.sandbox import Sandbox
    sandbox = Sandbox(workers=4)
  try:
    rows = run_tool_rounds([p for _, p in samples], generate_round, tokenizer, sandbox,
                           tool_stop_index=len(stops) - 1, max_new_tokens=sampling.max_new_tokens,
                           max_tool_rounds=max_tool_rounds, progress=progress)
  finally:
    if owned:
      sandbox.close()
  return [sampler.Completion(index, prompt, row["token_ids"], row["logprobs"], row["tool_mask"],
                             row["finish_reason"], tokenizer.decode(row["token_ids"]))
          for (index, prompt), row in zip(samples, rows)]
