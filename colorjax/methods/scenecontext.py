"""SceneContext (paper 001): U-Net with scene, regression, 313-bin and
segmentation heads, trained jointly (eq. 16).

  eq. 16  L = a1 L_soft + a2 L_reg + a3 L_clas + a4 L_seg (the heads the
          variant has; `loss.weights`)
  eq. 17  L_soft = -mean_p w(q*_p) sum_q Z(p, q) log Z^(p, q): Zhang's soft
          encoding (k = 5 nearest bins, Gaussian sigma 5) weighted by the
          rebalancing weight (eq. 11-12) of the pixel's nearest bin q*
  eq. 18  L_reg = mean_p ||Y_ab(p) - Y^_ab(p)||^2 on ab / ab_scale
  eq. 19  L_seg = softmax soft-dice, averaged over classes
  eq. 20  L_clas = -sum_i Y_clas,i log Y^_clas,i against the scene soft label
Decoding (section V-C): the regression head's ab by default; the annealed
mean of H_soft (eq. 14-15, T = 0.38), its mode or mean on request.
"""

from typing import Dict

import jax
import jax.numpy as jnp

from colorjax import choices
from colorjax.color import quantize
from colorjax.losses import distribution
from colorjax.losses import segmentation as seg_losses
from colorjax.methods import base
from colorjax.models import scenecontext as models

DECODINGS = ('regression',) + quantize.DECODINGS


def regression_loss(ab_pred, ab_true):
  """Eq. 18: mean over pixels of the squared ab error summed over a and b
  (both normalised by ab_scale), in float32."""
  diff = ab_pred.astype(jnp.float32) - ab_true.astype(jnp.float32)
  return jnp.mean(jnp.sum(diff * diff, -1))


class SceneContext(base.BinnedColourMethod):
  """Nguyen-Quynh et al., 'Image colorization using the global scene-context
  style and pixel-wise semantic segmentation' (paper 001)."""

  def input_multiple(self):
    # Four stride-2 encoder blocks; H_clas pools globally.
    return 2 ** len(self.config.model.encoder_widths)

  def __init__(self, config):
    super().__init__(config)
    model = config.model
    choices.check('model.variant', model.variant, sorted(models.VARIANTS))
    self.heads = models.VARIANTS[model.variant]
    self.num_scenes = config.data.num_scenes
    self.ab_scale = config.data.ab_scale
    self.ignore_label = config.data.get('ignore_label')
    decode = config.decoding.decode
    choices.check('decoding.decode', decode, DECODINGS)
    self.network = lambda train: models.SceneContext(
        encoder_widths=tuple(model.encoder_widths),
        middle_width=model.middle_width, decoder_convs=model.decoder_convs,
        clas_hidden=model.clas_hidden, heads=self.heads,
        num_classes=config.data.num_classes, num_scenes=self.num_scenes,
        upsample=model.upsample, train=train,
        dtype=base.compute_dtype(model.dtype))
    self.optimizer = self.make_optimizer('model')

  def batch_spec(self, batch_size):
    size = self.config.data.image_size
    spec = super().batch_spec(batch_size)
    if 'seg' in self.heads:
      spec['segmentation'] = base.image_spec(batch_size, size, 1, jnp.uint8)
    if 'clas' in self.heads:
      spec['scene'] = jax.ShapeDtypeStruct((batch_size, self.num_scenes),
                                           jnp.float32)
    return spec

  def losses(self, outputs, batch, rebalance) -> Dict[str, jax.Array]:
    """Eq. 17-20, one term per head of the variant."""
    loss = self.config.loss
    terms = {
        'soft': distribution.binned_colour_loss(             # eq. 17
            outputs['ab_logits'], batch['ab_bins'], batch['ab_weights'],
            rebalance),
        'reg': regression_loss(outputs['ab'], batch['ab']),  # eq. 18
    }
    if 'seg' in self.heads:                                   # eq. 19
      terms['seg'] = seg_losses.soft_dice(
          outputs['segmentation'], batch['segmentation'], self.ignore_label,
          smooth=loss.dice_smooth, per_image=loss.dice_per_image)
    if 'clas' in self.heads:                                  # eq. 20
      terms['clas'], _ = distribution.label_cross_entropy(
          outputs['scene'], batch['scene'])
    return terms

  def total_loss(self, terms):
    """Eq. 16."""
    weights = self.config.loss.weights
    return sum(weights[name] * value for name, value in terms.items())

  def train_metrics(self, outputs, batch, terms):
    metrics = {f'loss_{name}': value for name, value in terms.items()}
    if 'clas' in self.heads:
      hit = (jnp.argmax(outputs['scene'], -1)
             == jnp.argmax(batch['scene'], -1))
      metrics['train_scene_top1'] = jnp.mean(hit.astype(jnp.float32))
    return metrics

  def predict(self, state, batch):
    """'ab' = the configured decoding (section V-C: the regression head),
    with 'ab_regression' and 'ab_annealed_mean' (eq. 14-15 at
    decoding.temperature) beside it; the 313-bin logits; the segmentation
    and scene logits of the variants that have those heads."""
    decoding = self.config.decoding
    outputs = self.outputs(state, batch['gray'])
    annealed = quantize.decode_ab_logits(
        outputs['ab_logits'], 'annealed_mean',
        decoding.temperature) / self.ab_scale
    if decoding.decode == 'regression':
      ab = outputs['ab']
    elif decoding.decode == 'annealed_mean':
      ab = annealed
    else:
      ab = quantize.decode_ab_logits(outputs['ab_logits'],
                                     decoding.decode) / self.ab_scale
    result = {'ab': ab, 'ab_regression': outputs['ab'],
              'ab_annealed_mean': annealed,
              'ab_logits': outputs['ab_logits']}
    for key in ('segmentation', 'scene'):
      if key in outputs:
        result[key] = outputs[key]
    return result
