"""SemanticDriven (paper 002): segment the gray image, then colorize it
under the semantic map, which a user may edit.

Two networks, 'gridnet' (section 2.2) and 'colorizer' (section 2.3), and
`config.stage` says which of them a run trains:
  'segmentation'  stage 1: GridNet, per-pixel cross-entropy (L_seg);
  'colorization'  stage 2: the two-stream U-Net, Huber loss (eq. 1) on ab
                  normalised to [-1, 1]; GridNet comes from stage 1's
                  workdir (`init_from.gridnet.workdir`) and stays fixed;
  'joint'         both in one run. With ground-truth training maps the two
                  losses share no parameter, so this is stage 1 and stage 2
                  side by side (the CPU demo uses it).
The colorizer trains on `config.train_maps`: 'ground_truth' (the paper),
'predicted' (GridNet's argmax, GridNet in inference mode) or 'mix' (each
image's map is the predicted one with probability `train_maps_mix`).

`predict(state, batch)` runs GridNet, then the colorizer on its argmax --
or on `batch['semantic_map']` when the batch has one (a user's edited map,
the ground truth in evaluation): {'ab', 'segmentation': GridNet's logits}.
"""

from typing import Dict

import jax
import jax.numpy as jnp
import optax

from colorjax import choices
from colorjax.losses import segmentation as seg_losses
from colorjax.methods import base
from colorjax.models import semanticdriven as models

STAGES = {'segmentation': ('gridnet',), 'colorization': ('colorizer',),
          'joint': ('gridnet', 'colorizer')}
TRAIN_MAPS = ('ground_truth', 'predicted', 'mix')


def huber(ab_pred, ab_true, delta: float = 1.0) -> jax.Array:
  """Eq. 1, averaged over pixels and both channels, in float32."""
  return jnp.mean(optax.huber_loss(ab_pred.astype(jnp.float32),
                                   ab_true.astype(jnp.float32), delta=delta))


