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
  with pytest.raises(ValueError, match="'orbax' or 'hf'"):
    convert.run(config, str(tmp_path))
