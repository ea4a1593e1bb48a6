"""Prompt encoding of RL questions: the paper's template and the checkpoint's chat template."""
import pytest

from dsmath_jax import templates
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.rl import questions

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def test_chat_template_prompt_matches_transformers_apply_chat_template(tmp_path):
  """template "chat" = transformers' apply_chat_template of the CoT instruction, token for token."""
  transformers = pytest.importorskip("transformers")
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
  backend = Tokenizer(models.BPE())
  backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  backend.decoder = decoders.ByteLevel()
  specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
  backend.train_from_iterator(
      ["Natalia sold clips to 48 of her friends in April.", "Please reason step by step."] * 20,
      trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  reference = transformers.PreTrainedTokenizerFast(
      tokenizer_object=backend, eos_token="<|im_end|>", additional_special_tokens=specials[:2])
  reference.chat_template = CHATML
  reference.save_pretrained(tmp_path)
  tokenizer = tokenizers.load_tokenizer(str(tmp_path))
  question = "Natalia sold 48 clips. How many?"
  ids = questions.encode_prompt(tokenizer, question, "chat")
  message = templates.CHAT_USER.format(question=question)
  expected = reference.apply_chat_template([{"role": "user", "content": message}],
                                           tokenize=True, add_generation_prompt=True)
  expected = expected["input_ids"] if hasattr(expected, "keys") else expected
  assert ids == list(expected)
  text = tokenizer.decode(ids)
  assert "User:" not in text and "within \\boxed{}." in text
  # The paper's template is unchanged: "User: ... Assistant:".
  assert tokenizer.decode(questions.encode_prompt(tokenizer, question, "cot")).startswith("User: Natalia")
