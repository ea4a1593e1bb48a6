"""The projection matmul of every Dense layer, with a weight gradient XLA's CPU backend runs well.

Autodiff of y = x @ W gives dW = x^T dy, contracting the token axis of both. When dy comes
out of an elementwise fusion (SwiGLU's backward, the softmax gradient of the logits), the
XLA CPU compiler writes that fusion transposed, [out, tokens], to feed the dot: a strided
copy as large as the activation, per weight, per step. Profiling the llama_125m train step
at batch 8 x 512 put these copies at ~15% of the step (benchmarks/README.md). Computing
dW^T = dy^T x instead, behind an optimization barrier so the compiler cannot fold the
transpose back, yields a column-major dot output and a small [out, in] transpose. Values are
those of autodiff (the same products and sums). Other backends keep plain lax.dot_general:
their layout assignment has no such copies, and the barrier would only block fusions.
"""
import jax
import jax.numpy as jnp


@jax.custom_vjp
def _matmul(x, kernel):
  return jnp.matmul(x, kernel)


def _matmul_fwd(x, kernel):
  return jnp.matmul(x, kernel), (x, kernel)


def _matmul_bwd(residuals, dy):
  x, kernel = residuals                                            # [..., in], [in, out]
  dx = jnp.matmul(dy, kernel.T)
  tokens_x = x.reshape(-1, x.shape[-1])                            # [tokens, in]
  tokens_dy = dy.reshape(-1, dy.shape[-1])                         # [tokens, out]
  kernel_grad_t = jax.lax.optimization_barrier(
      jax.lax.dot_general(tokens_dy, tokens_x, (((0,), (0,)), ((), ()))))   # [out, in]
  return dx, kernel_grad_t.T.astype(kernel.dtype)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
  """lax.dot_general for flax's nn.Dense(dot_general=...): x [..., in] @ kernel [in, out]."""
  standard = dimension_numbers == (((lhs.ndim - 1,), (0,)), ((), ())) and rhs.ndim == 2
  if (jax.default_backend() != "cpu" or not standard or precision is not None
      or preferred_element_type is not None):
    return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                               preferred_element_type=preferred_element_type)
  return _matmul(lhs, rhs)


def project(x, kernel):
  """x [..., in] @ kernel [in, out] through `dot_general` (for projections outside nn.Dense)."""
  return dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))
