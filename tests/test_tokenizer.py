"""Tokenizers: bytes, SentencePiece trained on GSM8K, HF tokenizer.json vs transformers, chat."""
import json
import sys

import pytest

from dsmath_jax import tokenizer as tokenizers
from dsmath_jax import tokenizer_train

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
UNSEEN = "∫ 漢字 🙂 naïve \t tab  two spaces\n\nnew paragraph"


def test_byte_tokenizer_contract(tmp_path):
  tok = tokenizers.ByteTokenizer()
  assert (tok.vocab_size, tok.pad_id, tok.bos_id, tok.eos_id) == (259, 0, 1, 2)
  assert tok.encode("Aé") == [ord("A") + 3, 0xC3 + 3, 0xA9 + 3]
  assert tok.decode([1, ord("h") + 3, 0, ord("i") + 3, 2]) == "hi"        # specials dropped
  assert tok.decode([0xC3 + 3]) == "\ufffd"                               # a cut UTF-8 sequence
  assert tok.decode(tok.encode(UNSEEN)) == UNSEEN
  assert isinstance(tokenizers.load_tokenizer("byte"), tokenizers.ByteTokenizer)
  path = tok.save(str(tmp_path))
  assert isinstance(tokenizers.load_tokenizer(path), tokenizers.ByteTokenizer)
  assert isinstance(tokenizers.load_tokenizer(str(tmp_path)), tokenizers.ByteTokenizer)


@pytest.fixture(scope="module")
def gsm8k_sentencepiece(shared_data, tmp_path_factory):
  prefix = tmp_path_factory.mktemp("sp") / "gsm8k"
  return tokenizer_train.train_sentencepiece(
      [str(shared_data / "gsm8k" / "train.jsonl")], str(prefix), 1000,
      text_fields=("question", "answer"))


def test_sentencepiece_on_gsm8k_round_trips_and_falls_back_to_bytes(gsm8k_sentencepiece,
                                                                   shared_data, tmp_path):
  tok = gsm8k_sentencepiece
  assert (tok.vocab_size, tok.pad_id, tok.bos_id, tok.eos_id) == (1000, 0, 1, 2)
  test = [json.loads(line) for line in open(shared_data / "gsm8k" / "test.jsonl")][:300]
  texts = [r["question"] + "\n" + r["answer"] for r in test] + [UNSEEN]
  assert all(tok.decode(tok.encode(t)) == t for t in texts)
  pieces = [tok.token_text(i) for i in tok.encode(UNSEEN)]
  assert "<0xF0>" in pieces and "<0x9F>" in pieces                      # 🙂 = F0 9F 99 82
  ids = tok.encode("He paid $12345 for 3 apples.")
  assert ids[0] not in (tok.bos_id, tok.eos_id) and ids[-1] != tok.eos_id
  # split_digits: no piece of the vocabulary holds two digits (byte pieces "<0x12>" aside).
  pieces = [tok.token_text(i) for i in range(tok.vocab_size)]
  assert not [p for p in pieces if sum(c.isdigit() for c in p) > 1 and not p.startswith("<0x")]
  assert [tok.token_text(i) for i in ids[3:8]] == ["1", "2", "3", "4", "5"]
  characters = sum(len(t) for t in texts[:-1])
  tokens = sum(len(tok.encode(t)) for t in texts[:-1])
  assert characters / tokens > 2.0, characters / tokens    # 2.2 measured; bytes give ~1.0
  # encode(a) + encode(b) decodes to a + b: no dummy prefix space.
  assert tok.decode(tok.encode("Question:") + tok.encode(" 2 + 3")) == "Question: 2 + 3"
  loaded = tokenizers.load_tokenizer(tok.save(str(tmp_path)))
  assert loaded.encode(UNSEEN) == tok.encode(UNSEEN)
  assert tokenizers.load_tokenizer(str(tmp_path)).vocab_size == 1000


def test_sentencepiece_training_errors_name_file_and_line(tmp_path):
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"text": "fine"}\n{"question": 3}\n')
  with pytest.raises(ValueError, match=r"bad\.jsonl:2: none of the fields \['text'\]"):
    tokenizer_train.train_sentencepiece([str(bad)], str(tmp_path / "m"), 300)
  bad.write_text('{"text": "fine"}\n{"text": \n')
  with pytest.raises(ValueError, match=r"bad\.jsonl:2: not JSON"):
    tokenizer_train.train_sentencepiece([str(bad)], str(tmp_path / "m"), 300)


@pytest.fixture(scope="module")
def hf_tokenizer_dir(shared_data, tmp_path_factory):
  """A byte-level BPE trained with `tokenizers` on GSM8K, saved as a HF tokenizer directory."""
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
  backend = Tokenizer(models.BPE())
  backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  backend.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(
      vocab_size=800, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  lines = [json.loads(line)["question"] for line in open(shared_data / "gsm8k" / "train.jsonl")]
  backend.train_from_iterator(lines[:2000], trainer)
  directory = tmp_path_factory.mktemp("hf_tok")
  backend.save(str(directory / "tokenizer.json"))
  (directory / "tokenizer_config.json").write_text(json.dumps(dict(
      eos_token="<|im_end|>", bos_token=None, chat_template=CHATML,
      tokenizer_class="PreTrainedTokenizerFast")))
  return directory


def test_hf_tokenizer_matches_transformers(hf_tokenizer_dir, tmp_path):
  transformers = pytest.importorskip("transformers")
  reference = transformers.AutoTokenizer.from_pretrained(str(hf_tokenizer_dir))
  tok = tokenizers.load_tokenizer(str(hf_tokenizer_dir))
  assert isinstance(tok, tokenizers.HFTokenizer)
  assert (tok.eos_id, tok.bos_id, tok.pad_id) == (2, None, 2)             # pad falls back to eos
  messages = [{"role": "system", "content": "Be brief."},
              {"role": "user", "content": "Natalia sold 48 clips. How many in all?"}]
  prompt = tokenizers.render_chat(tok, messages)
  assert prompt == reference.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=True)
  for text in [prompt, UNSEEN, "  leading spaces and <|im_end|> inside"]:
    ids = tok.encode(text)
    assert ids == reference.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == reference.decode(ids, skip_special_tokens=True)
  saved = tokenizers.load_tokenizer(tok.save(str(tmp_path)))
  assert saved.encode(prompt) == tok.encode(prompt) and saved.chat_template == CHATML
  assert (saved.eos_id, saved.bos_id) == (2, None)


