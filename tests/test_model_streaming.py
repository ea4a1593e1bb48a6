"""Loading streams: the host never holds the model twice (issue: the 7B on one host).

A ~250 MB sharded HF checkpoint is loaded onto 8 simulated devices in a fresh process; the
growth of the process's peak RSS must stay well under twice the checkpoint's size. On CPU the
"devices" are host memory too, so the floor is 1x (the placed params) plus one parameter.
"""
import json
import pathlib
import subprocess
import sys

import jax
import numpy as np

from dsmath_jax.model import hf, llama, loading

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHILD = r"""
import json, os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ["JAX_PLATFORMS"] = "cpu"
import jax, jax.numpy as jnp
from configs import common
from dsmath_jax import sharding
from dsmath_jax.model import loading
mesh = sharding.make_mesh(common.mesh(fsdp=8))
jax.device_put(jnp.ones((8, 8)), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("fsdp")))
loading.abstract_params(loading.read_config(sys.argv[1]))           # warm the tracing caches
rss_before = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
pretrained = loading.load_pretrained(sys.argv[1], mesh=mesh, rules=common.LOGICAL_AXIS_RULES)
jax.block_until_ready(pretrained.params)
# VmHWM, not ru_maxrss: the latter survives exec, so it would report pytest's own peak.
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps(dict(rss_before=rss_before, peak=peak)))
"""


def test_sharded_load_needs_far_less_than_twice_the_model(tmp_path):
  config = llama.LlamaConfig(vocab_size=16384, hidden_size=512, num_layers=12, num_heads=8,
                             num_kv_heads=8, head_dim=64, mlp_dim=1536)
  rng = np.random.default_rng(0)
  shapes, _ = loading.abstract_params(config)
  params = jax.tree.map(lambda s: rng.standard_normal(s.shape, np.float32), shapes)
  model_bytes = sum(a.nbytes for a in jax.tree.leaves(params))
  hf.save_hf(str(tmp_path), config, params, max_shard_bytes=32 << 20)
  del params
  result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  memory = json.loads(result.stdout.strip().splitlines()[-1])
  growth = memory["peak"] - memory["rss_before"]
  print(f"model {model_bytes / 2**20:.0f} MiB; peak RSS growth while loading "
        f"{growth / 2**20:.0f} MiB ({growth / model_bytes:.2f}x)")
  assert growth < 1.4 * model_bytes, (growth, model_bytes)
