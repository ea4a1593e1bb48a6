"""A tokenizer as GGUF `tokenizer.ggml.*` metadata: vocabulary, merges or scores, token types,
special ids, chat template; what llama.cpp's vocabulary loader (llama-vocab.cpp) reads and
what tokenizer.GGUFTokenizer reads back.

Per tokenizer class:
- GGUFTokenizer: its file's tokenizer.* fields, copied unchanged (a GGUF round trip keeps the
  vocabulary bit for bit).
- HFTokenizer with a byte-level BPE (SmolLM2, Qwen, Llama 3, DeepSeek): model "gpt2", tokens by
  id, merges, `pre` named from the pre-tokenizer when it is one llama.cpp knows (else "default",
  llama.cpp's GPT-2 split, with a warning); special added tokens CONTROL, other added USER_DEFINED.
- SentencePieceTokenizer (the BPE tokenizer_train trains, Llama 2): model "llama", pieces,
  scores, types (control / unknown / unused / byte), add_space_prefix as the model does it.
- ByteTokenizer: model "llama" whose pieces are the 256 byte-fallback tokens <0xXX> at ids 3..258
  (the space byte as "▁", which SentencePiece-style tokenizers turn every space into), no merges:
  llama.cpp and the importer encode every byte to id byte + 3, as ByteTokenizer does.
A vocabulary shorter than the model's embedding is padded with "[PAD{id}]" UNUSED tokens, as
convert_hf_to_gguf.py does, since llama.cpp takes n_vocab from the token list.
"""
import json

from absl import logging

from dsmath_jax import tokenizer as tokenizers

# GGUF token types (llama.cpp's llama_token_type).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _gpt2_pre(pre_tokenizer: dict | None) -> str | None:
  """llama.cpp's tokenizer.ggml.pre for a tokenizer.json pre-tokenizer, None when unknown."""
  if not pre_tokenizer:
    return None
  parts = (pre_tokenizer["pretokenizers"] if pre_tokenizer["type"] == "Sequence" else [pre_tokenizer])
  kinds = [p["type"] for p in parts]
  if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
    return "gpt-2"
  if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
    return "smollm"
  if kinds == ["Split", "ByteLevel"]:
    pattern = (parts[0].get("pattern") or {}).get("Regex")
    return next((name for name in ("llama-bpe", "qwen2") if tokenizers.GGUF_PRE_SPLITS[name] == pattern),
                None)
  return None


def _hf_fields(tokenizer: "tokenizers.HFTokenizer") -> dict:
  backend = tokenizer.backend
  spec = json.loads(backend.to_str())
  model = spec["model"]
  byte_level = (spec.get("decoder") or {}).get("type") == "ByteLevel"
  if model["type"] != "BPE" or not byte_level:
    raise ValueError(f"GGUF export: tokenizer {type(tokenizer).__name__} is a {model['type']} model "
                     f"(decoder {(spec.get('decoder') or {}).get('type')}); only byte-level BPE "
                     f"tokenizer.json files, SentencePiece models and the byte tokenizer are exported")
  size = backend.get_vocab_size(with_added_tokens=True)
  by_id = {index: token for token, index in backend.get_vocab(with_added_tokens=True).items()}
  added = backend.get_added_tokens_decoder()
  tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
  types = [(CONTROL if added[i].special else USER_DEFINED) if i in added
           else NORMAL if i in by_id else UNUSED for i in range(size)]
  merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
  pre = _gpt2_pre(spec.get("pre_tokenizer"))
  if pre is None:
    logging.warning("GGUF export: the pre-tokenizer %s is not one llama.cpp names; writing "
                    "tokenizer.ggml.pre='default' (llama.cpp splits with the GPT-2 regex)",
                    json.dumps(spec.get("pre_tokenizer"))[:200])
  return {"model": "gpt2", "pre": pre or "default", "tokens": tokens, "token_type": types,
          "merges": merges}


def _sentencepiece_fields(tokenizer: "tokenizers.SentencePieceTokenizer") -> dict:
  sp = tokenizer.processor
  size = sp.get_piece_size()
  types = [UNKNOWN if sp.is_unknown(i) else CONTROL if sp.is_control(i) else UNUSED if sp.is_unused(i)
           else BYTE if sp.is_byte(i) else NORMAL for i in range(size)]
  fields = {"model": "llama", "pre": "default", "tokens": [sp.id_to_piece(i) for i in range(size)],
            "scores": [float(sp.get_score(i)) for i in range(size)], "token_type": types,
            # The model's add_dummy_prefix, observed: does "a" encode as "▁a"?
            "add_space_prefix": sp.encode("a", out_type=str)[0].startswith("▁"),
            "add_bos_token": tokenizer.bos_id is not None, "add_eos_token": False}
  if sp.unk_id() >= 0:
    fields["unknown_token_id"] = sp.unk_id()
  return fields


