"""Image grids of the first evaluation batch, for TensorBoard and samples/.

Rows of: gray input | prediction | ground truth | predicted labels; the
columns a method or a dataset cannot provide (no ab head, no colours, no
segmentation head) are left out.
"""

import os

import jax
import numpy as np
from PIL import Image

from colorjax import sharding
from colorjax.color import palette
from colorjax.evaluators import base


class SummaryEvaluator(base.Evaluator):
  needs_keys = ('l',)

  def __init__(self, name, cfg, method, config, mesh):
    super().__init__(name, cfg, method, config, mesh)
    self.num_images = int(cfg.get('num_images', 4))
    # Every host needs the batch to draw it: gather in one program.
    self._gather = jax.jit(lambda tree: tree,
                           out_shardings=sharding.replicated(mesh))
    self.grid = None

  def start(self):
    self.grid = None

  def update(self, state, batch, outputs, rng, index):
    if self.grid is not None:
      return
    keep = {k: batch[k] for k in ('l', 'ab', 'mask') if k in batch}
    shown = {k: outputs[k] for k in ('ab', 'segmentation') if k in outputs}
    inputs, shown = jax.device_get(self._gather((keep, shown)))
    count = min(self.num_images, int(np.sum(inputs['mask'])))
    lightness = inputs['l'][:count]
    zeros = np.zeros(lightness.shape[:3] + (2,), np.float32)
    columns = [base.to_rgb(lightness, zeros, self.ab_scale)]
    if 'ab' in shown:
      columns.append(base.to_rgb(lightness, np.asarray(base.resize_like(
          shown['ab'][:count], lightness)), self.ab_scale))
    if 'ab' in inputs:
      columns.append(base.to_rgb(lightness, inputs['ab'][:count],
                                 self.ab_scale))
    columns = [np.rint(np.asarray(c) * 255).astype(np.uint8)
               for c in columns]
    if 'segmentation' in shown:
      logits = np.asarray(shown['segmentation'][:count])
      labels = np.argmax(logits, -1)
      if labels.shape[1:] != lightness.shape[1:3]:
        labels = np.stack([np.asarray(Image.fromarray(
            x.astype(np.uint8)).resize(lightness.shape[2:0:-1],
                                       Image.NEAREST)) for x in labels])
      columns.append(palette.PALETTE[labels])
    self.grid = np.concatenate([np.concatenate(list(row), axis=1)
                                for row in zip(*columns)], axis=0)

  def finish(self, writer=None, step=None, samples_dir=None):
    if self.grid is None or step is None:
      return {}
    if writer is not None:
      writer.write_images(step, {f'{self.name}/gray_pred_true_seg':
                                 self.grid[None]})
    if jax.process_index() == 0 and samples_dir:
      os.makedirs(samples_dir, exist_ok=True)
      prefix = '' if self.name == 'samples' else f'{self.name}_'
      Image.fromarray(self.grid).save(
          os.path.join(samples_dir, f'{prefix}step_{step:08d}.png'))
    return {}
