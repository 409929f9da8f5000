"""What a paper implements once; the trainer does everything else.

A method turns a config into modules, losses and optimizers, and exposes
pure functions the trainer jits and shards:
  batch_spec(batch_size) -> {key: ShapeDtypeStruct}   the training batch
  init_state(rng, batch) -> TrainState
  load_pretrained(state) -> TrainState                 fresh starts: weights
  pretrained_record() -> {part: source}                files, pretrained.json
  prepare_training(workdir)                            host-side setup
  train_step(state, batch, rng) -> (state, {metric: scalar})
  predict(state, batch) -> {'ab': [N,H,W,2] normalised, 'segmentation': logits,
                            ... any other head}
  sample(state, gray, rng, num_samples, ...)          sampling methods only
The trainer knows nothing about generators, discriminators or heads.
"""

import abc
import functools
import os
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import optax

from colorjax import config_lib
from colorjax import optimizers
from colorjax import pretrained
from colorjax import xla_cpu
from colorjax.data import prior as prior_lib
from colorjax.models import layers

Batch = Dict[str, jax.Array]
Metrics = Dict[str, jax.Array]
BatchSpec = Dict[str, jax.ShapeDtypeStruct]


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


def image_spec(batch_size: int, size: int, channels: int,
               dtype=jnp.float32) -> jax.ShapeDtypeStruct:
  """A square [N, size, size, channels] map."""
  return jax.ShapeDtypeStruct((batch_size, size, size, channels), dtype)


