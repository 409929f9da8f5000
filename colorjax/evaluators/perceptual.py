"""Perceptual metrics with reference networks read from local files.

  lpips   LPIPS (AlexNet, v0.1; Zhang et al. 2018) between each colorized
          image and its ground truth, images in [-1, 1] resized to
          cfg.lpips_size (default 256) -- paper 001 section V-C.
  fid     Frechet Inception Distance (Heusel et al. 2017) between the
          colorized and the ground-truth images of the split: pytorch-fid's
          Inception (2048-d pool features; its own 299 bilinear resize),
          `colorjax.metrics.frechet_distance` -- paper 001 section V-C.
cfg.lpips / cfg.fid_inception: the weights files (README, "Pretrained
networks (offline)"); each metric runs only when its file is given, and the
evaluator reports itself unavailable when neither is. The images are each
photo's real region in cfg.resolution's protocol.
"""

import jax.numpy as jnp

from colorjax import metrics as metrics_lib
from colorjax.evaluators import base


class PerceptualEvaluator(base.Evaluator):
  needs_keys = ('l', 'ab')
  needs_outputs = ('ab',)
  uses_resolution = True

  def __init__(self, name, cfg, method, config, mesh):
    super().__init__(name, cfg, method, config, mesh)
    self.lpips = self.inception = None
    if cfg.get('lpips'):
      self.lpips = self.load_network('lpips', 'lpips_alex', cfg.lpips)
    if cfg.get('fid_inception'):
      self.inception = self.load_network('inception', 'inception_v3_fid',
                                         cfg.fid_inception)
    self.lpips_size = int(cfg.get('lpips_size', 256))

  missing_network_hint = (
      'no weights file given (evals.<name>.lpips=PATH and/or '
      'fid_inception=PATH; evaluate --lpips / --fid_inception)')

  def has_network(self):
    return self.lpips is not None or self.inception is not None

  def batch_metrics(self, state, batch, outputs, rng, networks):
    del state, rng
    s = self.scored(batch, outputs['ab'])
    hw = s.hw
    pred, true = s.rgb(), s.rgb(s.ab_true)
    values, per_image = {}, {}
    if self.lpips is not None:
      a = base.crop_resize(pred, hw, self.lpips_size) * 2.0 - 1.0
      b = base.crop_resize(true, hw, self.lpips_size) * 2.0 - 1.0
      values['lpips'] = self.lpips.apply(networks['lpips'], a, b)
    if self.inception is not None:
      for key, image in (('fid_features', pred), ('fid_features_gt', true)):
        if hw is not None:   # the real region; Inception then resizes
          image = base.crop_resize(image, hw, 299)   # 299 -> 299 (no-op)
        per_image[key] = self.inception.apply(networks['inception'], image)
    if not values:      # a Collection needs a field: count the images
      values['images'] = jnp.ones_like(batch['mask'])
    collection = metrics_lib.averages(list(values)).single_from_model_output(
        **values, mask=batch['mask'] > 0)
    return collection, {'per_image': per_image}

  def finish(self, writer=None, step=None, samples_dir=None):
    results = super().finish()
    results.pop('images', None)
    if self.inception is not None and self._lists:
      pred = self.per_image('fid_features')
      true = self.per_image('fid_features_gt')
      results['fid'] = metrics_lib.frechet_distance(pred, true)
      results['fid_num_images'] = int(len(pred))
    return results
