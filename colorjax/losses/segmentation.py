"""Pixel-wise segmentation losses (and the train-time pixel accuracy)."""

from typing import Optional

import jax
import jax.numpy as jnp


def cross_entropy(logits, labels, ignore_label: Optional[int] = None,
                  weights=None):
  """Mean pixel cross-entropy (paper 000 eq. 7) over non-ignored pixels.

  logits [..., C] (any dtype; computed in float32), labels [...] or [..., 1].
  `weights` [N] masks padded examples of an evaluation batch.
  """
  logits = logits.astype(jnp.float32)
  labels = labels.reshape(logits.shape[:-1]).astype(jnp.int32)
  num_classes = logits.shape[-1]
  valid = (labels >= 0) & (labels < num_classes)
  if ignore_label is not None:
    valid &= labels != ignore_label
  if weights is not None:
    valid &= weights.reshape((-1,) + (1,) * (labels.ndim - 1)) > 0
  safe = jnp.where(valid, labels, 0)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.maximum(valid.sum(), 1)


def pixel_accuracy(logits, labels, ignore_label: Optional[int] = None):
  """Share of labelled pixels (a class, not `ignore_label`) whose argmax is
  their label; labels [...] or [..., 1]."""
  labels = labels.reshape(logits.shape[:-1]).astype(jnp.int32)
  valid = (labels >= 0) & (labels < logits.shape[-1])
  if ignore_label is not None:
    valid &= labels != ignore_label
  hits = (jnp.argmax(logits, -1) == labels) & valid
  return hits.sum() / jnp.maximum(valid.sum(), 1)


def soft_dice(logits, labels, ignore_label: Optional[int] = None,
              smooth: float = 1.0, per_image: bool = True):
  """Softmax soft-dice loss (paper 001 eq. 19), averaged over classes.

  For class c: 1 - (2 sum_p Y_c(p) P_c(p) + s) / (sum_p Y_c(p)^2 +
  sum_p P_c(p)^2 + s), with Y the one-hot labels, P = softmax(logits),
  sums over an image's pixels (`per_image`, the paper's sum over p) or the
  whole batch; ignored pixels are left out of both sums. The smoothing s
  (not in the paper) makes a class absent from both the labels and the
  prediction score 0 instead of 0/0. Mean over classes, then images.
  logits [N, H, W, C], labels [N, H, W] or [N, H, W, 1].
  """
  logits = logits.astype(jnp.float32)
  num_classes = logits.shape[-1]
  labels = labels.reshape(logits.shape[:-1]).astype(jnp.int32)
  valid = (labels >= 0) & (labels < num_classes)
  if ignore_label is not None:
    valid &= labels != ignore_label
  valid = valid.astype(jnp.float32)[..., None]
  probs = jax.nn.softmax(logits, axis=-1) * valid
  onehot = jax.nn.one_hot(jnp.where(valid[..., 0] > 0, labels, 0),
                          num_classes) * valid
  axes = (1, 2) if per_image else (0, 1, 2)
  intersection = jnp.sum(onehot * probs, axis=axes)
  denominator = (jnp.sum(onehot * onehot, axis=axes)
                 + jnp.sum(probs * probs, axis=axes))
  dice = (2.0 * intersection + smooth) / (denominator + smooth)
  return 1.0 - jnp.mean(dice)
