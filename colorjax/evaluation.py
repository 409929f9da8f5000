"""Periodic and stand-alone evaluation on a validation split.

Every image is scored once: the last, partial batch is padded and masked,
so results do not depend on the batch size or the number of devices.
Metrics (paper 000 section V): PSNR and SSIM on RGB recombined from the true
L and the predicted ab, image entropy of the colorization, the same PSNR for
the gray (ab = 0) baseline, and mean IoU of the segmentation head.
"""

import os
from typing import Any, Dict, Optional

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import numpy as np
from PIL import Image

from colorjax import color
from colorjax import metrics as metrics_lib
from colorjax.data import pipeline

PALETTE = np.random.default_rng(7).integers(40, 256, (256, 3)).astype(np.uint8)


def pad_batch(batch: Dict[str, np.ndarray], size: int) -> Dict[str, np.ndarray]:
  count = len(next(iter(batch.values())))
  out = {k: np.concatenate([v, np.zeros((size - count,) + v.shape[1:],
                                        v.dtype)]) if count < size else v
         for k, v in batch.items()}
  mask = np.zeros(size, np.float32)
  mask[:count] = 1.0
  out['mask'] = mask
  return out


def to_rgb(lightness, ab, ab_scale: float):
  """True L [0, 100] + normalised ab -> sRGB [0, 1]."""
  return color.lab_to_rgb(color.join_lab(lightness, ab, ab_scale))


