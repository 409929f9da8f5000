"""Colour metrics (paper 000 section V): PSNR, SSIM, entropy, ab error.

On RGB recombined from the true L and the predicted ab (upsampled to the
image if the method predicts at a lower resolution), against the image's
own colours; also the PSNR of the gray (ab = 0) baseline on the same
images, so a number can be read against doing nothing.
"""

import jax.numpy as jnp

from colorjax import metrics as metrics_lib
from colorjax.evaluators import base

NAMES = ('psnr', 'ssim', 'entropy', 'psnr_gray_baseline', 'ab_l1')


class ColourEvaluator(base.Evaluator):
  needs_keys = ('l', 'ab')
  needs_outputs = ('ab',)

  def batch_metrics(self, state, batch, outputs, rng):
    del state, rng
    ab_pred = base.resize_like(outputs['ab'], batch['ab'])
    rgb_true = base.to_rgb(batch['l'], batch['ab'], self.ab_scale)
    rgb_pred = base.to_rgb(batch['l'], ab_pred, self.ab_scale)
    rgb_gray = base.to_rgb(batch['l'], jnp.zeros_like(batch['ab']),
                           self.ab_scale)
    per_image = {
        'psnr': metrics_lib.psnr(rgb_pred, rgb_true),
        'ssim': metrics_lib.ssim(rgb_pred, rgb_true),
        'entropy': metrics_lib.image_entropy(rgb_pred),
        'psnr_gray_baseline': metrics_lib.psnr(rgb_gray, rgb_true),
        'ab_l1': jnp.mean(jnp.abs(ab_pred - batch['ab']),
                          axis=(1, 2, 3)) * self.ab_scale,
    }
    return metrics_lib.averages(NAMES).single_from_model_output(
        **per_image, mask=batch['mask'] > 0)

  def finish(self, writer=None, step=None, samples_dir=None):
    results = super().finish()
    if self._totals is not None:
      results['num_images'] = int(self._totals.psnr.count)
    return results