def _byte_fields(tokenizer: "tokenizers.ByteTokenizer") -> dict:
  offset = tokenizer.OFFSET
  tokens = ["<pad>", "<s>", "</s>"] + ["▁" if b == 0x20 else f"<0x{b:02X}>" for b in range(256)]
  types = [CONTROL] * offset + [NORMAL if b == 0x20 else BYTE for b in range(256)]
  return {"model": "llama", "pre": "default", "tokens": tokens, "token_type": types,
          "scores": [0.0] * len(tokens), "add_space_prefix": False,
          "add_bos_token": True, "add_eos_token": False}


# tokenizer.ggml.<name> -> GGUF value type (and array item type), as llama.cpp's gguf-py writes them.
_TYPES = {"model": ("STRING", None), "pre": ("STRING", None), "tokens": ("ARRAY", "STRING"),
          "token_type": ("ARRAY", "INT32"), "merges": ("ARRAY", "STRING"), "scores": ("ARRAY", "FLOAT32"),
          "add_space_prefix": ("BOOL", None), "add_bos_token": ("BOOL", None),
          "add_eos_token": ("BOOL", None)}


def _value_type(key: str, value):
  """(GGUFValueType, item type) of a tokenizer.* field: the table above, else from the value."""
  import gguf
  kind = gguf.GGUFValueType
  name = key.removeprefix("tokenizer.ggml.")
  if key.startswith("tokenizer.ggml.") and name in _TYPES:
    value_type, item_type = _TYPES[name]
    return kind[value_type], (kind[item_type] if item_type else None)
  if key.endswith("_token_id"):
    return kind.UINT32, None
  if isinstance(value, list):
    item = value[0]
    return kind.ARRAY, (kind.STRING if isinstance(item, str) else kind.FLOAT32 if isinstance(item, float)
                        else kind.INT32)
  return {bool: kind.BOOL, int: kind.UINT32, float: kind.FLOAT32, str: kind.STRING}[type(value)], None


def vocabulary_fields(tokenizer, vocab_size: int) -> dict:
  """{GGUF key: (value, GGUFValueType, array item type or None)} for `tokenizer`, its token list
  padded to the model's `vocab_size`."""
  if isinstance(tokenizer, tokenizers.GGUFTokenizer):
    fields = dict(tokenizer.gguf_fields)
  else:
    if isinstance(tokenizer, tokenizers.ByteTokenizer):
      ggml = _byte_fields(tokenizer)
    elif isinstance(tokenizer, tokenizers.SentencePieceTokenizer):
      ggml = _sentencepiece_fields(tokenizer)
    elif isinstance(tokenizer, tokenizers.HFTokenizer):
      ggml = _hf_fields(tokenizer)
    else:
      raise ValueError(f"GGUF export: no GGUF vocabulary for a {type(tokenizer).__name__}")
    ggml.update(eos_token_id=tokenizer.eos_id, padding_token_id=tokenizer.pad_id)
    if tokenizer.bos_id is not None:
      ggml["bos_token_id"] = tokenizer.bos_id
    fields = {f"tokenizer.ggml.{name}": value for name, value in ggml.items()}
    if tokenizer.chat_template:
      fields["tokenizer.chat_template"] = tokenizer.chat_template
  tokens = fields["tokenizer.ggml.tokens"]
  if len(tokens) > vocab_size:
    raise ValueError(f"GGUF export: the tokenizer has {len(tokens)} tokens, more than the model's "
                     f"vocab_size {vocab_size}")
  padding = range(len(tokens), vocab_size)
  fields["tokenizer.ggml.tokens"] = list(tokens) + [f"[PAD{i}]" for i in padding]
  if "tokenizer.ggml.token_type" in fields:
    fields["tokenizer.ggml.token_type"] = list(fields["tokenizer.ggml.token_type"]) + [UNUSED] * len(padding)
  if "tokenizer.ggml.scores" in fields:
    fields["tokenizer.ggml.scores"] = list(fields["tokenizer.ggml.scores"]) + [-1000.0] * len(padding)
  return {key: (value, *_value_type(key, value)) for key, value in fields.items()
          if not (isinstance(value, list) and not value)}     # GGUF cannot store an empty array
