"""Training batches: a weighted mixture of sources, tokenized and packed, read with grain.

  sources (TFDS / JSONL / generated) -> shuffle(seed) -> repeat -> tokenize
  -> IterDataset.mix(weights) -> pack to seq_len -> batch(global rows) -> this host's rows

Pretraining mixes the paper's corpus sources by weight (§2.3: 56% DeepSeekMath Corpus,
4% AlgebraicStack, 10% arXiv, 20% GitHub code, 10% Common Crawl) and packs documents
concat-then-split; SFT (§3.1) renders each question with the CoT/tool template (or, with
`template="chat"`, the checkpoint's chat template, as GRPO does), masks the prompt and packs
whole examples first-fit. Everything is a function of `data.seed`, and
the iterator's get_state/set_state goes into the checkpoint (train/checkpointing.py).

Every host builds the same global batches and keeps its own rows, so a run on P hosts trains on
exactly the batches of a 1-host run (same losses; tests/test_multiprocess.py). Packing is
sequential (concat-then-split carries a document across rows; first-fit fills bins in
order), so hosts that sharded the records and packed their shards alone would build other rows.
The price is that each host tokenizes and packs the whole global batch; `worker_count` spreads
that over processes.
A source without `weight` is sampled in proportion to its number of records (SFT: the
union of all instruction data, as in §3.1); weight 0 drops it.
"""
import dataclasses
import functools
from collections.abc import Mapping

import grain
import jax

