"""The train state pytree (step, params, optimizer state, rng) and its sharded creation.

Shardings are derived without allocating anything: the boxed (logically annotated)
state is traced with `jax.eval_shape`, its logical specs map to mesh axes through the
config's rules, and the real state is then built by a jit with those out_shardings, so
each device only ever holds its own shard (paper-scale 7B states never gather on a host).
"""
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dsmath_jax import runtime, sharding
from dsmath_jax.model import llama
from dsmath_jax.train import optim


@flax.struct.dataclass
class TrainState:
  step: jax.Array                 # [] int32: optimizer updates applied so far
  params: object                  # plain (unboxed) parameter pytree
  opt_state: optax.OptState
  rng: jax.Array                  # key data; fold_in(rng, step) gives per-step randomness
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

  def apply_gradients(self, grads) -> "TrainState":
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                        opt_state=opt_state)


def _new_state(params, rng, tx) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    rng=rng, tx=tx)


def _boxed_state_fn(optim_config: optim.OptimConfig, model_config: llama.LlamaConfig):
  tx = optim.make_optimizer(optim_config)

  def boxed_state(params_rng, state_rng):
    return _new_state(llama.init_params(model_config, jax.random.wrap_key_data(params_rng)),
                      state_rng, tx)
  return boxed_state, tx


def abstract_train_state(optim_config: optim.OptimConfig, model_config: llama.LlamaConfig, mesh, rules):
  """(state of ShapeDtypeStructs carrying their shardings, state_shardings), allocating
  nothing: what an AOT compile of the train step needs (benchmarks/scale_7b.py)."""
  boxed_state, _ = _boxed_state_fn(optim_config, model_config)
  key = jax.ShapeDtypeStruct((2,), jnp.uint32)
  abstract = jax.eval_shape(boxed_state, key, key)
  shardings = sharding.tree_shardings(abstract, mesh, rules)
  state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                       nn.unbox(abstract), shardings)
  return state, shardings


def create_train_state(optim_config: optim.OptimConfig, model_config: llama.LlamaConfig, mesh, rules,
                       params=None, *, seed: int):
  """(state, state_shardings): random init from `seed`, or around given `params`.

  `params` (e.g. from load_or_init) must be the plain pytree of `model_config`; they
  are donated and resharded to the rules' layout.
  """
  boxed_state, tx = _boxed_state_fn(optim_config, model_config)
  rng = jax.random.key_data(jax.random.key(seed))
  params_rng, state_rng = jax.random.split(rng)
  abstract = jax.eval_shape(boxed_state, params_rng, state_rng)
  shardings = sharding.tree_shardings(abstract, mesh, rules)
  if params is None:
    init = runtime.jit_under_mesh(lambda p, s: nn.unbox(boxed_state(p, s)), mesh, rules,
                                  out_shardings=shardings)
    return init(params_rng, state_rng), shardings
  init = runtime.jit_under_mesh(lambda p, s: _new_state(p, s, tx), mesh, rules,
                                in_shardings=(shardings.params, None), out_shardings=shardings,
                                donate_argnums=0)
  return init(params, state_rng), shardings

