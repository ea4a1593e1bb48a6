"""save_pretrained/load_pretrained (orbax), the 7B preset on an 8-device mesh, the axis rules."""
import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from configs import common
from dsmath_jax import sharding
from dsmath_jax import tokenizer as tokenizers
from dsmath_jax.model import llama, loading

RULES = common.LOGICAL_AXIS_RULES


def tiny_config(**overrides):
  return llama.LlamaConfig.from_config(common.model("tiny", **overrides))


def random_params(config, seed=0):
  """Numpy-random arrays of the param tree's shapes (no init compile: tests stay fast)."""
  rng = np.random.default_rng(seed)
  shapes, _ = loading.abstract_params(config)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), s.dtype), shapes)


def test_save_then_load_on_a_mesh_restores_every_array(tmp_path):
  config = tiny_config()
  params = random_params(config)
  params["value_head"] = {"kernel": jnp.arange(64.0).reshape(64, 1)}   # a reward-model head
  loading.save_pretrained(str(tmp_path / "model"), config, params, tokenizers.ByteTokenizer())
  meta = json.loads((tmp_path / "model" / "model.json").read_text())
  assert meta["config"]["num_layers"] == 2 and meta["tokenizer"] == "tokenizer/byte_tokenizer.json"

  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2))
  restored = loading.load_pretrained(str(tmp_path / "model"), mesh=mesh, rules=RULES)
  assert restored.config == config
  assert isinstance(restored.tokenizer, tokenizers.ByteTokenizer)
  flat_in = jax.tree_util.tree_leaves_with_path(params)
  flat_out = dict(jax.tree_util.tree_leaves_with_path(restored.params))
  assert len(flat_in) == len(flat_out)
  for path, array in flat_in:
    np.testing.assert_array_equal(np.asarray(flat_out[path]), np.asarray(array), err_msg=str(path))
  q = restored.params["layers"]["self_attn"]["q_proj"]["kernel"]     # [layers, embed, q_heads]
  assert q.sharding.spec == P(None, "fsdp", "tensor")
  assert restored.params["value_head"]["kernel"].sharding.spec == P()

  as_bf16 = loading.load_pretrained(str(tmp_path / "model"), param_dtype="bfloat16")
  assert as_bf16.config.param_dtype == "bfloat16"
  assert as_bf16.params["norm"]["scale"].dtype == jnp.bfloat16


def test_hf_export_of_a_saved_model_round_trips(tmp_path):
  """ours (orbax) -> HF directory -> load_pretrained: same arrays, same tokenizer ids."""
  from dsmath_jax.model import hf
  config = tiny_config(vocab_size=259)
  params = random_params(config, seed=1)
  hf.save_hf(str(tmp_path / "hf"), config, params)
  config_back, params_back, _ = loading.load_pretrained(str(tmp_path / "hf"))
  assert config_back == config
  for (path, a), (_, b) in zip(jax.tree_util.tree_leaves_with_path(params),
                               jax.tree_util.tree_leaves_with_path(params_back)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))


def test_deepseek_math_7b_initializes_abstractly_on_8_devices_with_fsdp():
  config = llama.LlamaConfig.from_config(common.model("deepseek_math_7b"))
  mesh = sharding.make_mesh(common.mesh(fsdp=8))
  boxed = jax.eval_shape(functools.partial(llama.init_params, config), jax.random.key(0))
  shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(boxed), mesh, RULES)
  init = jax.jit(lambda rng: nn.unbox(llama.init_params(config, rng)), out_shardings=shardings)
  abstract = jax.eval_shape(init, jax.random.key(0))
  leaves = jax.tree.leaves(abstract)
  count = sum(int(np.prod(a.shape)) for a in leaves)
  per_device = sum(int(np.prod(a.sharding.shard_shape(a.shape))) * a.dtype.itemsize for a in leaves)

  # By hand (paper §2.3: DeepSeek LLM 7B, 30 layers, d=4096, d_ff=11008, 102400 vocab, untied).
  vocab, d, d_ff, layers = 102400, 4096, 11008, 30
  per_layer = 4 * d * d + 3 * d * d_ff + 2 * d                 # attention, SwiGLU, two RMSNorms
  expected = 2 * vocab * d + layers * per_layer + d              # embed + head + layers + norm
  norms = (2 * layers + 1) * d                                   # replicated: "norm" -> None
  expected_per_device = ((expected - norms) // 8 + norms) * 4    # float32; the rest split 8 ways
  print(f"deepseek_math_7b: {count:,} parameters ({count / 1e9:.2f}B); "
        f"{per_device:,} bytes per device on fsdp=8 ({per_device / 2**30:.2f} GiB, float32)")
  assert count == expected == config.num_params == 6_910_365_696
  assert per_device == expected_per_device == 3_456_057_344
  embed = abstract["embed_tokens"]["embedding"]
  assert embed.sharding.spec == P("tensor", "fsdp") and embed.sharding.shard_shape(embed.shape) == (
      vocab, d // 8)


def test_every_logical_axis_name_has_a_rule(monkeypatch):
  """Params, activations (train and cached decode, with remat) and the KV cache; the family
  switches (Qwen2 biases, Qwen3 q/k norms) on in one of the two layouts."""
  used = set()
  original = nn.with_logical_constraint

  def recording(x, logical_axes, *args, **kwargs):
    used.update(name for name in logical_axes if name)
    return original(x, logical_axes, *args, **kwargs)

  monkeypatch.setattr(nn, "with_logical_constraint", recording)
  for scan in (True, False):
    config = tiny_config(scan_layers=scan, remat="full", qkv_bias=scan, qk_norm=not scan)
    model = llama.Transformer(config)
    boxed = jax.eval_shape(functools.partial(llama.init_params, config), jax.random.key(0))
    for spec in jax.tree.leaves(nn.get_partition_spec(boxed), is_leaf=lambda s: isinstance(s, P)):
      used.update(name for name in spec if name)
    params = nn.unbox(boxed)
    tokens = jnp.zeros((2, 4), jnp.int32)
    jax.eval_shape(lambda p: model.apply({"params": p}, tokens), params)
    jax.eval_shape(lambda p: model.apply({"params": p}, tokens, return_hidden=True), params)
    cache = llama.KVCache.init(config, 2, 8)
    jax.eval_shape(lambda p, c: model.apply({"params": p}, tokens, cache=c), params, cache)
  for axes in jax.tree.leaves(llama.CACHE_LOGICAL_AXES, is_leaf=lambda a: isinstance(a, tuple)):
    used.update(axes)
  assert {"embed", "q_heads", "act_heads", "batch", "cache_seq"} <= used   # the recorder saw them
  assert {"kv_heads", "norm", "head_dim"} <= used
  missing = used - {name for name, _ in RULES}
  assert not missing, f"logical axes without a rule in LOGICAL_AXIS_RULES: {sorted(missing)}"


def test_unknown_checkpoint_path_says_what_was_expected(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json"):
    loading.load_pretrained(str(tmp_path))
  with pytest.raises(ValueError, match="needs `rules`"):
    config = tiny_config()
    params = random_params(config)
    loading.save_pretrained(str(tmp_path / "m"), config, params)
    loading.load_pretrained(str(tmp_path / "m"), mesh=sharding.make_mesh(common.mesh()))
