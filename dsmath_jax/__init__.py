"""dsmath_jax: DeepSeekMath (Shao et al., 2024, arXiv 2402.03300) end to end in JAX."""
