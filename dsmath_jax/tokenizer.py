"""Tokenizers behind one small interface: bytes, SentencePiece, HF `tokenizers`, a GGUF's vocabulary.

DeepSeekMath keeps the DeepSeek LLM tokenizer (paper §2.3: byte-level BPE, 100K vocabulary, digits
split); released checkpoints bring theirs as tokenizer.json or inside a GGUF file, and from-scratch
experiments train a SentencePiece BPE with byte fallback (`tokenizer_train.train_sentencepiece`). Every tokenizer
here has the same surface:

  encode(text) -> list[int]      never adds BOS/EOS: callers add `bos_id`/`eos_id` explicitly
  decode(ids) -> str             drops special/control tokens
  vocab_size, bos_id (None when the vocabulary has none), eos_id, pad_id (= eos_id if no pad)
  chat_template                  the checkpoint's jinja chat template, or None
  save(directory) -> str         writes its file(s) there; returns what `load_tokenizer` takes

`load_tokenizer(path)` picks the class from the path ("byte", *.model, tokenizer.json or a
directory holding one, *.gguf), and `render_chat(tokenizer, messages)` applies the chat template.
"""
import json
import os
import shutil
from collections.abc import Iterable, Sequence

_BYTE_MARKER = "byte_tokenizer.json"   # what ByteTokenizer.save writes, so a model dir names it


class Tokenizer:
  """The interface; subclasses set the attributes in __init__."""
  vocab_size: int
  bos_id: int | None
  eos_id: int
  pad_id: int
  chat_template: str | None = None

  def encode(self, text: str) -> list[int]:
    raise NotImplementedError

  def decode(self, ids: Iterable[int]) -> str:
    raise NotImplementedError

  def save(self, directory: str) -> str:
    raise NotImplementedError

  def token_text(self, token_id: int) -> str:
    """The special-token string for an id (for templates): '<|im_end|>', '</s>', ..."""
    raise NotImplementedError


class ByteTokenizer(Tokenizer):
  """UTF-8 bytes: pad 0, bos 1, eos 2, byte b -> b + 3 (vocab 259). Needs no files: `:tiny` runs."""
  OFFSET = 3

  def __init__(self):
    self.vocab_size, self.pad_id, self.bos_id, self.eos_id = 256 + self.OFFSET, 0, 1, 2

  def encode(self, text: str) -> list[int]:
    return [b + self.OFFSET for b in text.encode("utf-8")]

  def decode(self, ids: Iterable[int]) -> str:
    data = bytes(int(i) - self.OFFSET for i in ids if self.OFFSET <= int(i) < self.vocab_size)
    return data.decode("utf-8", errors="replace")

  def token_text(self, token_id: int) -> str:
    return {0: "<pad>", 1: "<s>", 2: "</s>"}.get(token_id) or self.decode([token_id])

  def save(self, directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, _BYTE_MARKER)
    with open(path, "w") as f:
      json.dump({"type": "byte", "vocab_size": self.vocab_size}, f)
    return path


