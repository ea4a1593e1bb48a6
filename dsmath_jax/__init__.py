"""dsmath_jax: DeepSeekMath (Shao et al., 2024, arXiv 2402.03300) end to end in JAX."""
from dsmath_jax import xla_cpu as _xla_cpu

_xla_cpu.use_ynnpack_for_dots_only()      # before anything starts jax's backend (xla_cpu.py says why)
