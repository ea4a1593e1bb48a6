"""Tokenized examples -> packed rows of seq_len with segment ids, positions and loss mask.

Row convention (docs/conventions.md, "Batches"): `tokens` [seq] int32; `segment_ids` numbers the
documents of a row 1..n, 0 is padding; `positions` restart at 0 per document;
`loss_mask` [seq] float32 is 1 where tokens[t] is a prediction TARGET (aligned with the
targets; the loss shifts). SFT (paper §3.1) trains on responses only: the loss mask is 0
over BOS and the prompt, 1 over the response and its EOS.

Pretraining packs with concat-then-split (documents cross row boundaries, no padding);
SFT packs whole examples first-fit (an example is never split, rows are padded). Both are
grain IterDatasets whose position is checkpointable.
"""
import grain
import numpy as np
from grain import experimental as grain_experimental


def text_example(text_ids, bos_id, eos_id, seq_len: int | None = None) -> dict:
  """A pretraining document: [BOS] text [EOS], every token a target."""
  ids = ([] if bos_id is None else [bos_id]) + list(text_ids) + [eos_id]
  tokens = np.asarray(ids, np.int32)
  return {"tokens": tokens, "loss_mask": np.ones(len(tokens), np.float32)}


def sft_example(prompt_ids, response_ids, bos_id: int | None, eos_id: int | None, seq_len: int) -> dict:
  """[BOS] prompt response [EOS], loss only on response + EOS; truncated to seq_len. bos_id/eos_id
  None: none added (a chat template writes its own, data/pipeline.py)."""
  head = ([] if bos_id is None else [bos_id]) + list(prompt_ids)
  tail = list(response_ids) + ([] if eos_id is None else [eos_id])
  tokens = np.asarray(head + tail, np.int32)[:seq_len]
  loss_mask = np.asarray([0.0] * len(head) + [1.0] * len(tail), np.float32)[:seq_len]
  return {"tokens": tokens, "loss_mask": loss_mask}


def positions_from_segments(segment_ids: np.ndarray) -> np.ndarray:
  """Positions restarting at 0 at each new segment (padding gets 0-based runs too)."""
  index = np.arange(segment_ids.shape[-1])
  starts = np.concatenate([[True], segment_ids[1:] != segment_ids[:-1]])
  return (index - np.maximum.accumulate(np.where(starts, index, 0))).astype(np.int32)


def to_row(packed: dict) -> dict:
  """grain packer output -> the batch-row convention (positions restart per segment, so a
  document continued from the previous row starts again at 0)."""
  segment_ids = np.asarray(packed["tokens_segment_ids"], np.int32)
  return {"tokens": np.asarray(packed["tokens"], np.int32), "segment_ids": segment_ids,
          "positions": positions_from_segments(segment_ids),
          "loss_mask": np.asarray(packed["loss_mask"], np.float32) * (segment_ids > 0)}


def pack(dataset: grain.IterDataset, seq_len: int, mode: str, *, num_packing_bins: int = 16,
         seed: int = 0, shuffle_bins: bool = True) -> grain.IterDataset:
  """IterDataset of examples ({tokens, loss_mask} of any length) -> rows (see `to_row`)."""
  lengths = {"tokens": seq_len, "loss_mask": seq_len}
  if mode == "concat":
    packed = grain_experimental.ConcatThenSplitIterDataset(dataset, length_struct=lengths)
  elif mode == "first_fit":
    packed = grain_experimental.FirstFitPackIterDataset(
        dataset, length_struct=lengths, num_packing_bins=num_packing_bins, seed=seed,
        shuffle_bins=shuffle_bins)
  else:
    raise ValueError(f"data.packing={mode!r}: expected 'concat' or 'first_fit'")
  return packed.map(to_row)