class SentencePieceTokenizer(Tokenizer):
  """A SentencePiece model file (trained by `train_sentencepiece` or shipped as tokenizer.model)."""

  def __init__(self, model_path: str):
    import sentencepiece as spm
    if not os.path.isfile(model_path):
      raise FileNotFoundError(f"SentencePiece model {model_path} does not exist")
    self.model_path = model_path
    self._sp = spm.SentencePieceProcessor(model_file=model_path)
    self.vocab_size = self._sp.get_piece_size()
    self.bos_id = self._sp.bos_id() if self._sp.bos_id() >= 0 else None
    if self._sp.eos_id() < 0:
      raise ValueError(f"{model_path}: the SentencePiece model has no EOS piece (eos_id=-1)")
    self.eos_id = self._sp.eos_id()
    self.pad_id = self._sp.pad_id() if self._sp.pad_id() >= 0 else self.eos_id

  def encode(self, text: str) -> list[int]:
    return list(self._sp.encode(text, out_type=int))

  def decode(self, ids: Iterable[int]) -> str:
    return self._sp.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size])

  def token_text(self, token_id: int) -> str:
    return self._sp.id_to_piece(int(token_id))

  @property
  def processor(self):
    """The sentencepiece.SentencePieceProcessor (pieces, scores, types: the GGUF export reads them)."""
    return self._sp

  def save(self, directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tokenizer.model")
    if os.path.abspath(path) != os.path.abspath(self.model_path):
      shutil.copyfile(self.model_path, path)
    return path


# Names that mark the end of a document in common vocabularies, tried in order when a
# tokenizer.json comes without tokenizer_config.json / config.json to name its EOS.
_EOS_GUESSES = ("</s>", "<|endoftext|>", "<｜end▁of▁sentence｜>", "<|end_of_text|>", "<eos>")


def _token_content(token) -> str | None:
  return token.get("content") if isinstance(token, dict) else token


class HFTokenizer(Tokenizer):
  """A Hugging Face `tokenizers` tokenizer (tokenizer.json), with its special tokens and template.

  Special tokens come from tokenizer_config.json beside the file (else special_tokens_map.json,
  else config.json's *_token_id, else well-known EOS names); the chat template from
  chat_template.jinja (transformers 5 writes it there), else tokenizer_config.json.
  The constructor also takes an already built `tokenizers.Tokenizer` (see GGUFTokenizer).
  """

  def __init__(self, path_or_dir, *, backend=None, special_tokens: dict | None = None,
               chat_template: str | None = None):
    from tokenizers import Tokenizer as Backend
    if backend is None:
      path = path_or_dir
      if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
      if not os.path.isfile(path):
        raise FileNotFoundError(f"no tokenizer.json at {path_or_dir}")
      backend = Backend.from_file(path)
      special_tokens, chat_template = _read_tokenizer_config(os.path.dirname(path))
    self._tok = backend
    self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
    self.chat_template = chat_template
    special_tokens = dict(special_tokens or {})
    ids = {}
    for name in ("bos", "eos", "pad"):
      value = special_tokens.get(name)
      if isinstance(value, str):
        value = backend.token_to_id(value)
      ids[name] = value
    if ids["eos"] is None:
      guesses = [backend.token_to_id(t) for t in _EOS_GUESSES]
      ids["eos"] = next((g for g in guesses if g is not None), None)
    if ids["eos"] is None:
      raise ValueError(f"{path_or_dir}: cannot tell the EOS token: add tokenizer_config.json "
                       f"with an eos_token, or a config.json with eos_token_id")
    self.bos_id, self.eos_id = ids["bos"], ids["eos"]
    self.pad_id = self.eos_id if ids["pad"] is None else ids["pad"]

  def encode(self, text: str) -> list[int]:
    return self._tok.encode(text, add_special_tokens=False).ids

  def decode(self, ids: Iterable[int]) -> str:
    return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

  def token_text(self, token_id: int) -> str:
    return self._tok.id_to_token(int(token_id))

  @property
  def backend(self):
    """The `tokenizers.Tokenizer` (its JSON: model, merges, pre-tokenizer; the GGUF export reads it)."""
    return self._tok

  def save(self, directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    self._tok.save(os.path.join(directory, "tokenizer.json"))
    config = {"bos_token": None if self.bos_id is None else self.token_text(self.bos_id),
              "eos_token": self.token_text(self.eos_id), "pad_token": self.token_text(self.pad_id)}
    if self.chat_template:
      # Both places: transformers 5 reads chat_template.jinja first, older versions only the
      # tokenizer_config.json key.
      config["chat_template"] = self.chat_template
      with open(os.path.join(directory, CHAT_TEMPLATE_FILE), "w", encoding="utf-8") as f:
        f.write(self.chat_template)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
      json.dump(config, f, indent=1, ensure_ascii=False)
    return directory


CHAT_TEMPLATE_FILE = "chat_template.jinja"


def _read_tokenizer_config(directory: str) -> tuple[dict, str | None]:
  """({'bos'|'eos'|'pad': token string or id}, chat_template) from the files beside tokenizer.json.

  The template of chat_template.jinja wins over tokenizer_config.json's, as in transformers."""
  def read(name):
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
      return {}
    with open(path) as f:
      try:
        return json.load(f)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from e

  tokenizer_config, special_map, model_config = (
      read("tokenizer_config.json"), read("special_tokens_map.json"), read("config.json"))
  special = {}
  for name in ("bos", "eos", "pad"):
    value = _token_content(tokenizer_config.get(f"{name}_token") or special_map.get(f"{name}_token"))
    if value is None:
      value = model_config.get(f"{name}_token_id")
      value = value[0] if isinstance(value, list) else value
    special[name] = value
  template = tokenizer_config.get("chat_template")
  if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
    template = next((t["template"] for t in template if t.get("name") == "default"), None)
  template_path = os.path.join(directory, CHAT_TEMPLATE_FILE)
  if os.path.isfile(template_path):
    with open(template_path, encoding="utf-8") as f:
      template = f.read()
  return special, template


class GGUFTokenizer(HFTokenizer):
  """The vocabulary embedded in a GGUF file (tokenizer.ggml.*), rebuilt as a `tokenizers` BPE.

  Supports `tokenizer.ggml.model` "gpt2" (byte-level BPE: SmolLM2, DeepSeek, Llama 3, Qwen) and
  "llama" (SentencePiece BPE with byte fallback; merges recovered from scores when absent).
  The split regex follows `tokenizer.ggml.pre` as llama.cpp does ("smollm" splits every digit).
  `save` writes tokenizer.json + tokenizer_config.json, which load back as an HFTokenizer.
  """

  def __init__(self, gguf_path: str):
    from dsmath_jax.gguf_file import read_gguf
    metadata, _, _ = read_gguf(gguf_path)
    fields = {name: value for name, value in metadata.items() if name.startswith("tokenizer.")}
    backend = build_gguf_backend(fields, gguf_path)
    tokens = fields["tokenizer.ggml.tokens"]
    special = {name: fields.get(f"tokenizer.ggml.{key}_token_id")
               for name, key in (("bos", "bos"), ("eos", "eos"), ("pad", "padding"))}
    if special["bos"] is not None and special["bos"] >= len(tokens):
      special["bos"] = None
    self.gguf_path = gguf_path
    self.gguf_fields = fields      # the file's tokenizer.* metadata, which a GGUF export copies
    super().__init__(gguf_path, backend=backend, special_tokens=special,
                     chat_template=fields.get("tokenizer.chat_template"))


# llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp), by tokenizer.ggml.pre.
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
GGUF_PRE_SPLITS = {"llama3": _LLAMA3_SPLIT, "llama-v3": _LLAMA3_SPLIT, "llama-bpe": _LLAMA3_SPLIT,
           "smaug-bpe": _LLAMA3_SPLIT, "qwen2": _QWEN2_SPLIT, "deepseek-r1-qwen": _QWEN2_SPLIT}


def build_gguf_backend(fields: dict, where: str = "GGUF"):
  """A `tokenizers.Tokenizer` from a GGUF's tokenizer.ggml.* metadata (a dict of python values)."""
  from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers
  from tokenizers import Tokenizer as Backend
  kind = fields.get("tokenizer.ggml.model")
  tokens = fields.get("tokenizer.ggml.tokens")
  if tokens is None:
    raise ValueError(f"{where}: no tokenizer.ggml.tokens: the file carries no vocabulary")
  token_types = fields.get("tokenizer.ggml.token_type") or [1] * len(tokens)
  vocab = {token: index for index, token in enumerate(tokens)}
  merges = fields.get("tokenizer.ggml.merges")
  if kind == "gpt2":
    backend = Backend(models.BPE(vocab, [tuple(m.split(" ", 1)) for m in merges or []],
                                 ignore_merges=False))
    pre = fields.get("tokenizer.ggml.pre", "default")
    if pre == "smollm":   # llama.cpp: "\p{N}" then the GPT-2 regex
      backend.pre_tokenizer = pre_tokenizers.Sequence([
          pre_tokenizers.Digits(individual_digits=True),
          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif pre in GGUF_PRE_SPLITS:
      backend.pre_tokenizer = pre_tokenizers.Sequence([
          pre_tokenizers.Split(Regex(GGUF_PRE_SPLITS[pre]), behavior="isolated"),
          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:                 # "default", "gpt-2", and anything unknown: the GPT-2 regex
      backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
  elif kind == "llama":
    if merges is None:
      merges = _merges_from_scores(tokens, fields.get("tokenizer.ggml.scores"), where)
    else:
      merges = [tuple(m.split(" ", 1)) for m in merges]
    unk = fields.get("tokenizer.ggml.unknown_token_id")
    backend = Backend(models.BPE(vocab, merges, unk_token=None if unk is None else tokens[unk],
                                 fuse_unk=True, byte_fallback=True))
    prefix = fields.get("tokenizer.ggml.add_space_prefix", True)
    backend.normalizer = normalizers.Sequence(
        ([normalizers.Prepend("▁")] if prefix else []) + [normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
        + ([decoders.Strip(" ", 1, 0)] if prefix else []))
  else:
    raise ValueError(f"{where}: tokenizer.ggml.model={kind!r} is not supported "
                     f"(supported: 'gpt2' byte-level BPE, 'llama' SentencePiece BPE)")
  # Control tokens (type 3) are special: matched whole and dropped by decode; user-defined
  # tokens (type 4) are matched whole but kept.
  backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                              for t, kind_ in zip(tokens, token_types) if kind_ == 3])
  backend.add_tokens([AddedToken(t, special=False, normalized=False)
                      for t, kind_ in zip(tokens, token_types) if kind_ == 4])
  return backend


def _merges_from_scores(tokens: Sequence[str], scores, where: str) -> list[tuple[str, str]]:
  """BPE merges implied by a SentencePiece vocabulary: each piece = left + right, best score first."""
  if scores is None:
    raise ValueError(f"{where}: a 'llama' vocabulary needs tokenizer.ggml.merges or .scores")
  vocab = set(tokens)
  ranked = []
  for token, score in zip(tokens, scores):
    for cut in range(1, len(token)):
      left, right = token[:cut], token[cut:]
      if left in vocab and right in vocab:
        ranked.append((-score, token, cut, left, right))
  ranked.sort()
  return [(left, right) for _, _, _, left, right in ranked]


def load_tokenizer(path: str) -> Tokenizer:
  """"byte" | a SentencePiece *.model | tokenizer.json | a *.gguf | a directory holding one."""
  if path == "byte":
    return ByteTokenizer()
  if os.path.isdir(path):
    for name, cls in ((_BYTE_MARKER, None), ("tokenizer.json", HFTokenizer),
                      ("tokenizer.model", SentencePieceTokenizer)):
      if os.path.isfile(os.path.join(path, name)):
        return ByteTokenizer() if cls is None else cls(os.path.join(path, name))
    raise FileNotFoundError(f"{path}: holds no {_BYTE_MARKER}, tokenizer.json or tokenizer.model")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"tokenizer {path!r} does not exist (expected 'byte', a file or a dir)")
  name = os.path.basename(path)
  if name == _BYTE_MARKER:
    return ByteTokenizer()
  if name.endswith(".model"):
    return SentencePieceTokenizer(path)
  if name.endswith(".json"):
    return HFTokenizer(path)
  if name.endswith(".gguf"):
    return GGUFTokenizer(path)
  raise ValueError(f"{path}: unknown tokenizer file type (expected *.model, *.json or *.gguf)")


def render_chat(tokenizer: Tokenizer, messages: Sequence[dict], *,
                add_generation_prompt: bool = True) -> str:
  """Messages [{'role', 'content'}, ...] -> prompt text, via the checkpoint's chat template.

  Without a template (or without jinja2) it writes ChatML:
  "<|im_start|>{role}\\n{content}<|im_end|>\\n" per message, then "<|im_start|>assistant\\n".
  The text is encoded with `tokenizer.encode` (templates write BOS themselves where they want it).
  """
  template = getattr(tokenizer, "chat_template", None)
  try:
    import jinja2.sandbox
  except ImportError:
    template, jinja2 = None, None
  if template is None or jinja2 is None:
    out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return out + ("<|im_start|>assistant\n" if add_generation_prompt else "")

  def raise_exception(message):
    raise ValueError(f"chat template: {message}")

  env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                     extensions=[_generation_tag()])
  env.globals["raise_exception"] = raise_exception
  bos = None if tokenizer.bos_id is None else tokenizer.token_text(tokenizer.bos_id)
  return env.from_string(template).render(
      messages=list(messages), add_generation_prompt=add_generation_prompt,
      bos_token=bos or "", eos_token=tokenizer.token_text(tokenizer.eos_id))


def _generation_tag():
  """The jinja extension for `{% generation %}...{% endgeneration %}`, with which templates mark the
  assistant's text (transformers' return_assistant_tokens_mask reads it): rendered as its body."""
  import jinja2.ext
  import jinja2.nodes

  class GenerationTag(jinja2.ext.Extension):
    tags = {"generation"}

    def parse(self, parser):
      lineno = next(parser.stream).lineno
      body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
      return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
      return caller()

  return GenerationTag
