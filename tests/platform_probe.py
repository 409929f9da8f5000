"""A small method and its config that exercise the platform (not a paper):
an image-level [N, K] target, a classification head, two sub-networks to
freeze one of, any optimizer/schedule from config.

  python -m colorjax.main --config=tests/platform_probe.py --workdir=DIR
  (with tests/ on PYTHONPATH, as config.method = 'platform_probe:Probe')
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from colorjax import config_lib
from colorjax.methods import base

NUM_CLASSES = 7


class ProbeNet(nn.Module):
  width: int = 8

  @nn.compact
  def __call__(self, gray):
    x = gray
    for i in range(2):
      x = nn.relu(nn.Conv(self.width, (3, 3), name=f'backbone_conv{i}')(x))
    ab = jnp.tanh(nn.Conv(2, (1, 1), name='head_ab')(x))
    logits = nn.Dense(NUM_CLASSES, name='head_classes')(x.mean(axis=(1, 2)))
    return {'ab': ab, 'classification': logits}


class Probe(base.Method):
  """ab regression + multi-label classification against [N, K] targets."""

  def __init__(self, config):
    super().__init__(config)
    self.model = ProbeNet(config.model.width)
    self.optimizer = self.make_optimizer('model')

  def batch_spec(self, batch_size):
    return {**super().batch_spec(batch_size),
            'labels': jax.ShapeDtypeStruct((batch_size, NUM_CLASSES),
                                           jnp.float32)}

  def init_state(self, rng, batch):
    params = {'model': self.model.init(rng, batch['gray'])['params']}
    return base.TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        opt_state={'model': self.optimizer.init(params['model'])},
        model_state={})

  def train_step(self, state, batch, rng):
    del rng

    def loss_fn(params):
      out = self.model.apply({'params': params}, batch['gray'])
      terms = {'loss_ab': jnp.mean((out['ab'] - batch['ab']) ** 2),
               'loss_labels': jnp.mean(optax.sigmoid_binary_cross_entropy(
                   out['classification'], batch['labels']))}
      return terms['loss_ab'] + terms['loss_labels'], terms

    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params['model'])
    updates, opt_state = self.optimizer.update(
        grads, state.opt_state['model'], state.params['model'])
    params = optax.apply_updates(state.params['model'], updates)
    return state.replace(step=state.step + 1, params={'model': params},
                         opt_state={'model': opt_state}), dict(terms,
                                                               loss=loss)

  def predict(self, state, batch):
    return self.model.apply({'params': state.params['model']},
                            batch['gray'])


def get_config(arg=None):
  del arg
  config = config_lib.base_config('platform_probe:Probe', 'semantic_shapes',
                                  image_size=32, ab_scale=110.0)
  config_lib.shrink_for_cpu(config, True, steps=(8, 8), eval_every=(4, 4),
                            checkpoint_every=(4, 4))
  config.model = ml_collections.ConfigDict({'width': 8})
  ops = 'multi_hot(7)|to_lab|normalize_lab(ab_scale=110.0)'
  config.data.preprocess_train = f'resize(32)|flip|{ops}'
  config.data.preprocess_eval = f'resize(32)|{ops}'
  # Reduce-on-plateau that never sees an improvement (PyTorch's relative
  # threshold, 10x): the rate halves at every report, which the test reads
  # off the log.
  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-2, kwargs={},
      schedule=dict(type='plateau', metric='train/loss', mode='min',
                    factor=0.5, patience=0, threshold=10.0,
                    convention='pytorch'),
      frozen=()))
  # Declared so `--config.init_from.model.workdir=DIR` can set it.
  config.init_from.model = dict(
      workdir=ml_collections.FieldReference(None, field_type=str))
  config.evals.tags = dict(type='classification', top_k=(1, 3),
                           every_steps=config.get_ref('eval_every_steps'))
  config.evals.photos = dict(
      type='colour', dataset='image_folder',
      path=ml_collections.FieldReference(None, field_type=str),
      every_steps=0, batch_size=4)
  return config
