"""SFT of a randomly initialized small model on the imperfect teacher's worked solutions (§3.1
in miniature): the policy every GRPO run of this experiment starts from."""
import os

import jax
import numpy as np

from dsmath_jax import sharding
from dsmath_jax.rl import questions as questions_lib


def train_sft(run, settings, records, mesh, rules, out_dir: str) -> str:
  """`settings.steps` steps of batch `settings.batch` (experiment_config.SFTConfig) on `records`,
  rows as long as the GRPO run's prompt + response budget; returns the saved model directory
  (OUT_DIR/model)."""
  from dsmath_jax import tokenizer as tokenizer_lib
  from dsmath_jax.model import loading
  from dsmath_jax.train import loss as loss_lib, state as state_lib, step as step_lib
  from dsmath_jax.train.metrics import MetricsWriter
  from dsmath_jax.train.optim import OptimConfig
  tokenizer = tokenizer_lib.load_tokenizer(run.tokenizer)
  model_config = run.model
  optim = OptimConfig(lr=settings.lr, schedule="cosine", steps=settings.steps, warmup_steps=10, weight_decay=0.0,
                      clip_norm=1.0, end_lr_ratio=0.1)
  state, shardings = state_lib.create_train_state(optim, model_config, mesh, rules, seed=settings.seed)
  seq_len = run.rl.max_prompt_len + run.rl.max_new_tokens
  batch_size = settings.batch
  spec = {k: (batch_size, seq_len) for k in ("tokens", "segment_ids", "positions", "loss_mask")}
  step = step_lib.compile_train_step(shardings, mesh, rules, spec, loss_fn=loss_lib.cross_entropy_loss,
                                     apply_fn=step_lib.make_apply_fn(model_config))
  writer = MetricsWriter(out_dir)
  rng = np.random.default_rng(settings.seed)
  for index in range(settings.steps):
    batch = {k: np.zeros((batch_size, seq_len), np.float32 if k == "loss_mask" else np.int32) for k in spec}
    for row, i in enumerate(rng.choice(len(records), batch_size, replace=False)):
      prompt = questions_lib.encode_prompt(tokenizer, records[i]["question"], run.data.template)
      response = tokenizer.encode(records[i]["solution"]) + [tokenizer.eos_id]
      ids = (prompt + response)[:seq_len]                     # [<= seq_len]
      batch["tokens"][row, :len(ids)] = ids
      batch["segment_ids"][row, :len(ids)] = 1
      batch["positions"][row, :len(ids)] = np.arange(len(ids))
      batch["loss_mask"][row, len(prompt):len(ids)] = 1.0
    state, metrics = step(state, sharding.put_global(batch, sharding.batch_sharding(mesh, rules, 2)))
    if index % 20 == 0 or index == settings.steps - 1:
      writer.write(index + 1, jax.device_get(metrics))
  writer.close()
  return loading.save_pretrained(os.path.join(out_dir, "model"), model_config, state.params, tokenizer)