from dsmath_jax import config_types, lifeline, templates
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.data import packing, sources


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The `data` section of a pretrain/SFT config: what the batches hold and how they are made."""
  seq_len: int                                  # tokens per row
  global_batch: int                             # rows per optimizer step, over all hosts
  sources: Mapping[str, sources.SourceSpec]     # name -> where its records come from
  tokenizer: str = ""                           # load_tokenizer path or "byte"; "" = the checkpoint's
  seed: int = 0                                 # shuffling and first-fit bin order
  packing: str = "concat"                       # "concat" (pretraining) | "first_fit" (SFT)
  packing_bins: int = 16                        # first_fit: rows filled at once
  worker_count: int = 0                         # grain processes that tokenize and pack (0: in the loop)
  template: str = "cot"                         # SFT: templates.py name for records without a prompt;
                                                # "chat": the checkpoint's chat template (as in GRPO)

  @classmethod
  def from_config(cls, section, where: str = "config.data") -> "DataConfig":
    fields = config_types.strict_fields(cls, section, where=where)
    fields["sources"] = sources.source_specs(fields["sources"], f"{where}.sources")
    data = cls(**fields)
    config_types.require(data, where, positive=("seq_len", "global_batch", "packing_bins"),
                         non_negative=("worker_count",))
    if data.template not in (*templates.TEMPLATES, templates.CHAT):
      raise ValueError(f"{where}.template={data.template!r}: expected one of "
                       f"{sorted(templates.TEMPLATES) + [templates.CHAT]}")
    return data

  def input_paths(self, where: str = "config.data") -> list[tuple[str, str]]:
    """(config key, path) of every file this section reads (config_types.check_paths)."""
    return [(f"{where}.tokenizer", self.tokenizer)] + sources.source_paths(self.sources, f"{where}.sources")


def host_rows(global_batch: int, process_count: int, process_index: int) -> slice:
  """Rows [p*B/P, (p+1)*B/P) of the global batch that host p feeds (make_array_from_process_local_data)."""
  if global_batch % process_count:
    raise ValueError(f"data.global_batch={global_batch} does not divide over "
                     f"{process_count} hosts")
  rows = global_batch // process_count
  return slice(process_index * rows, (process_index + 1) * rows)


def _example(record: dict, *, kind: str, tokenizer, seq_len: int, template: str) -> dict:
  """One record -> {tokens, loss_mask} (kind 'text': pretraining; 'sft': prompt masked)."""
  if kind == "text":
    return packing.text_example(tokenizer.encode(record["text"]), tokenizer.bos_id,
                                tokenizer.eos_id)
  if template == templates.CHAT:
    return _chat_example(record, tokenizer, seq_len)
  prompt = record.get("prompt") or templates.render(record["question"],
                                                    record.get("format") or template)
  return packing.sft_example(tokenizer.encode(prompt), tokenizer.encode(record["response"]),
                             tokenizer.bos_id, tokenizer.eos_id, seq_len)


def _chat_example(record: dict, tokenizer, seq_len: int) -> dict:
  """The record as a user turn (its template's instruction, templates.user_message) and an
  assistant turn, in the checkpoint's chat template: the prompt is the template's rendering with
  the generation prompt, exactly what GRPO and the sampler feed (rl/questions.py); the loss covers
  the assistant's text through the first EOS (the end of turn the sampler stops at) and nothing
  after it. The template writes BOS itself where it wants one."""
  if "question" not in record:
    raise ValueError(f"data.template='chat' renders a record's `question`; this record has only "
                     f"{sorted(record)}")
  user = {"role": "user", "content": templates.user_message(record["question"], record.get("format") or "cot")}
  # The paper's responses start with the space that follows "Assistant:"; a chat turn has none.
  assistant = {"role": "assistant", "content": record["response"].lstrip()}
  prompt = tokenizers.render_chat(tokenizer, [user], add_generation_prompt=True)
  conversation = tokenizers.render_chat(tokenizer, [user, assistant], add_generation_prompt=False)
  if not conversation.startswith(prompt):
    raise ValueError(f"chat template: the conversation does not begin with the prompt it renders for "
                     f"generation, so the response's tokens cannot be told apart: {prompt[-80:]!r}")
  response_ids = tokenizer.encode(conversation[len(prompt):])
  if tokenizer.eos_id in response_ids:
    response_ids = response_ids[:response_ids.index(tokenizer.eos_id) + 1]
  else:                               # an end of turn other than EOS: the sampler stops at EOS
    response_ids.append(tokenizer.eos_id)
  return packing.sft_example(tokenizer.encode(prompt), response_ids, None, None, seq_len)


def examples(data: DataConfig, tokenizer, kind: str, *, shuffle: bool = True,
             repeat: bool = True) -> grain.IterDataset:
  """The weighted mixture of `data.sources` as an IterDataset of tokenized examples (every host's)."""
  make_example = functools.partial(_example, kind=kind, tokenizer=tokenizer, seq_len=data.seq_len,
                                   template=data.template)
  datasets, weights = [], []
  for index, (name, spec) in enumerate(sorted(data.sources.items())):
    weight = spec.weight
    if weight is not None and weight <= 0:
      continue
    dataset = sources.open_source(spec)
    weight = len(dataset) if weight is None else float(weight)   # no weight: by size
    if len(dataset) == 0:
      raise ValueError(f"data.sources.{name}: no records")
    if shuffle:
      dataset = dataset.shuffle(seed=data.seed + index)
    if repeat:
      dataset = dataset.repeat()
    datasets.append(dataset.map(make_example).to_iter_dataset())
    weights.append(weight)
  if not datasets:
    raise ValueError("data.sources: no source with weight > 0")
  if len(datasets) == 1:
    return datasets[0]
  return grain.IterDataset.mix(datasets, weights)


def batches(data: DataConfig, tokenizer, kind: str, *, rows: slice | None = None,
            process_index: int | None = None, process_count: int | None = None,
            shuffle: bool = True, repeat: bool = True) -> grain.IterDataset:
  """IterDataset of this host's batches: dicts of numpy [host_rows, seq_len] arrays.

  rows: the rows of each global batch this host feeds (sharding.process_rows of the batch
  sharding); None: host_rows(global_batch, process_count, process_index).
  """
  if rows is None:
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    rows = host_rows(data.global_batch, process_count, process_index)
  mixture = examples(data, tokenizer, kind, shuffle=shuffle, repeat=repeat)
  packed = packing.pack(mixture, data.seq_len, data.packing, num_packing_bins=data.packing_bins,
                        seed=data.seed, shuffle_bins=shuffle)
  batched = packed.batch(data.global_batch, drop_remainder=True)   # [global_batch, seq_len]
  if rows != slice(0, data.global_batch):
    batched = batched.map(functools.partial(_take_rows, rows=rows))   # [host_rows, seq_len]
  if data.worker_count > 0:    # tokenize + pack in child processes; the state stays checkpointable
    batched = batched.mp_prefetch(grain.MultiprocessingOptions(num_workers=data.worker_count),
                                  worker_init_fn=_exit_with_parent)
  return batched


def _exit_with_parent(worker_index: int, worker_count: int) -> None:
  """grain's worker_init_fn: a worker dies with the training process (issue 16), even SIGKILLed."""
  lifeline.exit_with_parent()


def _take_rows(batch: dict, *, rows: slice) -> dict:
  return {name: value[rows] for name, value in batch.items()}


def batch_spec(data: DataConfig) -> dict:
  """{name: global shape} of a training batch."""
  shape = (data.global_batch, data.seq_len)
  return {name: shape for name in ("tokens", "segment_ids", "positions", "loss_mask")}
