"""Colour metrics of the five papers, on the protocol's images.

Every metric compares RGB (or ab) recombined from the true L and the
predicted ab against the image's own colours, at the model's resolution
(cfg.resolution = 'model') or at the photo's own size (cfg.resolution =
'full': the prediction upsampled onto the full-resolution L, as colorize
does). Definitions (colorjax.metrics):

  psnr, ssim            RGB in [0, 1] (000 section V; 001 eq. 21-24)
  psnr_channel_mean     PSNR of each RGB channel, averaged (001 eq. 21)
  entropy               8-bit RGB histogram entropy, bits (000)
  psnr_gray_baseline    PSNR of ab = 0 (doing nothing), for reference
  ab_l1                 mean |ab error|, Lab units
  rmse_ab               root mean squared ab error, Lab units (004 Table 3)
  l2_ab                 001 eq. 23: sqrt(sum squared ab error) / (2P)
  l2ab_auc              area under the cumulative per-pixel ab error curve,
                        thresholds 0..150 (001 Fig. 12, Zhang 2016's AuC)
  colorfulness[_abs]    Hasler & Suesstrunk M3 (and the |rg|, |yb|
                        variant of CT2/DDColor) of the colorizations;
  colorfulness[_abs]_gt the same of the ground truth;
  delta_colorfulness[_abs]  |mean CF(colorized) - mean CF(ground truth)|
                        over the split (DDColor's dCF).
cfg.output names the predict output scored (default 'ab'; e.g. paper
001's 'ab_annealed_mean' beside its regression). The cumulative curve is written as a PNG (+ CSV) when a plots directory is
given.
"""

import os

import jax.numpy as jnp

from colorjax import metrics as metrics_lib
from colorjax import plots
from colorjax.evaluators import base

PER_IMAGE = ('psnr', 'psnr_channel_mean', 'ssim', 'entropy',
             'psnr_gray_baseline', 'ab_l1', 'rmse_ab', 'l2_ab',
             'colorfulness', 'colorfulness_abs', 'colorfulness_gt',
             'colorfulness_abs_gt', 'downscaled')
NAMES = PER_IMAGE   # kept for callers that list the metric names


class ColourEvaluator(base.Evaluator):
  needs_keys = ('l', 'ab')
  needs_outputs = ('ab',)
  uses_resolution = True

  def __init__(self, name, cfg, method, config, mesh):
    self.output = cfg.get('output', 'ab')
    self.needs_outputs = (self.output,)
    super().__init__(name, cfg, method, config, mesh)
    self.plots_dir = None
    self.artifacts = []

  def batch_metrics(self, state, batch, outputs, rng, networks):
    del state, rng, networks
    s = self.scored(batch, outputs[self.output])
    rgb_true = s.rgb(s.ab_true)
    rgb_pred = s.rgb()
    rgb_gray = s.rgb(jnp.zeros_like(s.ab_true))
    m = s.mask
    pixels = jnp.maximum(jnp.sum(m, axis=(1, 2)), 1.0)
    per_image = {
        'psnr': metrics_lib.psnr(rgb_pred, rgb_true, mask=m),
        'psnr_channel_mean': metrics_lib.psnr(rgb_pred, rgb_true, mask=m,
                                              per_channel=True),
        'ssim': metrics_lib.ssim(rgb_pred, rgb_true, mask=m),
        'entropy': metrics_lib.image_entropy(rgb_pred, mask=m),
        'psnr_gray_baseline': metrics_lib.psnr(rgb_gray, rgb_true, mask=m),
        'ab_l1': jnp.sum(jnp.abs(s.ab_pred - s.ab_true) * m[..., None],
                         axis=(1, 2, 3)) / (2.0 * pixels),
        'rmse_ab': metrics_lib.rmse_ab(s.ab_pred, s.ab_true, mask=m),
        'l2_ab': metrics_lib.l2_ab(s.ab_pred, s.ab_true, mask=m),
        'colorfulness': metrics_lib.colorfulness(rgb_pred, mask=m),
        'colorfulness_abs': metrics_lib.colorfulness(rgb_pred, True, mask=m),
        'colorfulness_gt': metrics_lib.colorfulness(rgb_true, mask=m),
        'colorfulness_abs_gt': metrics_lib.colorfulness(rgb_true, True,
                                                        mask=m),
        'downscaled': (batch['full_downscaled'] if 'full_downscaled' in batch
                       else jnp.zeros_like(batch['mask'])),
    }
    collection = metrics_lib.averages(PER_IMAGE).single_from_model_output(
        **per_image, mask=batch['mask'] > 0)
    histogram = metrics_lib.ab_error_histogram(s.ab_pred, s.ab_true, mask=m)
    return collection, {'sum': {'ab_error_histogram': histogram}}

  def finish(self, writer=None, step=None, samples_dir=None):
    results = super().finish()
    if self._totals is None:
      return results
    count = int(self._totals.psnr.count)
    results['num_images'] = count
    results['num_downscaled'] = int(round(results.pop('downscaled') * count))
    for suffix in ('', '_abs'):
      results[f'delta_colorfulness{suffix}'] = abs(
          results[f'colorfulness{suffix}'] -
          results[f'colorfulness{suffix}_gt'])
    thresholds, within, auc = metrics_lib.cumulative_ab_accuracy(
        self._sums['ab_error_histogram'])
    results['l2ab_auc'] = auc
    self.cumulative_ab = (thresholds, within)
    if self.plots_dir:
      self.artifacts.append(plots.curve(
          os.path.join(self.plots_dir, f'{self.name}_l2ab_cumulative.png'),
          thresholds, within,
          f'{self.name}: per-pixel ab error ({self.resolution} resolution)',
          'threshold (Lab units)', 'fraction of pixels within'))
    return results
