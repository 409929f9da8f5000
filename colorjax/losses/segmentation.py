"""Pixel-wise segmentation losses."""

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