def steps_per_epoch(config) -> Optional[int]:
  """Train steps per pass over the train split (None if its size is not
  known), for schedules stated in epochs."""
  images = config.data.get('train_images')
  return max(1, images // config.data.batch_size) if images else None


def compiled_init(init_state):
  """Decorates a method's `init_state` to run as one compiled program.

  Run eagerly, Flax's `init` dispatches every layer's ops one by one, and
  each new op and shape is compiled on its own first: 10-20 s for a tiny
  twin on a CPU, against about a second for the whole init under jit. The
  trainer jits it again with out_shardings (a nested jit is inlined). Both
  compile with `xla_cpu.init_options()` (LLVM level 1 on CPU).
  """
  programs = {}     # made at the first call: the backend is not started
                    # at import (jax.distributed must come first)

  @functools.wraps(init_state)
  def wrapped(self, rng, batch):
    # Options are refused on a jit nested inside another trace.
    top_level = not any(isinstance(x, jax.core.Tracer)
                        for x in jax.tree.leaves((rng, batch)))
    if top_level not in programs:
      programs[top_level] = jax.jit(
          init_state, static_argnums=0,
          compiler_options=xla_cpu.init_options() if top_level else None)
    return programs[top_level](self, rng, batch)
  return wrapped


def jit_train_step(config, train_step: Callable, **jit_kwargs):
  """`jax.jit` of a train step as every trainer compiles it: on CPU with
  the config's convolution kernels (`xla_cpu.train_step_options`) and,
  where those are XLA's own, the models' weight gradients taken on the
  padded input (`layers.padded_weight_grads`, set while the step traces)."""
  padded = xla_cpu.train_step_uses_xla_kernels(config)

  @functools.wraps(train_step)
  def traced(*args, **kwargs):
    with layers.padded_weight_grads(padded):
      return train_step(*args, **kwargs)
  return jax.jit(traced, compiler_options=xla_cpu.train_step_options(config),
                 **jit_kwargs)


class Method(abc.ABC):
  """Base class of the five methods."""

  # What `predict` reads from a batch: evaluators and colorize provide
  # exactly these (plus what each evaluator itself needs).
  predict_keys: Tuple[str, ...] = ('gray',)
  # Keys `predict` uses when a batch has them (e.g. a given semantic map);
  # evaluation keeps them when its preprocessing makes them.
  predict_optional_keys: Tuple[str, ...] = ()
  # Sampling methods (diverse colorization) override `sample` and set this.
  samples: bool = False

  def __init__(self, config):
    self.config = config

  def batch_spec(self, batch_size: int) -> BatchSpec:
    """Every key of a training batch with its shape and dtype (any rank).

    The one declaration of the batch: the pipeline keeps these keys, the
    trainer checks the first batch against it, init and restore use it.
    """
    size = self.config.data.image_size
    return {'gray': image_spec(batch_size, size, 1),
            'l': image_spec(batch_size, size, 1),
            'ab': image_spec(batch_size, size, 2)}

  def input_multiple(self) -> Optional[int]:
    """The image sizes `predict` takes at any aspect: heights and widths
    that are multiples of this (the network's total stride; colorize pads
    a photo resized at its own aspect up to it and crops the result back).
    None: only the square data.image_size (a layer, e.g. a dense one on a
    flattened map, fixes the input size), so a photo is resized to that
    square. The default is None, the safe answer for a new method."""
    return None

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

  def sample(self, state: TrainState, gray: jax.Array, rng: jax.Array,
             num_samples: int = 1, temperature: Optional[float] = None,
             sampler: str = 'cached'):
    """(ab samples [N, S, h, w, 2] in [-1, 1], conditioning outputs)."""
    raise NotImplementedError(
        f'{self.config.method} is deterministic: it does not sample')

  def make_optimizer(self, network: str):
    """The optax optimizer of one network, from `config.optimizer`
    (colorjax.optimizers: name, schedule, clipping, frozen subsets, and
    per-network overrides under `config.optimizer.networks`)."""
    return optimizers.make(self.config.optimizer,
                           self.config.num_train_steps,
                           steps_per_epoch(self.config), network=network)

  def prepare_training(self, workdir: Optional[str] = None) -> None:
    """Host-side work before the train step is traced (e.g. a dataset's ab
    prior for loss weights, cached in `workdir`); train_step must not read
    data itself."""

  def load_pretrained(self, state: TrainState) -> TrainState:
    """Replaces initial parameters by pretrained ones (default: none)."""
    return state

  def pretrained_record(self) -> Dict[str, Any]:
    """{part: where its initial weights came from (file, SHA-256) or random
    init}, for <workdir>/pretrained.json (default: nothing to record)."""
    return {}

  def describe(self, batch: Batch) -> Dict[str, Any]:
    """Parameter counts of each network (from shapes only, no compute)."""
    state = jax.eval_shape(self.init_state, jax.random.PRNGKey(0), batch)
    return {name: sum(x.size for x in jax.tree.leaves(params))
            for name, params in state.params.items()}


def init_from_source(config, entry: str) -> Tuple[Optional[str],
                                                  Optional[str]]:
  """(key, value) of `config.init_from.<entry>`'s source ('pretrained',
  'file' or 'workdir'; the value may be the opt-out 'none'), or (None,
  None) when it names none."""
  source = dict(config.get('init_from', {}).get(entry) or {})
  for key in config_lib.INIT_FROM_SOURCES:
    if source.get(key):
      return key, source[key]
  return None, None


def init_from_path(key: Optional[str], value: Optional[str]) -> Optional[str]:
  """The file or workdir an init_from source reads (a pretrained spec is
  NAME:PATH, parsed as init_from parses it; a file or workdir is a path,
  colons and all), or None for no source and for the opt-out."""
  if value is None or value == config_lib.INIT_FROM_OPT_OUT:
    return None
  if key == 'pretrained':
    return pretrained.parse_spec(value, 'init_from pretrained')[1]
  return value


def weights_record(network: str, expected: bool, source: Optional[str],
                   path: Optional[str]) -> Mapping[str, Any]:
  """One part's entry of <workdir>/pretrained.json: the network its weights
  have the layout of, whether the config expects them, where they came
  from (None: random init), the absolute path and, for a file, its
  SHA-256."""
  sha256 = None
  if path:
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(path):
      sha256 = pretrained.file_sha256(path)
  return {'network': network, 'pretrained': source is not None,
          'expected': bool(expected), 'source': source, 'path': path,
          'sha256': sha256}


class BinnedColourMethod(Method):
  """A method with one BatchNorm network ('model': self.network(train) ->
  module) trained on the 313-bin colour loss (papers 001 and 003): the
  soft-encoded targets at 1/`target_stride` of the image size in the batch,
  and the class-rebalancing weights of the training split's ab prior,
  computed once before training."""

  target_stride: int = 1
  network: Callable[[bool], Any]
  optimizer: Any

  def __init__(self, config):
    super().__init__(config)
    self._rebalance = None

  def batch_spec(self, batch_size):
    size = self.config.data.image_size // self.target_stride
    k = self.config.data.soft_encode_k
    return {**super().batch_spec(batch_size),
            'ab_bins': jax.ShapeDtypeStruct((batch_size, size, size, k),
                                            jnp.int32),
            'ab_weights': jax.ShapeDtypeStruct((batch_size, size, size, k),
                                               jnp.float32)}

  @compiled_init
  def init_state(self, rng, batch):
    variables = self.network(False).init(rng, batch['gray'])
    params = {'model': variables['params']}
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        opt_state={'model': self.optimizer.init(params['model'])},
        model_state={'model': variables['batch_stats']})

  def prepare_training(self, workdir=None):
    self.rebalance_weights(workdir)

  def rebalance_weights(self, workdir: Optional[str] = None):
    """w [313] of the training split's ab prior, or None (data.prior.
    rebalance_for: computed once, cached in `loss.prior_file` or
    <workdir>/ab_prior.npy)."""
    if self._rebalance is None:
      self._rebalance = prior_lib.rebalance_for(self.config, workdir)
    return self._rebalance

  def total_loss(self, terms: Dict[str, jax.Array]) -> jax.Array:
    """The paper's weighted sum of `losses`' terms."""
    raise NotImplementedError

  def train_metrics(self, outputs, batch, terms) -> Dict[str, jax.Array]:
    """What a step logs besides `loss` and `grad_norm` (its loss terms)."""
    raise NotImplementedError

  def train_step(self, state, batch, rng):
    """One optimizer step on `total_loss(losses(...))`, the BatchNorm
    statistics updated from the batch."""
    del rng     # no dropout
    rebalance = self.rebalance_weights()
    rebalance = None if rebalance is None else jnp.asarray(rebalance)
    network = self.network(True)

    def loss_fn(params):
      outputs, updates = network.apply(
          {'params': params, 'batch_stats': state.model_state['model']},
          batch['gray'], mutable=['batch_stats'])
      terms = self.losses(outputs, batch, rebalance)
      return self.total_loss(terms), (terms, updates['batch_stats'], outputs)

    (loss, (terms, stats, outputs)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params['model'])
    updates, opt_state = self.optimizer.update(
        grads, state.opt_state['model'], state.params['model'])
    params = optax.apply_updates(state.params['model'], updates)
    metrics = {'loss': loss, 'grad_norm': optax.global_norm(grads),
               **self.train_metrics(outputs, batch, terms)}
    return state.replace(step=state.step + 1, params={'model': params},
                         opt_state={'model': opt_state},
                         model_state={'model': stats}), metrics

  def outputs(self, state, gray):
    return self.network(False).apply(
        {'params': state.params['model'],
         'batch_stats': state.model_state['model']}, gray)
