"""Training a SentencePiece tokenizer for from-scratch experiments (the `tokenizer` task's library).

Beside its task (`tokenizer_task.py`) rather than in `tokenizer.py`, which only loads and runs
tokenizers: training needs the JSONL reader and SentencePiece's trainer, loading needs neither.
"""
import os
import tempfile
from collections.abc import Sequence

from dsmath_jax.jsonl import json_objects
from dsmath_jax.tokenizer import SentencePieceTokenizer


def iter_texts(input_files: Sequence[str], text_fields: Sequence[str]):
  """Lines of *.txt files; the named fields (joined by a newline) of each JSONL record."""
  for path in input_files:
    with open(path, encoding="utf-8") as f:
      if path.endswith((".jsonl", ".json")):
        for line_number, record in json_objects(path, f):
          parts = [record[k] for k in text_fields if isinstance(record.get(k), str)]
          if not parts:
            raise ValueError(f"{path}:{line_number}: none of the fields {list(text_fields)} "
                             f"holds a string (record keys: {sorted(record)})")
          yield "\n".join(parts)
      else:
        yield from (line.rstrip("\n") for line in f)


def train_sentencepiece(input_files: Sequence[str], model_prefix: str, vocab_size: int, *,
                        text_fields: Sequence[str] = ("text",), model_type: str = "bpe",
                        max_sentences: int = 2_000_000, **opts) -> SentencePieceTokenizer:
  """Trains a SentencePiece BPE with byte fallback and split digits, as DeepSeek's (paper §2.3).

  Ids: pad 0, bos 1, eos 2, unk 3. Text is kept verbatim (identity normalization, whitespace
  preserved, no dummy "▁" prefix, so encode(a) + encode(b) decodes to a + b) and LaTeX and
  code survive a round trip; anything unseen falls back to bytes.
  `opts` go to SentencePieceTrainer.train unchanged (e.g. character_coverage, num_threads).
  Returns the tokenizer loaded from `{model_prefix}.model`.
  """
  import sentencepiece as spm
  if os.path.dirname(model_prefix):
    os.makedirs(os.path.dirname(model_prefix), exist_ok=True)
  with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as corpus:
    count = 0
    for text in iter_texts(input_files, text_fields):
      # SentencePiece reads one sentence per line: a document's lines become sentences.
      for line in text.split("\n"):
        if line.strip():
          corpus.write(line + "\n")
          count += 1
  if count == 0:
    os.unlink(corpus.name)
    raise ValueError(f"no text found in {list(input_files)}")
  settings = dict(
      input=corpus.name, model_prefix=model_prefix, vocab_size=vocab_size, model_type=model_type,
      byte_fallback=True, split_digits=True, character_coverage=0.9999,
      normalization_rule_name="identity", remove_extra_whitespaces=False,
      allow_whitespace_only_pieces=True, add_dummy_prefix=False,
      pad_id=0, bos_id=1, eos_id=2, unk_id=3,
      input_sentence_size=max_sentences, shuffle_input_sentence=True,
      max_sentence_length=1 << 16, num_threads=os.cpu_count() or 1, minloglevel=2)
  settings.update(opts)
  try:
    spm.SentencePieceTrainer.train(**settings)
  finally:
    os.unlink(corpus.name)
  return SentencePieceTokenizer(model_prefix + ".model")
