"""What a paper implements once; the trainer does everything else.

A method turns a config into modules, losses and optimizers, and exposes
pure functions the trainer jits and shards:
  init_state(rng, batch) -> TrainState
  train_step(state, batch, rng) -> (state, {metric: scalar})
  predict(state, batch) -> {'ab': [N,H,W,2] normalised, 'segmentation': logits}
The trainer knows nothing about generators, discriminators or heads.
"""

import abc
from typing import Any, Dict, Tuple

import flax
import jax
import jax.numpy as jnp

Batch = Dict[str, jax.Array]
Metrics = Dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  """step + per-network params / optimizer state / mutable model state.

  Every field is a dict keyed by network name ('generator', ...), so methods
  with several optimizers (GANs) use the same state type.
  """
  step: jax.Array
  params: Dict[str, Any]
  opt_state: Dict[str, Any]
  model_state: Dict[str, Any]


def compute_dtype(name: str):
  return {'float32': jnp.float32, 'bfloat16': jnp.bfloat16,
          'float16': jnp.float16}[name]


class Method(abc.ABC):
  """Base class of the five methods."""

  # Batch keys the method reads; the trainer checks the pipeline provides them.
  batch_keys: Tuple[str, ...] = ('gray', 'l', 'ab')

  def __init__(self, config):
    self.config = config

  @abc.abstractmethod
  def init_state(self, rng: jax.Array, batch: Batch) -> TrainState:
    ...

  @abc.abstractmethod
  def train_step(self, state: TrainState, batch: Batch,
                 rng: jax.Array) -> Tuple[TrainState, Metrics]:
    ...

  @abc.abstractmethod
  def predict(self, state: TrainState, batch: Batch) -> Dict[str, jax.Array]:
    ...

  def load_pretrained(self, state: TrainState) -> TrainState:
    """Replaces initial parameters by pretrained ones (default: none)."""
    return state

  # Channels, dtype and resolution divisor of each batch key, for shapes
  # without reading data (methods add keys such as downsampled targets).
  key_specs = {'gray': (1, jnp.float32, 1), 'l': (1, jnp.float32, 1),
               'ab': (2, jnp.float32, 1), 'segmentation': (1, jnp.uint8, 1)}

  def example_batch(self, batch_size: int, image_size: int,
                    sharding=None) -> Dict[str, jax.ShapeDtypeStruct]:
    """Abstract batch of `batch_keys` (what init and restore need)."""
    batch = {}
    for key in self.batch_keys:
      channels, dtype, divisor = self.key_specs[key]
      size = image_size // divisor
      batch[key] = jax.ShapeDtypeStruct((batch_size, size, size, channels),
                                        dtype, sharding=sharding)
    return batch

  def describe(self, batch: Batch) -> Dict[str, Any]:
    """Parameter counts of each network (from shapes only, no compute)."""
    state = jax.eval_shape(self.init_state, jax.random.PRNGKey(0), batch)
    return {name: sum(x.size for x in jax.tree.leaves(params))
            for name, params in state.params.items()}