class Evaluator:
  """Runs `method.predict` over a split and reduces the metrics."""

  def __init__(self, method, config, mesh, split: Optional[str] = None,
               max_batches: Optional[int] = None):
    self.method = method
    self.config = config
    self.mesh = mesh
    data = config.data
    self.spec = pipeline.LoaderSpec.from_config(
        data, split or data.eval_split, train=False,
        global_batch_size=data.eval_batch_size,
        worker_count=min(data.get('worker_count', 0), 2))
    limit = data.get('eval_max_batches', -1) if max_batches is None else \
        max_batches
    self.max_batches = None if limit is None or limit < 0 else limit
    self.local_batch = pipeline.process_batch_size(data.eval_batch_size)
    self.ab_scale = data.ab_scale
    self.num_classes = data.num_classes
    self.ignore_label = data.get('ignore_label')
    replicated = NamedSharding(mesh, P())
    self._metrics = jax.jit(self._batch_metrics, out_shardings=replicated)
    # Summaries need the batch on every host: gather it in the same program.
    self._predict = jax.jit(
        lambda state, batch: (method.predict(state, batch),
                              {k: batch[k] for k in ('l', 'ab', 'mask')}),
        out_shardings=replicated)

  def _batch_metrics(self, state, batch):
    outputs = self.method.predict(state, batch)
    mask = batch['mask']
    rgb_true = to_rgb(batch['l'], batch['ab'], self.ab_scale)
    rgb_pred = to_rgb(batch['l'], outputs['ab'], self.ab_scale)
    rgb_gray = to_rgb(batch['l'], jnp.zeros_like(batch['ab']), self.ab_scale)
    per_image = {
        'psnr': metrics_lib.psnr(rgb_pred, rgb_true),
        'ssim': metrics_lib.ssim(rgb_pred, rgb_true),
        'entropy': metrics_lib.image_entropy(rgb_pred),
        'psnr_gray_baseline': metrics_lib.psnr(rgb_gray, rgb_true),
        'ab_l1': jnp.mean(jnp.abs(outputs['ab'] - batch['ab']),
                          axis=(1, 2, 3)) * self.ab_scale,
    }
    outputs_for_metrics = dict(per_image, mask=mask > 0)
    has_segmentation = 'segmentation' in outputs and 'segmentation' in batch
    if has_segmentation:
      outputs_for_metrics['confusion'] = metrics_lib.confusion_matrix(
          batch['segmentation'][..., 0],
          jnp.argmax(outputs['segmentation'], -1), self.num_classes,
          self.ignore_label, weights=mask[:, None, None])
    collection = metrics_lib.averages(per_image, miou=has_segmentation)
    return collection.single_from_model_output(**outputs_for_metrics)

  def _batches(self):
    """(index, global batch) over the split; the last one padded + masked."""
    for index, local in enumerate(pipeline.create_loader(self.spec)):
      if self.max_batches is not None and index >= self.max_batches:
        return
      local = pad_batch(local, self.local_batch)
      yield index, {k: pipeline.make_global_array(self.mesh, v)
                    for k, v in local.items()}

  def _reduce(self, batch_metrics):
    """Merges the clu collections `batch_metrics(index, batch)` over the
    split; returns them and the first batch (for summaries)."""
    totals, first_batch = None, None
    for index, batch in self._batches():
      metrics = jax.device_get(batch_metrics(index, batch))
      totals = metrics if totals is None else totals.merge(metrics)
      if first_batch is None:
        first_batch = batch
    if totals is None:
      raise ValueError(f'evaluation split {self.spec.split!r} is empty')
    return totals, first_batch

  def evaluate(self, state, writer=None, step: Optional[int] = None,
               samples_dir: Optional[str] = None) -> Dict[str, Any]:
    totals, first_batch = self._reduce(
        lambda index, batch: self._metrics(state, batch))
    results = {k: float(v) for k, v in totals.compute().items()}
    results['num_images'] = int(totals.psnr.count)
    if writer is not None and step is not None:
      writer.write_scalars(step, {f'eval/{k}': v for k, v in results.items()})
      grid = self.summary_grid(state, first_batch)
      writer.write_images(step, {'eval/gray_pred_true_seg': grid[None]})
      if jax.process_index() == 0 and samples_dir:
        os.makedirs(samples_dir, exist_ok=True)
        Image.fromarray(grid).save(
            os.path.join(samples_dir, f'step_{step:08d}.png'))
    return results

  def sample_diversity(self, state, num_samples: int = 2,
                       seed: int = 0) -> Dict[str, float]:
    """Paper 004 section 4.5: SSIM between samples of the same input.

    For each image, `num_samples` colorizations are drawn and the SSIM of
    every pair (RGB, full resolution) is averaged; lower = more diverse.
    """
    if not hasattr(self.method, 'sample'):
      raise ValueError(f'{self.config.method} does not sample')
    pairs = [(a, b) for a in range(num_samples)
             for b in range(a + 1, num_samples)]

    def batch_ssim(state, batch, rng):
      ab, _ = self.method.sample(state, batch['gray'], rng, num_samples)
      n, size = batch['gray'].shape[0], batch['gray'].shape[1]
      rgb = [to_rgb(batch['l'], jax.image.resize(
          ab[:, k], (n, size, size, 2), 'bilinear'), self.ab_scale)
             for k in range(num_samples)]
      values = jnp.mean(jnp.stack([metrics_lib.ssim(rgb[a], rgb[b])
                                   for a, b in pairs]), axis=0)
      return metrics_lib.averages(['diversity_ssim']).single_from_model_output(
          diversity_ssim=values, mask=batch['mask'] > 0)

    fn = jax.jit(batch_ssim,
                 out_shardings=NamedSharding(self.mesh, P()))
    totals, _ = self._reduce(lambda index, batch: fn(
        state, batch, jax.random.fold_in(jax.random.PRNGKey(seed), index)))
    return {'diversity_ssim': float(totals.compute()['diversity_ssim']),
            'diversity_num_samples': num_samples}

  def summary_grid(self, state, batch) -> np.ndarray:
    """Rows of: gray input | prediction | ground truth | predicted labels."""
    outputs, inputs = jax.device_get(self._predict(state, batch))
    count = min(self.config.get('num_summary_images', 4),
                int(np.sum(inputs['mask'])))
    lightness = inputs['l'][:count]
    ab_true = inputs['ab'][:count]
    ab_pred = np.asarray(outputs['ab'])[:count]
    columns = [
        np.asarray(to_rgb(lightness, np.zeros_like(ab_true), self.ab_scale)),
        np.asarray(to_rgb(lightness, ab_pred, self.ab_scale)),
        np.asarray(to_rgb(lightness, ab_true, self.ab_scale)),
    ]
    columns = [np.rint(c * 255).astype(np.uint8) for c in columns]
    if 'segmentation' in outputs:
      labels = np.argmax(np.asarray(outputs['segmentation'])[:count], -1)
      columns.append(PALETTE[labels])
    return np.concatenate([np.concatenate(list(row), axis=1)
                           for row in zip(*columns)], axis=0)
