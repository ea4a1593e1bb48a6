"""The train configs build in every variant and keep the paper's hyperparameters."""
import pytest

from configs import pretrain, sft, sft_deepseekmath_instruct


@pytest.mark.parametrize("module", [pretrain, sft, sft_deepseekmath_instruct])
@pytest.mark.parametrize("arg", [None, "tiny", "small"])
def test_configs_build(module, arg):
  c = module.get_config(arg)
  assert c.task in ("pretrain", "sft")
  assert c.data.global_batch % c.train.num_microbatches == 0
  assert {"lr", "schedule", "steps", "b1", "b2", "weight_decay"} <= set(c.optim)


def test_paper_hyperparameters():
  base = pretrain.get_config()
  assert (base.optim.lr, base.optim.schedule, base.optim.warmup_steps) == (4.2e-4, "deepseek", 2000)
  assert abs(sum(s.weight for s in base.data.sources.values()) - 1.0) < 1e-9
  assert base.data.sources.math.weight == 0.56 and base.data.sources.github.weight == 0.20
  assert 9.9e6 < base.data.global_batch * base.data.seq_len < 1.01e7       # ~10M tokens/step
  instruct = sft_deepseekmath_instruct.get_config()
  assert (instruct.optim.lr, instruct.optim.schedule, instruct.optim.steps) == (5e-5, "constant", 500)
  assert (instruct.data.global_batch, instruct.data.seq_len) == (256, 4096)
  assert (instruct.optim.b1, instruct.optim.b2, instruct.optim.weight_decay) == (0.9, 0.95, 0.1)
