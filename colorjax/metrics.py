"""Evaluation metrics of the papers, as jit-able per-image functions.

Colourfulness (Hasler & Suesstrunk 2003, and the |rg|, |yb| variant) and
the Frechet distance behind FID are here too.

PSNR and SSIM on RGB in [0, 1] (paper 000 section V; SSIM with an 11x11
Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, as Wang et al. and
scikit-image's `gaussian_weights=True`), image entropy (Shannon entropy in
bits of each 8-bit RGB channel's histogram, averaged over channels) and the
confusion matrix behind mean IoU. Each is checked against scikit-image.

The trainer and the evaluator reduce them with clu metrics (`averages`,
`MeanIoU`): the per-batch reduction runs inside the jitted step and batches
merge on the host, so a padded last batch counts only its real images.
"""

from typing import Iterable, Optional

from clu import metrics as clu_metrics
import flax
import jax
import jax.numpy as jnp
import numpy as np


def psnr(prediction, target, data_range: float = 1.0):
  """Per-image PSNR in dB over [N, H, W, C]."""
  mse = jnp.mean((prediction.astype(jnp.float32) -
                  target.astype(jnp.float32)) ** 2, axis=(1, 2, 3))
  return 10.0 * jnp.log10(data_range ** 2 / jnp.maximum(mse, 1e-12))


def _gaussian_window(size: int = 11, sigma: float = 1.5):
  coords = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
  g = jnp.exp(-coords ** 2 / (2.0 * sigma ** 2))
  return g / g.sum()


def _filter_valid(x, window):
  """Separable 'valid' filtering of [N, H, W, C] with a 1-D window."""
  size = window.shape[0]
  channels = x.shape[-1]
  kernel_h = jnp.tile(window.reshape(size, 1, 1, 1), (1, 1, 1, channels))
  kernel_w = jnp.tile(window.reshape(1, size, 1, 1), (1, 1, 1, channels))
  dims = ('NHWC', 'HWIO', 'NHWC')
  x = jax.lax.conv_general_dilated(x, kernel_h, (1, 1), 'VALID',
                                   dimension_numbers=dims,
                                   feature_group_count=channels)
  return jax.lax.conv_general_dilated(x, kernel_w, (1, 1), 'VALID',
                                      dimension_numbers=dims,
                                      feature_group_count=channels)


def ssim(prediction, target, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5):
  """Per-image SSIM over [N, H, W, C], mean over channels and positions."""
  x = prediction.astype(jnp.float32)
  y = target.astype(jnp.float32)
  window = _gaussian_window(window_size, sigma)
  c1 = (0.01 * data_range) ** 2
  c2 = (0.03 * data_range) ** 2
  mu_x = _filter_valid(x, window)
  mu_y = _filter_valid(y, window)
  sigma_xx = _filter_valid(x * x, window) - mu_x ** 2
  sigma_yy = _filter_valid(y * y, window) - mu_y ** 2
  sigma_xy = _filter_valid(x * y, window) - mu_x * mu_y
  ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / (
      (mu_x ** 2 + mu_y ** 2 + c1) * (sigma_xx + sigma_yy + c2))
  return jnp.mean(ssim_map, axis=(1, 2, 3))


def image_entropy(rgb):
  """Per-image entropy (bits) of the 256-level histogram, channel-averaged."""
  levels = jnp.clip(jnp.round(rgb * 255.0), 0, 255).astype(jnp.int32)
  n, h, w, c = levels.shape
  flat = levels.reshape(n, h * w, c).transpose(0, 2, 1).reshape(n * c, h * w)
  counts = jax.vmap(lambda v: jnp.bincount(v, length=256))(flat)
  p = counts / (h * w)
  entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log2(jnp.where(p > 0, p, 1.0)),
                               0.0), axis=-1)
  return entropy.reshape(n, c).mean(-1)