def test_chat_template_jinja_file_is_read_and_kept(hf_tokenizer_dir, tmp_path):
  """transformers 5 saves the template in chat_template.jinja, not tokenizer_config.json."""
  transformers = pytest.importorskip("transformers")
  reference = transformers.AutoTokenizer.from_pretrained(str(hf_tokenizer_dir))
  reference.chat_template = CHATML.replace("<|im_start|>", "<|im_start|>>")
  reference.save_pretrained(str(tmp_path / "v5"))
  assert (tmp_path / "v5" / "chat_template.jinja").is_file()
  assert "chat_template" not in json.loads((tmp_path / "v5" / "tokenizer_config.json").read_text())
  tok = tokenizers.load_tokenizer(str(tmp_path / "v5"))
  assert tok.chat_template == reference.chat_template
  messages = [{"role": "user", "content": "2+2?"}]
  prompt = tokenizers.render_chat(tok, messages)
  assert prompt == reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
  assert prompt.startswith("<|im_start|>>user")
  # Saved by us: transformers reads it back, and so do we.
  tok.save(str(tmp_path / "ours"))
  assert transformers.AutoTokenizer.from_pretrained(str(tmp_path / "ours")).chat_template == tok.chat_template
  assert tokenizers.load_tokenizer(str(tmp_path / "ours")).chat_template == tok.chat_template


def test_hf_tokenizer_without_eos_information_says_so(hf_tokenizer_dir, tmp_path):
  from tokenizers import Tokenizer, models
  Tokenizer(models.BPE(vocab={"a": 0, "b": 1}, merges=[])).save(str(tmp_path / "tokenizer.json"))
  with pytest.raises(ValueError, match="cannot tell the EOS token"):
    tokenizers.load_tokenizer(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({"eos_token_id": 1}))
  assert tokenizers.load_tokenizer(str(tmp_path)).eos_id == 1


def test_chat_without_template_or_jinja_is_chatml(hf_tokenizer_dir, monkeypatch):
  messages = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
  chatml = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
  byte = tokenizers.ByteTokenizer()
  assert tokenizers.render_chat(byte, messages, add_generation_prompt=False) == chatml
  assert tokenizers.render_chat(byte, messages) == chatml + "<|im_start|>assistant\n"
  tok = tokenizers.load_tokenizer(str(hf_tokenizer_dir))
  tok.chat_template = "{{ raise_exception('no system role') }}"
  with pytest.raises(ValueError, match="chat template: no system role"):
    tokenizers.render_chat(tok, messages)
  monkeypatch.setitem(sys.modules, "jinja2", None)                    # jinja2 not installed
  monkeypatch.setitem(sys.modules, "jinja2.sandbox", None)
  assert tokenizers.render_chat(tok, messages, add_generation_prompt=False) == chatml


def test_load_tokenizer_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    tokenizers.load_tokenizer(str(tmp_path / "missing.model"))
  (tmp_path / "vocab.txt").write_text("a\n")
  with pytest.raises(ValueError, match="unknown tokenizer file type"):
    tokenizers.load_tokenizer(str(tmp_path / "vocab.txt"))
  with pytest.raises(FileNotFoundError, match="holds no"):
    tokenizers.load_tokenizer(str(tmp_path))


@pytest.mark.parametrize("dummy_prefix", [False, True])
def test_gguf_sentencepiece_vocabulary_encodes_like_sentencepiece(dummy_prefix, shared_data,
                                                                  tmp_path):
  """A 'llama' GGUF vocabulary (pieces + scores, no merges) rebuilt as a BPE = sentencepiece."""
  reference = tokenizer_train.train_sentencepiece(
      [str(shared_data / "gsm8k" / "train.jsonl")], str(tmp_path / "sp"), 600,
      text_fields=("question",), add_dummy_prefix=dummy_prefix)._sp
  size = reference.get_piece_size()
  kinds = [2 if reference.is_unknown(i) else 3 if reference.is_control(i)
           else 6 if reference.is_byte(i) else 1 for i in range(size)]     # llama.cpp token types
  fields = {"tokenizer.ggml.model": "llama",
            "tokenizer.ggml.tokens": [reference.id_to_piece(i) for i in range(size)],
            "tokenizer.ggml.scores": [reference.get_score(i) for i in range(size)],
            "tokenizer.ggml.token_type": kinds, "tokenizer.ggml.unknown_token_id": 3,
            "tokenizer.ggml.add_space_prefix": dummy_prefix}
  backend = tokenizers.build_gguf_backend(fields)
  test = [json.loads(line) for line in open(shared_data / "gsm8k" / "test.jsonl")][:200]
  for text in [r["question"] + "\n" + r["answer"] for r in test] + [UNSEEN]:
    ids = backend.encode(text, add_special_tokens=False).ids
    assert ids == reference.encode(text), text
    assert backend.decode(ids) == reference.decode(ids) == text
