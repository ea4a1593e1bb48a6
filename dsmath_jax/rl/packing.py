"""GRPO training rows: one copy of a prompt followed by `outputs_per_row` of its G responses.

The G outputs of a question share their prompt, so a row holds the prompt once and k of
the responses after it; every response attends to the prompt and to itself only
(Transformer's `prefix_segment_ids`), with positions continuing from the prompt's end, so
each response's log-probs are exactly those of its own `prompt + response` row. With
k = G the prompt is computed once per group instead of G times; k = 1 is one output per row.
Dense attention costs (prompt + k * max_new)^2 per row, so long responses want a small k.

Row layout (prompt P tokens, responses R_1..R_k):
  tokens              [rows, seq]  P R_1 R_2 ... R_k pad...
  segment_ids         [rows, seq]  1 (prompt), j + 1 (response j), 0 (padding)
  prefix_segment_ids  [rows, seq]  1 on response tokens (they also see segment 1), else 0
  positions           [rows, seq]  0..|P|-1, then |P|..|P|+|R_j|-1 for every response j
Per response token (k responses x n = max_new_tokens slots each):
  target_slots        [rows, k, n] the slot whose logits predict it (the prompt's last slot
                                   for a response's first token)
  target_tokens, loss_mask, old_logprobs, advantages  [rows, k, n]
`seq` is the longest row rounded up to `seq_multiple`, so a few shapes cover every step.
"""
from collections.abc import Sequence

import numpy as np

ROW_FIELDS = ("tokens", "segment_ids", "prefix_segment_ids", "positions")
TARGET_FIELDS = ("target_slots", "target_tokens", "loss_mask", "old_logprobs", "advantages")


def num_rows(num_outputs: int, outputs_per_row: int, row_multiple: int = 1) -> int:
  """Rows for `num_outputs`, padded up to a multiple of `row_multiple` (devices x mini-batches)."""
  return -(-(num_outputs // outputs_per_row) // row_multiple) * row_multiple


def pack_outputs(completions, token_advantages: Sequence[np.ndarray], valid, *, outputs_per_row: int,
                 max_new_tokens: int, pad_id: int, seq_multiple: int = 64, row_multiple: int = 1) -> dict:
  """Rows (module doc) from prompt-major sampler Completions.

  token_advantages[i]: [len(completion i's tokens)]; valid[i] False (the reward failed)
  keeps output i in its row without loss. Tool-output tokens (tool_mask) carry no loss.
  Empty rows (all padding, no loss) are added up to a multiple of `row_multiple`, so any
  number of questions splits over the devices and mini-batches.
  """
  k, n = int(outputs_per_row), int(max_new_tokens)
  if len(completions) % k:
    raise ValueError(f"rl.outputs_per_row={k} does not divide the {len(completions)} outputs of the step")
  chunks = [completions[i:i + k] for i in range(0, len(completions), k)]
  for row, chunk in enumerate(chunks):
    if any(list(c.prompt_ids) != list(chunk[0].prompt_ids) for c in chunk):
      raise ValueError(f"row {row}: its {k} outputs do not share one prompt; rl.outputs_per_row must "
                       "divide rl.group_size")
  lengths = [len(chunk[0].prompt_ids) + sum(min(len(c.token_ids), n) for c in chunk) for chunk in chunks]
  seq = -(-max(lengths) // seq_multiple) * seq_multiple
  rows = num_rows(len(completions), k, row_multiple)
  batch = {name: np.zeros((rows, seq), np.int32) for name in ROW_FIELDS}
  batch["tokens"][:] = pad_id
  batch.update({name: np.zeros((rows, k, n), np.int32) for name in ("target_slots", "target_tokens")})
  batch.update({name: np.zeros((rows, k, n), np.float32)
                for name in ("loss_mask", "old_logprobs", "advantages")})
  for row, chunk in enumerate(chunks):
    prompt = np.asarray(chunk[0].prompt_ids, np.int32)
    p = len(prompt)
    batch["tokens"][row, :p] = prompt
    batch["segment_ids"][row, :p] = 1
    batch["positions"][row, :p] = np.arange(p)
    start = p
    for j, completion in enumerate(chunk):
      index = row * k + j
      response = np.asarray(completion.token_ids[:n], np.int32)
      length = len(response)
      span = slice(start, start + length)
      batch["tokens"][row, span] = response
      batch["segment_ids"][row, span] = j + 2
      batch["prefix_segment_ids"][row, span] = 1
      batch["positions"][row, span] = p + np.arange(length)
      slots = np.arange(start - 1, start + length - 1)
      slots[0:1] = p - 1                                         # the first token is predicted by the prompt
      batch["target_slots"][row, j, :length] = slots
      batch["target_tokens"][row, j, :length] = response
      not_tool = 1.0 - np.asarray(completion.tool_mask[:length], np.float32)
      batch["loss_mask"][row, j, :length] = not_tool * float(valid[index])
      batch["old_logprobs"][row, j, :length] = np.asarray(completion.logprobs[:length], np.float32)
      batch["advantages"][row, j, :length] = np.asarray(token_advantages[index], np.float32)[:length]
      start += length
  return batch
