"""PixSem (paper 004): eq. 6, L = l1 L_emb + l2 L_seg + l3 L_gen (1:100:1).

L_emb and L_gen are DMoL negative log-likelihoods of the 1/4-resolution
ab target (per pixel, reported as bits per dimension: 8 is the uniform
baseline), L_seg the cross-entropy of the segmentation branch. Adam with
b1 = 0.95, b2 = 0.9995, lr 1e-3; Polyak (EMA) averages of the parameters
are kept in the state and used by `predict` and sampling.
"""

from typing import Dict

import jax
import jax.numpy as jnp
import optax

from colorjax.losses import dmol
from colorjax.losses import segmentation as seg_losses
from colorjax.methods import base
from colorjax.models import pixsem as models


class PixSemMethod(base.Method):
  """Zhao et al., 'Pixelated Semantic Colorization', IJCV 2020."""

  def input_multiple(self):
    # Chroma at 1/downsample of the input (the conditioning network's two
    # stride-2 stages), then the generator's scales, each a stride 2.
    model, data = self.config.model, self.config.data
    return max(data.downsample, 4) * 2 ** (
        model.get('generator_scales', 3) - 1)

  samples = True

  def __init__(self, config):
    super().__init__(config)
    model = config.model
    self.model = models.PixSem(
        num_classes=config.data.num_classes, variant=model.variant,
        widths=tuple(model.widths), blocks=tuple(model.blocks),
        embedding_channels=model.embedding_channels,
        # Workdirs from before the multi-scale generator have no field.
        generator=model.get('generator', 'small'),
        generator_channels=model.generator_channels,
        generator_blocks=model.generator_blocks,
        generator_scales=model.get('generator_scales', 3),
        generator_dropout=model.get('generator_dropout', 0.0),
        num_mixtures=model.num_mixtures,
        dtype=base.compute_dtype(model.dtype))
    self.optimizer = self.make_optimizer('model')
    self.ignore_label = config.data.get('ignore_label')

  def batch_spec(self, batch_size):
    """Adds the generator's targets at 1/downsample of the input size."""
    small = self.config.data.image_size // self.config.data.downsample
    return {**super().batch_spec(batch_size),
            'segmentation': base.image_spec(
                batch_size, self.config.data.image_size, 1, jnp.uint8),
            'ab_small': base.image_spec(batch_size, small, 2),
            'segmentation_small': base.image_spec(batch_size, small, 1,
                                                  jnp.uint8)}

  @base.compiled_init
  def init_state(self, rng, batch):
    variables = self.model.init(rng, batch['gray'], batch['ab_small'])
    params = {'model': variables['params']}
    return base.TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        opt_state={'model': self.optimizer.init(params['model'])},
        model_state={'ema': params['model']})

  def losses(self, outputs, batch) -> Dict[str, jax.Array]:
    target = batch['ab_small']
    terms = {
        'nll_embedding': -jnp.mean(dmol.dmol_log_prob(
            outputs['embedding_dmol'], target, self.model.num_mixtures)),
        'nll_generator': -jnp.mean(dmol.dmol_log_prob(
            outputs['generator_dmol'], target, self.model.num_mixtures)),
    }
    if 'segmentation' in outputs:
      terms['segmentation'] = seg_losses.cross_entropy(
          outputs['segmentation'], batch['segmentation_small'],
          self.ignore_label)
    return terms

  def train_step(self, state, batch, rng):
    weights = self.config.loss

    def loss_fn(params):
      # The generator's dropout (PixelCNN++'s; 0 in the twins) is on here.
      outputs = self.model.apply({'params': params}, batch['gray'],
                                 batch['ab_small'], train=True,
                                 rngs={'dropout': rng})
      terms = self.losses(outputs, batch)
      total = (weights.embedding * terms['nll_embedding']
               + weights.generator * terms['nll_generator']
               + weights.segmentation * terms.get('segmentation', 0.0))
      return total, terms

    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params['model'])
    updates, opt_state = self.optimizer.update(
        grads, state.opt_state['model'], state.params['model'])
    params = optax.apply_updates(state.params['model'], updates)
    decay = self.config.model.ema_decay
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                       state.model_state['ema'], params)
    metrics = {'loss': loss,
               'bits_per_dim_embedding': dmol.bits_per_dim(
                   -terms['nll_embedding'], 2),
               'bits_per_dim_generator': dmol.bits_per_dim(
                   -terms['nll_generator'], 2),
               'grad_norm': optax.global_norm(grads)}
    if 'segmentation' in terms:
      metrics['loss_segmentation'] = terms['segmentation']
    return state.replace(step=state.step + 1, params={'model': params},
                         opt_state={'model': opt_state},
                         model_state={'ema': ema}), metrics

  def sample(self, state, gray, rng, num_samples=1, temperature=None,
             sampler='cached'):
    """ab samples [N, S, h, w, 2] in [-1, 1] from the Polyak-averaged model."""
    temperature = (self.config.sampling.temperature if temperature is None
                   else temperature)
    return self.model.apply({'params': state.model_state['ema']}, gray, rng,
                            num_samples, temperature, sampler,
                            method=models.PixSem.sample)

  def predict(self, state, batch):
    """One sample per image, upsampled to the input size (for evaluation)."""
    rng = jax.random.PRNGKey(self.config.sampling.seed)
    ab, conditioning = self.sample(state, batch['gray'], rng)
    n, size = batch['gray'].shape[0], batch['gray'].shape[1]
    out = {'ab': jax.image.resize(ab[:, 0], (n, size, size, 2), 'bilinear')}
    if 'segmentation' in conditioning:
      logits = conditioning['segmentation']
      out['segmentation'] = jax.image.resize(
          logits, (n, size, size, logits.shape[-1]), 'nearest')
    return out
