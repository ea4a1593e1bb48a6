"""Task `convert`: random tiny -> orbax -> HF directory that transformers loads with equal logits."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from configs import convert as convert_config
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.model import convert, llama, loading


def test_tiny_orbax_then_hf_export_matches_transformers(tmp_path):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  summary = convert.run(convert_config.get_config("tiny"), str(tmp_path / "a"))
  assert summary["num_params"] == llama.LlamaConfig.from_config(
      convert_config.get_config("tiny").model).num_params
  saved = loading.load_pretrained(str(tmp_path / "a" / "model"))
  assert isinstance(saved.tokenizer, tokenizers.ByteTokenizer) and saved.config.vocab_size == 320

  config = convert_config.get_config()
  config.source, config.format = str(tmp_path / "a" / "model"), "hf"
  config.output = str(tmp_path / "hf")
  convert.run(config, str(tmp_path / "b"))
  assert json.loads((tmp_path / "b" / "convert.json").read_text())["format"] == "hf"
  resolved = json.loads((tmp_path / "b" / "config.json").read_text())     # the run's resolved config
  assert (resolved["source"], resolved["output"]) == (str(tmp_path / "a" / "model"), str(tmp_path / "hf"))
  hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
  assert (hf_config["eos_token_id"], hf_config["bos_token_id"]) == (2, 1)
  reference = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
  tokens = np.array([[1, 72, 108, 108, 111, 2]])
  with torch.no_grad():
    expected = reference(torch.tensor(tokens)).logits.numpy()
  logits = llama.Transformer(saved.config).apply({"params": saved.params}, jnp.asarray(tokens))
  np.testing.assert_allclose(np.asarray(logits), expected, atol=1e-4, rtol=0)
  assert isinstance(tokenizers.load_tokenizer(str(tmp_path / "hf")), tokenizers.ByteTokenizer)


def test_convert_needs_a_source_and_a_known_format(tmp_path):
  config = convert_config.get_config()
  with pytest.raises(ValueError, match="set --config.source"):
    convert.run(config, str(tmp_path))
  config.source, config.format = "x.gguf", "safetensors"
  with pytest.raises(ValueError, match="'orbax', 'hf' or 'gguf'"):
    convert.run(config, str(tmp_path))


def test_qwen2_with_a_jinja_chat_template_survives_hf_to_orbax_to_hf(tmp_path):
  """A transformers 5 checkpoint keeps its template in chat_template.jinja; convert keeps it."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from tokenizers import Tokenizer, models, pre_tokenizers
  words = ["<unk>", "<|im_start|>", "<|im_end|>", "user", "assistant", "2+2?", "4"]
  backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
  backend.pre_tokenizer = pre_tokenizers.Whitespace()
  reference_tokenizer = transformers.PreTrainedTokenizerFast(
      tokenizer_object=backend, eos_token="<|im_end|>", unk_token="<unk>")
  reference_tokenizer.chat_template = (
      "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant{% endif %}")
  torch.manual_seed(0)
  model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
      vocab_size=32, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
      num_key_value_heads=1, intermediate_size=48, tie_word_embeddings=True)).eval()
  model.save_pretrained(tmp_path / "hf_in")
  reference_tokenizer.save_pretrained(tmp_path / "hf_in")
  assert (tmp_path / "hf_in" / "chat_template.jinja").is_file()

  config = convert_config.get_config()
  config.source, config.output = str(tmp_path / "hf_in"), str(tmp_path / "orbax")
  convert.run(config, str(tmp_path / "a"))
  saved = loading.load_pretrained(str(tmp_path / "orbax"))
  assert saved.tokenizer.chat_template == reference_tokenizer.chat_template
  assert saved.config.qkv_bias and saved.config.tie_embeddings
  config.source, config.output, config.format = str(tmp_path / "orbax"), str(tmp_path / "hf_out"), "hf"
  convert.run(config, str(tmp_path / "b"))
  exported = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf_out"))
  assert exported.chat_template == reference_tokenizer.chat_template
  messages = [{"role": "user", "content": "2+2?"}]
  assert (exported.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
          == reference_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf_out")).eval()
  assert isinstance(reloaded, transformers.Qwen2ForCausalLM)
  tokens = torch.tensor([[1, 3, 5, 2, 1, 4]])
  with torch.no_grad():
    assert torch.equal(reloaded(tokens).logits, model(tokens).logits)
