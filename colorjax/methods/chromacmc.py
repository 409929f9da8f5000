"""ChromaCMC (paper 000): GAN + CMC(l:c) colour difference + segmentation.

One train step updates the discriminator, then the generator against the
updated discriminator (pix2pix order), with a single generator forward and
backward pass: the generator's VJP is taken once, its output gradient comes
from the eq. 9 objective
    L_G = (1 - lambda) * GAN + lambda * L_CMC + L_seg,   lambda = 0.99.
"""

from typing import Dict

import jax
import jax.numpy as jnp
import optax

from colorjax.color import delta_e_cmc
from colorjax.color import join_lab
from colorjax.losses import adversarial
from colorjax.losses import segmentation as seg_losses
from colorjax.methods import base
from colorjax.models import chromacmc as models
from colorjax.models import seresnext


class ChromaCMC(base.Method):
  """Kong et al. 2021, 'Adversarial Edge-Aware Image Colorization...'."""

  def __init__(self, config):
    super().__init__(config)
    model = config.model
    dtype = base.compute_dtype(model.dtype)
    self.ab_scale = config.data.ab_scale
    self.num_classes = config.data.num_classes
    self.ignore_label = config.data.get('ignore_label')

    def generator(train):
      return models.Generator(
          num_classes=self.num_classes,
          trunk_channels=tuple(model.trunk_channels),
          frb_channels=model.frb_channels,
          branch_width=model.branch_width,
          branch_blocks=tuple(model.branch_blocks),
          use_branch=model.use_branch, dropout=model.dropout,
          upconv=model.get('upconv', 'auto'),
          grouped_conv=model.get('grouped_conv', 'auto'),
          train=train, dtype=dtype)

    self.generator = generator
    self.discriminator = lambda train: models.PatchDiscriminator(
        channels=tuple(model.discriminator_channels), train=train,
        dtype=dtype)
    self.optimizers = {name: self.make_optimizer(name)
                       for name in ('generator', 'discriminator')}

  def batch_spec(self, batch_size):
    size = self.config.data.image_size
    return {**super().batch_spec(batch_size),
            'segmentation': base.image_spec(batch_size, size, 1, jnp.uint8)}

  def init_state(self, rng, batch) -> base.TrainState:
    g_rng, d_rng = jax.random.split(rng)
    gray = batch['gray']
    g_vars = self.generator(False).init(g_rng, gray)
    d_vars = self.discriminator(False).init(d_rng, gray, batch['ab'])
    params = {'generator': g_vars['params'],
              'discriminator': d_vars['params']}
    return base.TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state={k: self.optimizers[k].init(v) for k, v in params.items()},
        model_state={'generator': g_vars.get('batch_stats', {}),
                     'discriminator': d_vars.get('batch_stats', {})})

  def load_pretrained(self, state: base.TrainState) -> base.TrainState:
    """Loads the SE-ResNeXt50 branch from config.model.pretrained_branch."""
    path = self.config.model.get('pretrained_branch')
    if not path:
      return state
    g_params = dict(state.params['generator'])
    g_stats = dict(state.model_state['generator'])
    reference = {'params': g_params['branch'], 'batch_stats': g_stats['branch']}
    converted = seresnext.convert_torch_state_dict(
        seresnext.load_torch_state_dict(path), reference)
    g_params['branch'] = converted['params']
    g_stats['branch'] = converted['batch_stats']
    return state.replace(
        params={**state.params, 'generator': g_params},
        model_state={**state.model_state, 'generator': g_stats})

  def generator_losses(self, outputs, batch) -> Dict[str, jax.Array]:
    """The non-adversarial terms of eq. 9 (also used by evaluation)."""
    lab_true = join_lab(batch['l'], batch['ab'], self.ab_scale)
    lab_pred = join_lab(batch['l'], outputs['ab'], self.ab_scale)
    loss = self.config.loss
    return {
        'cmc': jnp.mean(delta_e_cmc(lab_true, lab_pred, l=loss.cmc_l,
                                    c=loss.cmc_c)),
        'segmentation': seg_losses.cross_entropy(
            outputs['segmentation'], batch['segmentation'],
            self.ignore_label),
    }

  def train_step(self, state, batch, rng):
    gray, ab_true = batch['gray'], batch['ab']
    generator, discriminator = self.generator(True), self.discriminator(True)
    g_params, d_params = state.params['generator'], state.params[
        'discriminator']
    d_stats = state.model_state['discriminator']

    def generate(params):
      outputs, updates = generator.apply(
          {'params': params, 'batch_stats': state.model_state['generator']},
          gray, mutable=['batch_stats'], rngs={'dropout': rng})
      return outputs, updates['batch_stats']

    outputs, generator_vjp, g_stats = jax.vjp(generate, g_params,
                                               has_aux=True)
    fake_ab = jax.lax.stop_gradient(outputs['ab'])

    # Discriminator update (maximises eq. 8).
    def d_loss_fn(params):
      variables = {'params': params, 'batch_stats': d_stats}
      real, updates = discriminator.apply(variables, gray, ab_true,
                                          mutable=['batch_stats'])
      variables = {'params': params, 'batch_stats': updates['batch_stats']}
      fake, updates = discriminator.apply(variables, gray, fake_ab,
                                          mutable=['batch_stats'])
      return adversarial.discriminator_loss(real, fake), (
          updates['batch_stats'], real, fake)

    (d_loss, (new_d_stats, real_logits, fake_logits)), d_grads = (
        jax.value_and_grad(d_loss_fn, has_aux=True)(d_params))
    d_updates, d_opt = self.optimizers['discriminator'].update(
        d_grads, state.opt_state['discriminator'], d_params)
    new_d_params = optax.apply_updates(d_params, d_updates)

    # Generator update against the updated discriminator (eq. 9).
    lam = self.config.loss.lambda_cmc

    def g_objective(outputs):
      fooled, _ = discriminator.apply(
          {'params': new_d_params, 'batch_stats': new_d_stats}, gray,
          outputs['ab'], mutable=['batch_stats'])
      terms = self.generator_losses(outputs, batch)
      terms['gan'] = adversarial.generator_loss(fooled)
      total = ((1.0 - lam) * terms['gan'] + lam * terms['cmc']
               + self.config.loss.seg_weight * terms['segmentation'])
      return total, terms

    (g_loss, terms), output_grads = jax.value_and_grad(
        g_objective, has_aux=True)(outputs)
    (g_grads,) = generator_vjp(output_grads)
    g_updates, g_opt = self.optimizers['generator'].update(
        g_grads, state.opt_state['generator'], g_params)
    new_g_params = optax.apply_updates(g_params, g_updates)

    new_state = state.replace(
        step=state.step + 1,
        params={'generator': new_g_params, 'discriminator': new_d_params},
        opt_state={'generator': g_opt, 'discriminator': d_opt},
        model_state={'generator': g_stats, 'discriminator': new_d_stats})
    metrics = {
        'loss': g_loss, 'loss_cmc': terms['cmc'],
        'loss_segmentation': terms['segmentation'], 'loss_gan': terms['gan'],
        'loss_discriminator': d_loss,
        'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
        'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),
        'grad_norm_generator': optax.global_norm(g_grads),
    }
    return new_state, metrics

  def predict(self, state, batch):
    return self.generator(False).apply(
        {'params': state.params['generator'],
         'batch_stats': state.model_state['generator']}, batch['gray'])
