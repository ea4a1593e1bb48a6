"""The tool-integrated loop (ToRA protocol) with a scripted model and an in-process stand-in sandbox."""
import contextlib
import io

import jax
import numpy as np

from dsmath_jax.sample import sampler, tool_loop
from dsmath_jax.sandbox.sandbox import ExecResult
from dsmath_jax.tokenizer import ByteTokenizer

TOKENIZER = ByteTokenizer()
EOS = "<eos>"
# What each row "writes" in each round; a chunk ending in ```output is a tool call.
SCRIPT = [
    ["Let me compute.\n```python\nprint(2 + 3)\n```\n```output", " So the answer is 5." + EOS],
    ["```python\nprint(1)\n```\n```output"] * 4,                       # keeps calling tools
    ["The answer is 4." + EOS],                                          # never calls a tool
    ["```python\n1 / 0\n```\n```output", " It failed." + EOS],
    ["no program here\n```output", " ok" + EOS],
]


class InProcessSandbox:
  """Runs trusted test programs with exec; records what it was asked to run."""

  def __init__(self):
    self.codes = []

  def run_many(self, codes):
    results = []
    for code in codes:
      self.codes.append(code)
      out = io.StringIO()
      try:
        with contextlib.redirect_stdout(out):
          exec(code, {})
        results.append(ExecResult("ok", out.getvalue(), "", 0.0))
      except Exception as e:  # noqa: BLE001 - the error's last line is the protocol's output
        results.append(ExecResult("error", out.getvalue(), f"{type(e).__name__}: {e}", 0.0))
    return results


def scripted_round(contexts_seen):
  """A generate_round that replays SCRIPT, honoring limits like the device loop does."""
  def generate_round(contexts, row_ids, limits, round_index):
    results = []
    for context, row, limit in zip(contexts, row_ids, limits):
      contexts_seen.append((row, round_index, TOKENIZER.decode(context)))
      chunk = SCRIPT[row][min(round_index, len(SCRIPT[row]) - 1)]
      eos = chunk.endswith(EOS)
      tokens = TOKENIZER.encode(chunk.removesuffix(EOS)) + ([TOKENIZER.eos_id] if eos else [])
      finish, stop_index = ("eos", -1) if eos else ("stop", 0)
      if len(tokens) > limit:
        tokens, finish, stop_index = tokens[:limit], "length", -1
      results.append(sampler.RowResult(tokens, [-0.5] * len(tokens), finish, stop_index))
    return results
  return generate_round


def run_script(max_new_tokens=200, max_tool_rounds=2):
  prompts = [TOKENIZER.encode(f"Q{r}:") for r in range(len(SCRIPT))]
  seen, sandbox = [], InProcessSandbox()
  rows = tool_loop.run_tool_rounds(prompts, scripted_round(seen), TOKENIZER, sandbox,
                                   tool_stop_index=0, max_new_tokens=max_new_tokens,
                                   max_tool_rounds=max_tool_rounds)
  return rows, seen, sandbox


def masked_text(row, value):
  return TOKENIZER.decode([t for t, m in zip(row["token_ids"], row["tool_mask"]) if m == value])


def test_output_block_is_inserted_and_masked():
  rows, seen, sandbox = run_script()
  first = rows[0]
  assert TOKENIZER.decode(first["token_ids"]) == (
      "Let me compute.\n```python\nprint(2 + 3)\n```\n```output\n5\n```\n So the answer is 5.")
  assert first["finish_reason"] == "eos" and first["tool_rounds"] == 1
  # tool_mask marks exactly the inserted "\n5\n```\n", which comes right after the model's ```output.
  mask = np.array(first["tool_mask"])
  inserted = np.flatnonzero(mask)
  assert masked_text(first, 1) == "\n5\n```\n"
  assert np.all(np.diff(inserted) == 1)
  assert TOKENIZER.decode(first["token_ids"][:inserted[0]]).endswith("```output")
  assert all(first["logprobs"][i] == 0.0 for i in inserted)
  assert all(first["logprobs"][i] == -0.5 for i in np.flatnonzero(mask == 0))
  # The second round continued from prompt + response + output block.
  assert (0, 1, "Q0:Let me compute.\n```python\nprint(2 + 3)\n```\n```output\n5\n```\n") in seen
  assert "print(2 + 3)" in sandbox.codes


def test_round_limit_errors_and_rows_without_tools():
  rows, seen, sandbox = run_script(max_tool_rounds=2)
  looping = rows[1]
  assert looping["finish_reason"] == "tool_rounds" and looping["tool_rounds"] == 2
  assert TOKENIZER.decode(looping["token_ids"]).count("```output\n1\n```\n") == 2
  assert TOKENIZER.decode(looping["token_ids"]).endswith("```output")    # the 3rd call is not run
  assert max(r for row, r, _ in seen if row == 1) == 2                   # 3 rounds generated
  plain = rows[2]
  assert plain["finish_reason"] == "eos" and sum(plain["tool_mask"]) == 0
  failing = rows[3]
  assert masked_text(failing, 1) == "\nZeroDivisionError: division by zero\n```\n"
  no_program = rows[4]
  assert masked_text(no_program, 1).startswith("\nno ```python block")
  assert len(sandbox.codes) == 1 + 2 + 1                                 # rows 0, 1 (x2), 3


def test_token_budget_covers_tool_output():
  rows, _, _ = run_script(max_new_tokens=60)
  for row in rows:
    assert len(row["token_ids"]) <= 60
    assert len(row["token_ids"]) == len(row["logprobs"]) == len(row["tool_mask"])
  assert rows[1]["finish_reason"] == "length"


def test_generate_with_tools_equals_generate_without_a_tool_call():
  """A real tiny model that never writes ```output: the loop is one round, same as generate."""
  from dsmath_jax.model import llama
  import flax.linen as nn
  config = llama.LlamaConfig(vocab_size=259, hidden_size=32, num_layers=2, num_heads=4,
                             num_kv_heads=2, head_dim=8, mlp_dim=64)
  params = jax.tree.map(lambda x: 4 * x, nn.unbox(llama.init_params(config, jax.random.key(0))))
  prompts = [TOKENIZER.encode("2+3="), TOKENIZER.encode("Solve x")]
  sampling = sampler.SamplingParams(max_new_tokens=12, greedy=True, num_samples=2)
  plain = sampler.generate(params, config, TOKENIZER, prompts, sampling, 0)
  sandbox = InProcessSandbox()
  tools = tool_loop.generate_with_tools(params, config, TOKENIZER, prompts, sampling, 0,
                                        sandbox=sandbox)
  assert sandbox.codes == []
  for a, b in zip(plain, tools):
    assert (a.prompt_index, a.token_ids, a.finish_reason, a.text) == (
        b.prompt_index, b.token_ids, b.finish_reason, b.text)
    np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-6)
    assert b.tool_mask == [0] * len(b.token_ids)
