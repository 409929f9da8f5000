"""ChromaCMC (paper 000): GAN + CMC(l:c) colour difference + segmentation.

One train step updates the discriminator, then the generator against the
updated discriminator (pix2pix order), with a single generator forward and
backward pass: the generator's VJP is taken once, its output gradient comes
from the eq. 9 objective
    L_G = (1 - lambda) * GAN + lambda * L_CMC + L_seg,   lambda = 0.99.
Section V-C's ablations are config switches: `model.use_segmentation=False`
drops the head and L_seg (Table 2), `loss.colour='l2'` replaces L_CMC by
the squared Euclidean Lab distance (Table 3). Each weighted term of L_G is
logged (`loss_<term>_weighted`) next to the raw one, so eq. 9's balance is
visible; `loss.cmc_scale` picks the colour term's units (configs/
chromacmc.py says why 'normalised' is the one where eq. 9's "consistent
order of magnitude" holds).
"""

from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import optax

from colorjax import choices
from colorjax import config_lib
from colorjax import errors
from colorjax import pretrained
from colorjax.color import delta_e_cmc
from colorjax.color import join_lab
from colorjax.losses import adversarial
from colorjax.losses import segmentation as seg_losses
from colorjax.methods import base
from colorjax.models import chromacmc as models
from colorjax.pretrained import timm_seresnext

COLOUR_LOSSES = ('cmc', 'l2')
CMC_SCALES = ('lab', 'normalised')

MISSING_BRANCH_MESSAGE = (
    'the paper initialises the SE-ResNeXt50 global branch from ImageNet '
    '(section IV-B1), and no weights were given.\n'
    f'  Get timm\'s {timm_seresnext.NAME} ImageNet weights '
    f'({timm_seresnext.HUB_FILE}, or {timm_seresnext.PTH_URL}) and pass\n'
    '  --config.model.pretrained_branch=PATH\n'
    '  or train the branch from random init on purpose with '
    '--config.model.expect_pretrained_branch=False (recorded as such in '
    '<workdir>/pretrained.json and in compare\'s tables).')


