"""Sample diversity (paper 004 section 4.5): SSIM between samples.

For each image, cfg.num_samples colorizations are drawn and the SSIM of
every pair (RGB, full resolution) is averaged; lower = more diverse.
"""

import jax.numpy as jnp

from colorjax import metrics as metrics_lib
from colorjax.evaluators import base


class DiversityEvaluator(base.Evaluator):
  needs_keys = ('gray', 'l')
  needs_predict = False

  def __init__(self, name, cfg, method, config, mesh):
    self.num_samples = int(cfg.get('num_samples', 2))
    if self.num_samples < 2:
      raise ValueError(f'evals.{name}.num_samples must be >= 2')
    super().__init__(name, cfg, method, config, mesh)

  def unavailable(self, outputs):
    if not self.method.samples:
      return f'{self.config.method} is deterministic (it does not sample)'
    return None

  def batch_metrics(self, state, batch, outputs, rng):
    del outputs
    ab, _ = self.method.sample(state, batch['gray'], rng, self.num_samples)
    rgb = [base.to_rgb(batch['l'], base.resize_like(ab[:, k], batch['l']),
                       self.ab_scale) for k in range(self.num_samples)]
    pairs = [(a, b) for a in range(self.num_samples)
             for b in range(a + 1, self.num_samples)]
    values = jnp.mean(jnp.stack([metrics_lib.ssim(rgb[a], rgb[b])
                                 for a, b in pairs]), axis=0)
    return metrics_lib.averages(['diversity_ssim']).single_from_model_output(
        diversity_ssim=values, mask=batch['mask'] > 0)

  def finish(self, writer=None, step=None, samples_dir=None):
    results = super().finish()
    if results:
      results['diversity_num_samples'] = self.num_samples
    return results