def colorfulness(rgb, absolute: bool = False):
  """Per-image colourfulness M3 of Hasler & Suesstrunk 2003 on RGB in [0, 1].

  rg = R - G, yb = (R + G) / 2 - B on the 0-255 scale of the paper;
  M3 = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
  `absolute=True` is the variant colorization papers (CT2, DDColor) report:
  the same with |rg| and |yb|, which changes the mean term (opposite hues no
  longer cancel) and the spreads.
  """
  rgb = rgb.astype(jnp.float32) * 255.0
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  rg = r - g
  yb = 0.5 * (r + g) - b
  if absolute:
    rg, yb = jnp.abs(rg), jnp.abs(yb)
  axes = (1, 2)
  spread = jnp.sqrt(jnp.var(rg, axes) + jnp.var(yb, axes))
  mean = jnp.sqrt(jnp.mean(rg, axes) ** 2 + jnp.mean(yb, axes) ** 2)
  return spread + 0.3 * mean


def frechet_distance(features_a, features_b) -> float:
  """Frechet distance between Gaussians fitted to two feature sets [N, D]
  (FID on Inception pool features): |mu_a - mu_b|^2 + tr(S_a + S_b -
  2 (S_a S_b)^(1/2)), in float64 on the host.

  tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of
  the symmetric PSD matrix S_a^(1/2) S_b S_a^(1/2) (same spectrum), so no
  general matrix square root with its complex round-off is needed.
  """
  a = np.asarray(features_a, np.float64)
  b = np.asarray(features_b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f'features must be [N, D] with equal D, got {a.shape} '
                     f'and {b.shape}')
  if min(len(a), len(b)) < 2:
    raise ValueError('need at least 2 feature vectors per set')
  mu_a, mu_b = a.mean(0), b.mean(0)
  sigma_a = np.cov(a, rowvar=False)
  sigma_b = np.cov(b, rowvar=False)
  values, vectors = np.linalg.eigh(sigma_a)
  root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
  middle = root_a @ sigma_b @ root_a
  trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(
      (middle + middle.T) / 2), 0, None)))
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a)
               + np.trace(sigma_b) - 2 * trace_sqrt)


def confusion_matrix(labels, predictions, num_classes: int,
                     ignore_label: Optional[int] = None, weights=None):
  """[num_classes, num_classes] counts, rows = ground truth.

  weights (broadcastable to labels) > 0 selects the pixels that count.
  """
  if weights is not None:
    weights = jnp.broadcast_to(weights, labels.shape).reshape(-1)
  labels = labels.reshape(-1).astype(jnp.int32)
  predictions = predictions.reshape(-1).astype(jnp.int32)
  valid = (labels >= 0) & (labels < num_classes)
  if ignore_label is not None:
    valid &= labels != ignore_label
  if weights is not None:
    valid &= weights > 0
  index = jnp.where(valid, labels * num_classes + predictions,
                    num_classes * num_classes)
  counts = jnp.bincount(index, length=num_classes * num_classes + 1)
  return counts[:-1].reshape(num_classes, num_classes)


def mean_iou(confusion) -> float:
  """Mean IoU over classes that occur (in labels or predictions)."""
  confusion = np.asarray(confusion, np.float64)
  intersection = np.diag(confusion)
  union = confusion.sum(0) + confusion.sum(1) - intersection
  present = union > 0
  return float(np.mean(intersection[present] / union[present])) if \
      present.any() else float('nan')


@flax.struct.dataclass
class MeanIoU(clu_metrics.Metric):
  """clu metric summing confusion matrices; computes `mean_iou`.

  Built from a batch's `confusion` output (see `confusion_matrix`), because
  the class count and the ignore label belong to the dataset, not the metric.
  """

  confusion: jnp.ndarray

  @classmethod
  def from_model_output(cls, confusion, **_) -> 'MeanIoU':
    return cls(confusion=jnp.asarray(confusion, jnp.int32))

  def merge(self, other: 'MeanIoU') -> 'MeanIoU':
    return type(self)(confusion=self.confusion + other.confusion)

  def compute(self) -> float:
    return mean_iou(self.confusion)


def averages(names: Iterable[str], miou: bool = False):
  """A clu `Collection` class averaging each named output.

  Each output is a scalar or a per-example vector; a `mask` output (per
  example) excludes padding. With `miou`, a `miou` entry reduces the
  `confusion` output.
  """
  fields = {name: clu_metrics.Average.from_output(name) for name in names}
  if miou:
    fields['miou'] = MeanIoU
  return clu_metrics.Collection.create(**fields)