class ChromaCMC(base.Method):
  """Kong et al. 2021, 'Adversarial Edge-Aware Image Colorization...'."""

  def input_multiple(self):
    # The U-Net's stride-2 levels (8 at paper size: 256); the SE-ResNeXt
    # branch (stride 32) pools globally and its refined maps meet the
    # trunk's at 1/4 and 1/16, which a multiple of 2^levels keeps aligned.
    return max(2 ** len(self.config.model.trunk_channels), 32
               if self.config.model.get('use_branch', True) else 1)

  def __init__(self, config):
    super().__init__(config)
    model = config.model
    dtype = base.compute_dtype(model.dtype)
    self.ab_scale = config.data.ab_scale
    self.num_classes = config.data.num_classes
    self.ignore_label = config.data.get('ignore_label')
    self.use_segmentation = model.get('use_segmentation', True)
    loss = config.loss
    self.colour = loss.get('colour', 'cmc')
    scale = loss.get('cmc_scale', 'lab')
    choices.check('loss.colour', self.colour, COLOUR_LOSSES)
    choices.check('loss.cmc_scale', scale, CMC_SCALES)
    # What a per-pixel colour distance is divided by: 1 (Lab units) or the
    # ab scale (the units of the network's tanh output).
    self.colour_unit = 1.0 if scale == 'lab' else float(self.ab_scale)
    # Eq. 9's weight of each generator term.
    self.term_weights = {'gan': 1.0 - loss.lambda_cmc,
                         self.colour: loss.lambda_cmc}
    if self.use_segmentation:
      self.term_weights['segmentation'] = loss.seg_weight

    def generator(train):
      return models.Generator(
          num_classes=self.num_classes,
          use_segmentation=self.use_segmentation,
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
    spec = super().batch_spec(batch_size)
    if self.use_segmentation:
      size = self.config.data.image_size
      spec['segmentation'] = base.image_spec(batch_size, size, 1, jnp.uint8)
    return spec

  @base.compiled_init
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

  def _branch_init_from(self) -> Optional[Dict[str, Any]]:
    """The `config.init_from` entry that fills the branch (the whole
    generator, or a path under 'branch'), if one is set."""
    entry = dict(self.config.get('init_from', {}).get('generator') or {})
    if not any(entry.get(k) for k in config_lib.INIT_FROM_SOURCES):
      return None
    path = (entry.get('path') or '').strip('/')
    return entry if path.split('/')[0] in ('', 'branch') else None

  def check_branch_weights(self) -> None:
    """A config that expects the paper's pretrained branch
    (`model.expect_pretrained_branch`: the paper configs, not the CPU
    twins) stops with one message when none is given (neither
    `model.pretrained_branch` nor an init_from entry for it)."""
    model = self.config.model
    if (model.use_branch and model.get('expect_pretrained_branch', False)
        and not model.get('pretrained_branch')
        and self._branch_init_from() is None):
      raise errors.MissingFileError(MISSING_BRANCH_MESSAGE)

  def load_pretrained(self, state: base.TrainState) -> base.TrainState:
    """Loads the SE-ResNeXt50 branch from config.model.pretrained_branch
    (`check_branch_weights` first: a fresh run stops here, before its first
    step; a resumed one never gets here)."""
    self.check_branch_weights()
    model = self.config.model
    path = model.get('pretrained_branch')
    if not path:
      return state
    g_params = dict(state.params['generator'])
    g_stats = dict(state.model_state['generator'])
    reference = {'params': g_params['branch'], 'batch_stats': g_stats['branch']}
    converted = pretrained.convert(
        timm_seresnext.NAME, pretrained.read_state_dict(path), reference)
    g_params['branch'] = converted['params']
    g_stats['branch'] = converted['batch_stats']
    return state.replace(
        params={**state.params, 'generator': g_params},
        model_state={**state.model_state, 'generator': g_stats})

  def pretrained_record(self) -> Dict[str, Any]:
    """Where the branch's initial weights came from (<workdir>/
    pretrained.json): the file and its SHA-256, or random init."""
    model = self.config.model
    if not model.use_branch:
      return {}
    source, path = None, None
    if model.get('pretrained_branch'):
      source, path = 'config.model.pretrained_branch', model.pretrained_branch
    elif self._branch_init_from() is not None:   # None: the opt-out
      path = base.init_from_path(*base.init_from_source(self.config,
                                                         'generator'))
      source = 'config.init_from.generator' if path else None
    return {'generator/branch': base.weights_record(
        timm_seresnext.NAME, model.get('expect_pretrained_branch', False),
        source, path)}

  def generator_losses(self, outputs, batch) -> Dict[str, jax.Array]:
    """The non-adversarial terms of eq. 9, unweighted.

    The colour term under its name: 'cmc', the per-pixel mean of eq. 1, or
    'l2' (Table 3), the per-pixel mean of the squared Euclidean Lab
    distance |Lab_true - Lab_pred|^2 (= da^2 + db^2, L being shared), each
    distance divided by `colour_unit` first; 'segmentation' (eq. 7) when the
    model has the head.
    """
    lab_true = join_lab(batch['l'], batch['ab'], self.ab_scale)
    lab_pred = join_lab(batch['l'], outputs['ab'], self.ab_scale)
    loss = self.config.loss
    if self.colour == 'cmc':
      distance = delta_e_cmc(lab_true, lab_pred, l=loss.cmc_l, c=loss.cmc_c)
      terms = {'cmc': jnp.mean(distance / self.colour_unit)}
    else:
      difference = (lab_true - lab_pred) / self.colour_unit
      terms = {'l2': jnp.mean(jnp.sum(jnp.square(difference), axis=-1))}
    if self.use_segmentation:
      terms['segmentation'] = seg_losses.cross_entropy(
          outputs['segmentation'], batch['segmentation'], self.ignore_label)
    return terms

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
    def g_objective(outputs):
      fooled, _ = discriminator.apply(
          {'params': new_d_params, 'batch_stats': new_d_stats}, gray,
          outputs['ab'], mutable=['batch_stats'])
      terms = self.generator_losses(outputs, batch)
      terms['gan'] = adversarial.generator_loss(fooled)
      # (1 - lambda) * GAN + lambda * colour + seg_weight * L_seg, summed in
      # that order.
      weighted = {k: w * terms[k] for k, w in self.term_weights.items()}
      return sum(weighted.values()), (terms, weighted)

    (g_loss, (terms, weighted)), output_grads = jax.value_and_grad(
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
        'loss': g_loss, **{f'loss_{k}': v for k, v in terms.items()},
        # What the generator's gradient sees of each term (eq. 9's balance).
        **{f'loss_{k}_weighted': v for k, v in weighted.items()},
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
