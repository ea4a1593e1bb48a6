"""dsmath_jax/xla_cpu.py: the CPU settings reach XLA, and a user's own setting wins."""
import os
import subprocess
import sys

import pytest

from dsmath_jax import xla_cpu

_PROBE = """
import dsmath_jax, os, jax, jax.numpy as jnp
norm_then_dot = jax.jit(lambda x, w: (x * jax.lax.rsqrt((x * x).mean(-1, keepdims=True))) @ w)
hlo = norm_then_dot.lower(jnp.ones((64, 576)), jnp.ones((576, 576))).compile().as_text()
print(os.environ.get("XLA_FLAGS", ""), "|", hlo.count('"__ynn_fusion"'))
"""


def _probe(xla_flags: str) -> tuple[str, int]:
  env = {**os.environ, "XLA_FLAGS": xla_flags, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
  flags, count = out.stdout.strip().rsplit("|", 1)
  return flags.strip(), int(count)


@pytest.mark.skipif(not xla_cpu.TUNED, reason="the settings apply to jaxlib 0.10 only")
def test_import_gives_dots_only_to_ynnpack_and_a_users_own_setting_wins():
  flags, fusions = _probe("")
  assert flags == "--xla_cpu_experimental_ynn_fusion_type=individual_dot"
  assert fusions == 1                     # the dot; the RMSNorm reduction stays with XLA
  flags, fusions = _probe("--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce")
  assert flags == "--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce"
  assert fusions == 2                     # the user's choice: the reduction goes to YNNPACK too
