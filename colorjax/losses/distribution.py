"""Losses on predicted distributions: the 313-bin colour classification
(paper 003 eq. 3, paper 001 eq. 17) and soft-label cross-entropy over image
classes (003 eq. 1-2, 001 eq. 20). Computed in float32."""

from typing import Optional

import jax
import jax.numpy as jnp
import optax


def binned_colour_loss(logits, bins, bin_weights,
                       rebalance: Optional[jax.Array]):
  """Rebalanced cross-entropy against (soft-)encoded ab targets.

  -mean_p w(q*_p) sum_q Z(p, q) log softmax(logits)(p, q), with Z the
  sparse target (bins / bin_weights [..., k], nearest bin first: k = 1 is a
  one-hot, k = 5 Zhang's soft encoding) and w the class-rebalancing weight
  [Q] of the nearest bin q* (None: no rebalancing). Mean over pixels and
  images.
  """
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), -1)
  picked = jnp.take_along_axis(log_probs, bins.astype(jnp.int32), -1)
  nll = -jnp.sum(bin_weights.astype(jnp.float32) * picked, -1)
  if rebalance is not None:
    nll = nll * rebalance[bins[..., 0].astype(jnp.int32)]
  return jnp.mean(nll)


def label_cross_entropy(logits, targets, kind: str = 'softmax'):
  """Cross-entropy of image-level logits [N, C] against targets [N, C]
  (multi-hot tags or a soft label): (loss, images counted).

  'softmax': -sum_c t_c log softmax(z)_c with t normalised to sum 1; images
  whose targets are all zero are left out. 'sigmoid': per-class binary
  cross-entropy summed over classes, the multi-label form.
  """
  logits = logits.astype(jnp.float32)
  targets = targets.astype(jnp.float32)
  if kind == 'softmax':
    count = jnp.sum(targets, -1)
    has = (count > 0).astype(jnp.float32)
    target = targets / jnp.maximum(count, 1e-12)[:, None]
    nll = -jnp.sum(target * jax.nn.log_softmax(logits, -1), -1)
    return jnp.sum(nll * has) / jnp.maximum(jnp.sum(has), 1.0), jnp.sum(has)
  if kind == 'sigmoid':
    nll = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, targets), -1)
    return jnp.mean(nll), jnp.asarray(targets.shape[0], jnp.float32)
  raise ValueError(f"loss.classification must be 'softmax' or 'sigmoid', "
                   f'not {kind!r}')