class SemanticDriven(base.Method):
  """Ho et al., 'Semantic-Driven Colorization' (paper 002)."""

  def input_multiple(self):
    # GridNet's rows at H / 2^i; the colorizer's stride-2 levels (all but
    # the first and the last).
    model = self.config.model
    return max(2 ** (len(model.grid_depths) - 1),
               2 ** max(len(model.encoder_widths) - 2, 0))

  predict_optional_keys = ('semantic_map',)

  def __init__(self, config):
    super().__init__(config)
    choices.check('stage', config.stage, sorted(STAGES))
    choices.check('train_maps', config.train_maps, TRAIN_MAPS)
    self.trained = STAGES[config.stage]
    self.num_classes = config.data.num_classes
    self.ignore_label = config.data.get('ignore_label')
    model, dtype = config.model, base.compute_dtype(config.model.dtype)
    self.gridnet = lambda train: models.GridNet(
        tuple(model.grid_depths), model.grid_columns, self.num_classes,
        train=train, dtype=dtype)
    self.colorizer = models.TwoStreamUNet(
        tuple(model.encoder_widths), self.num_classes,
        map_input=model.map_input, instance_norm=model.instance_norm,
        dtype=dtype)
    self.optimizers = {name: self.make_optimizer(name)
                       for name in self.trained}

  def batch_spec(self, batch_size):
    size = self.config.data.image_size
    spec = {'gray': base.image_spec(batch_size, size, 1)}
    if 'colorizer' in self.trained:
      spec['ab'] = base.image_spec(batch_size, size, 2)
    if 'gridnet' in self.trained or self.config.train_maps != 'predicted':
      spec['segmentation'] = base.image_spec(batch_size, size, 1, jnp.uint8)
    return spec

  @base.compiled_init
  def init_state(self, rng, batch):
    gray = batch['gray']
    labels = jnp.zeros(gray.shape, jnp.int32)
    grid_rng, colour_rng = jax.random.split(rng)
    grid = self.gridnet(False).init(grid_rng, gray)
    params = {'gridnet': grid['params'],
              'colorizer': self.colorizer.init(colour_rng, gray,
                                               labels)['params']}
    return base.TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        opt_state={name: self.optimizers[name].init(params[name])
                   for name in self.trained},
        model_state={'gridnet': grid['batch_stats'], 'colorizer': {}})

  def map_labels(self, labels) -> jax.Array:
    """int32 class maps for the colorizer: the ignore label (and anything
    out of range) becomes class 0 (PASCAL-Context's background)."""
    labels = labels.astype(jnp.int32)
    bad = (labels < 0) | (labels >= self.num_classes)
    if self.ignore_label is not None:
      bad |= labels == self.ignore_label
    return jnp.where(bad, 0, labels)

  def segment(self, state, gray) -> jax.Array:
    """GridNet's logits in inference mode (running statistics)."""
    return self.gridnet(False).apply(
        {'params': state.params['gridnet'],
         'batch_stats': state.model_state['gridnet']}, gray)

  def _training_maps(self, state, batch, rng):
    if self.config.train_maps == 'ground_truth':
      return self.map_labels(batch['segmentation'])
    predicted = jnp.argmax(jax.lax.stop_gradient(
        self.segment(state, batch['gray'])), -1)[..., None]
    if self.config.train_maps == 'predicted':
      return predicted
    use = jax.random.bernoulli(rng, self.config.train_maps_mix,
                               (predicted.shape[0], 1, 1, 1))
    return jnp.where(use, predicted, self.map_labels(batch['segmentation']))

  def train_step(self, state, batch, rng):
    gray = batch['gray']
    maps = (self._training_maps(state, batch, rng)
            if 'colorizer' in self.trained else None)

    def loss_fn(trained):
      params = {**state.params, **trained}
      terms, stats, logits = {}, state.model_state['gridnet'], None
      if 'gridnet' in self.trained:
        logits, updates = self.gridnet(True).apply(
            {'params': params['gridnet'], 'batch_stats': stats}, gray,
            mutable=['batch_stats'])
        stats = updates['batch_stats']
        terms['seg'] = seg_losses.cross_entropy(
            logits, batch['segmentation'], self.ignore_label)
      if 'colorizer' in self.trained:
        ab = self.colorizer.apply({'params': params['colorizer']}, gray,
                                  maps)
        terms['color'] = huber(ab, batch['ab'], self.config.loss.delta)
      return sum(terms.values()), (terms, stats, logits)

    trained = {name: state.params[name] for name in self.trained}
    (loss, (terms, stats, logits)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(trained)
    params, opt_state = dict(state.params), dict(state.opt_state)
    for name in self.trained:
      updates, opt_state[name] = self.optimizers[name].update(
          grads[name], state.opt_state[name], state.params[name])
      params[name] = optax.apply_updates(state.params[name], updates)
    metrics = {'loss': loss, **{f'loss_{k}': v for k, v in terms.items()},
               'grad_norm': optax.global_norm(grads)}
    if logits is not None:
      metrics['pixel_accuracy'] = seg_losses.pixel_accuracy(
          logits, batch['segmentation'], self.ignore_label)
    return state.replace(step=state.step + 1, params=params,
                         opt_state=opt_state,
                         model_state={**state.model_state,
                                      'gridnet': stats}), metrics

  def colorize(self, state, gray, labels) -> jax.Array:
    """The colorizer alone: ab / ab_scale under a given label map."""
    return self.colorizer.apply({'params': state.params['colorizer']}, gray,
                                self.map_labels(labels))

  def predict(self, state, batch) -> Dict[str, jax.Array]:
    # GridNet runs even when the batch brings its map: its segmentation is
    # part of the output (the segmentation evaluator scores it either way).
    logits = self.segment(state, batch['gray'])
    labels = batch.get('semantic_map')
    if labels is None:
      labels = jnp.argmax(logits, -1)[..., None]
    return {'ab': self.colorize(state, batch['gray'], labels),
            'segmentation': logits}
