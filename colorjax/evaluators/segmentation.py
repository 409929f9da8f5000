"""Mean IoU of a segmentation output against the label map.

Confusion matrices are summed over the split (clu `MeanIoU`), the dataset's
ignore label excluded; pixel accuracy comes from the same matrix.
"""

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import metrics as metrics_lib
from colorjax.evaluators import base


class SegmentationEvaluator(base.Evaluator):
  needs_keys = ('segmentation',)
  needs_outputs = ('segmentation',)

  def batch_metrics(self, state, batch, outputs, rng, networks):
    del state, rng, networks
    labels = batch['segmentation'][..., 0]
    logits = outputs['segmentation']
    if logits.shape[1:3] != labels.shape[1:3]:
      logits = jax.image.resize(logits, labels.shape[:3] + logits.shape[3:],
                                'nearest')
    confusion = metrics_lib.confusion_matrix(
        labels, jnp.argmax(logits, -1), self.config.data.num_classes,
        self.config.data.get('ignore_label'),
        weights=batch['mask'][:, None, None])
    return metrics_lib.averages([], miou=True).single_from_model_output(
        confusion=confusion)

  def finish(self, writer=None, step=None, samples_dir=None):
    if self._totals is None:
      return {}
    confusion = np.asarray(self._totals.miou.confusion, np.float64)
    return {'miou': float(self._totals.miou.compute()),
            'pixel_accuracy': float(np.trace(confusion) /
                                    max(confusion.sum(), 1.0))}
