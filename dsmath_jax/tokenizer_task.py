"""Task `tokenizer`: train a SentencePiece BPE (byte fallback, split digits) on text/JSONL files.

For from-scratch experiments (paper §2.2 trains 1.3B models from scratch on each corpus to
compare them); released checkpoints keep their own tokenizer. Writes WORKDIR/tokenizer/
tokenizer.model (what `config.data.tokenizer` of the pretrain/SFT configs takes) and
WORKDIR/tokenizer_stats.json: bytes and characters per token and the exact round-trip rate on
a sample of the input texts.
"""
import dataclasses
import json
import os
import time

from absl import logging

from dsmath_jax import config_types
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax import tokenizer_train


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
  """The top-level keys of configs/tokenizer.py."""
  vocab_size: int                # pieces, bytes included (match the model's vocab_size)
  model_type: str                # "bpe" | "unigram"
  character_coverage: float      # the rarest characters fall back to bytes
  output: str                    # "" = WORKDIR/tokenizer
  stats_sample: int              # texts used for tokenizer_stats.json

  @classmethod
  def from_config(cls, config) -> "TokenizerConfig":
    return config_types.from_section(cls, config, where="config", ignore=("task", "data"))


@dataclasses.dataclass(frozen=True)
class TextConfig:
  """The `data` section of configs/tokenizer.py: the training text."""
  files: tuple[str, ...]         # text or JSONL files
  text_fields: tuple[str, ...]   # JSONL fields joined into a text
  max_sentences: int             # SentencePiece input_sentence_size
  generated_size: int            # > 0: add that many generated arithmetic texts (`:tiny`)

  @classmethod
  def from_config(cls, section, where: str = "config.data") -> "TextConfig":
    return config_types.from_section(cls, section, where=where)


def _tiny_corpus(workdir: str, size: int) -> str:
  """Generated arithmetic problems (no files needed): the `:tiny` input."""
  from dsmath_jax.data.sources import arithmetic_records
  path = os.path.join(workdir, "tiny_corpus.jsonl")
  with open(path, "w") as f:
    for record in arithmetic_records(size, seed=0):
      f.write(json.dumps({"text": record["text"]}) + "\n")
  return path


def corpus_stats(tokenizer: tokenizers.Tokenizer, texts: list[str]) -> dict:
  """Compression (bytes/chars per token) and the fraction of texts that decode back exactly."""
  token_count = sum(len(tokenizer.encode(t)) for t in texts)
  exact = sum(tokenizer.decode(tokenizer.encode(t)) == t for t in texts)
  return dict(texts=len(texts), tokens=token_count,
              bytes_per_token=sum(len(t.encode("utf-8")) for t in texts) / max(token_count, 1),
              chars_per_token=sum(len(t) for t in texts) / max(token_count, 1),
              round_trip_exact=exact / max(len(texts), 1))


def typed_config(config) -> tuple[TokenizerConfig, TextConfig]:
  """The door: every key of the config read once, unknown or missing keys refused by name."""
  return TokenizerConfig.from_config(config), TextConfig.from_config(config.data)


def run(config, workdir: str) -> dict:
  """Task `tokenizer`: typed values (typed_config), then `train_tokenizer`."""
  config_types.write_config(config, workdir)
  return train_tokenizer(*typed_config(config), workdir)


def train_tokenizer(c: TokenizerConfig, data: TextConfig, workdir: str) -> dict:
  """Trains on `data`, writes the model and WORKDIR/tokenizer_stats.json; returns the stats."""
  os.makedirs(workdir, exist_ok=True)
  files = list(data.files)
  if data.generated_size:
    files.append(_tiny_corpus(workdir, data.generated_size))
  if not files:
    raise ValueError("tokenizer: name the training text with --config.data.files=\"('a.jsonl', "
                     "'b.txt')\" (JSONL records use config.data.text_fields)")
  for path in files:
    if not os.path.isfile(path):
      raise FileNotFoundError(f"tokenizer: config.data.files names {path}, which does not exist")
  output = c.output or os.path.join(workdir, "tokenizer")
  os.makedirs(output, exist_ok=True)
  start = time.perf_counter()
  logging.info("tokenizer: training %s (vocab %d) on %s", c.model_type, c.vocab_size, files)
  tokenizer = tokenizer_train.train_sentencepiece(
      files, os.path.join(output, "tokenizer"), c.vocab_size, text_fields=data.text_fields,
      model_type=c.model_type, max_sentences=data.max_sentences,
      character_coverage=c.character_coverage)
  seconds = time.perf_counter() - start
  sample = []
  for text in tokenizer_train.iter_texts(files, data.text_fields):
    sample.append(text)
    if len(sample) >= c.stats_sample:
      break
  stats = dict(corpus_stats(tokenizer, sample), vocab_size=tokenizer.vocab_size,
               train_seconds=round(seconds, 2), files=files,
               model=os.path.abspath(os.path.join(output, "tokenizer.model")),
               special_ids=dict(pad=tokenizer.pad_id, bos=tokenizer.bos_id, eos=tokenizer.eos_id))
  with open(os.path.join(workdir, "tokenizer_stats.json"), "w") as f:
    json.dump(stats, f, indent=1)
  logging.info("tokenizer: %s in %.1f s; %.2f bytes/token, round trip %.3f", stats["model"],
               seconds, stats["bytes_per_token"], stats["round_trip_exact"])
  return stats
