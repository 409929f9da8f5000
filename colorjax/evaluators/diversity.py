"""Sample diversity of sampling methods (paper 004 section 4.5).

For each image, cfg.num_samples colorizations are drawn; over every pair
of them:
  diversity_msssim   mean multi-scale SSIM (Wang et al. 2003), as paper
                     004 (after Guadarrama et al. 2017); lower = more
                     diverse. Its histogram over all pairs (004 Fig. 11)
                     is written as a PNG when a plots directory is given.
  diversity_ssim     mean single-scale SSIM (kept for comparison)
  diversity_lpips    mean pairwise LPIPS (AlexNet v0.1), only when
                     cfg.lpips names the weights file; higher = more diverse
and against the ground truth:
  best_of_n_psnr     PSNR of the best of the N samples, averaged over
                     images (in cfg.resolution's protocol, like `colour`).
Pairwise scores are computed at the model's resolution (L at the input
size, samples upsampled onto it).
"""

import os

import jax.numpy as jnp

from colorjax import metrics as metrics_lib
from colorjax import plots
from colorjax.evaluators import base


class DiversityEvaluator(base.Evaluator):
  needs_keys = ('gray', 'l', 'ab')
  needs_predict = False
  uses_resolution = True

  def __init__(self, name, cfg, method, config, mesh):
    self.num_samples = int(cfg.get('num_samples', 2))
    if self.num_samples < 2:
      raise ValueError(f'evals.{name}.num_samples must be >= 2')
    super().__init__(name, cfg, method, config, mesh)
    self.lpips = None
    if cfg.get('lpips'):
      self.lpips = self.load_network('lpips', 'lpips_alex', cfg.lpips)
    self.lpips_size = int(cfg.get('lpips_size', 256))
    self.plots_dir = None
    self.artifacts = []

  def unavailable(self, outputs):
    if not self.method.samples:
      return f'{self.config.method} is deterministic (it does not sample)'
    return None

  def batch_metrics(self, state, batch, outputs, rng, networks):
    del outputs
    ab, _ = self.method.sample(state, batch['gray'], rng, self.num_samples)
    rgb = [base.to_rgb(batch['l'], base.resize_like(ab[:, k], batch['l']),
                       self.ab_scale) for k in range(self.num_samples)]
    pairs = [(a, b) for a in range(self.num_samples)
             for b in range(a + 1, self.num_samples)]
    msssim = jnp.stack([metrics_lib.ms_ssim(rgb[a], rgb[b])
                        for a, b in pairs], axis=1)              # [N, P]
    values = {
        'diversity_msssim': jnp.mean(msssim, axis=1),
        'diversity_ssim': jnp.mean(jnp.stack(
            [metrics_lib.ssim(rgb[a], rgb[b]) for a, b in pairs]), axis=0),
    }
    if self.lpips is not None:
      small = [base.crop_resize(x * 2.0 - 1.0, None, self.lpips_size)
               for x in rgb]
      values['diversity_lpips'] = jnp.mean(jnp.stack([
          self.lpips.apply(networks['lpips'], small[a], small[b])
          for a, b in pairs]), axis=0)
    psnrs = []
    for k in range(self.num_samples):
      s = self.scored(batch, ab[:, k])
      psnrs.append(metrics_lib.psnr(s.rgb(), s.rgb(s.ab_true), mask=s.mask))
    values['best_of_n_psnr'] = jnp.max(jnp.stack(psnrs), axis=0)
    collection = metrics_lib.averages(list(values)).single_from_model_output(
        **values, mask=batch['mask'] > 0)
    return collection, {'per_image': {'msssim_pairs': msssim}}

  def finish(self, writer=None, step=None, samples_dir=None):
    results = super().finish()
    if not results:
      return results
    results['diversity_num_samples'] = self.num_samples
    pairs = self.per_image('msssim_pairs').reshape(-1)
    if self.plots_dir and pairs.size:
      self.artifacts.append(plots.histogram(
          os.path.join(self.plots_dir, f'{self.name}_msssim_histogram.png'),
          pairs, f'{self.name}: MS-SSIM of sample pairs '
          f'({self.num_samples} samples per image)', 'MS-SSIM'))
    return results
