"""The 313-bin quantised ab space of Zhang et al. 2016 (papers 001 and 003).

`ab_gamut_bins` returns the standard table shipped as package data (it is not
derivable from the sRGB gamut alone, so it is never recomputed). Soft
encoding, annealed-mean decoding (paper 001 eq. 14-15) and class rebalancing
(paper 001 eq. 11-12) are jit-able jnp functions; the empirical prior is
accumulated on the host in numpy, streaming over batches.
"""

import functools
from typing import Iterable, Optional

import importlib_resources
import jax
import jax.numpy as jnp
import numpy as np

from colorjax import choices

NUM_AB_BINS = 313
AB_GRID_STEP = 10.0


@functools.lru_cache(maxsize=None)
def _load_bins() -> np.ndarray:
  text = (importlib_resources.files('colorjax.color') /
          'ab_bins_313.csv').read_text()
  rows = [line for line in text.splitlines()
          if line and not line.startswith('#') and not line.startswith('a,')]
  bins = np.array([[float(v) for v in row.split(',')] for row in rows],
                  dtype=np.float32)
  if bins.shape != (NUM_AB_BINS, 2):
    raise ValueError(f'ab_bins_313.csv holds {bins.shape}, expected (313, 2)')
  bins.setflags(write=False)
  return bins


def ab_gamut_bins() -> np.ndarray:
  """The 313 (a, b) bin centres, float32 [313, 2], in the standard order."""
  return _load_bins()


def _squared_distances(ab, centres):
  ab = jnp.asarray(ab, jnp.float32)
  centres = jnp.asarray(centres, jnp.float32)
  # |x|^2 - 2 x.c + |c|^2 is cheaper but cancels badly; the direct form on
  # [..., Q, 2] is exact and small enough for per-pixel use.
  diff = ab[..., None, :] - centres
  return jnp.sum(diff * diff, axis=-1)


def soft_encode_sparse(ab, k: int = 5, sigma: float = 5.0):
  """Indices [..., k] (int32) and weights [..., k] of the k nearest bins.

  Weights are a Gaussian of the distance to each bin (std `sigma` in ab
  units), normalised to sum to one. The sparse form is what a data pipeline
  should ship: 10 numbers per pixel instead of 313.
  """
  d2 = _squared_distances(ab, ab_gamut_bins())
  neg_d2, indices = jax.lax.top_k(-d2, k)
  # Subtract the nearest distance before exponentiating: exact after
  # normalisation and no underflow far outside the gamut.
  logits = (neg_d2 - neg_d2[..., :1]) / (2.0 * sigma * sigma)
  weights = jax.nn.softmax(logits, axis=-1)
  return indices.astype(jnp.int32), weights


def densify(indices, weights, num_bins: int = NUM_AB_BINS):
  """Sparse (indices, weights) -> dense [..., num_bins] distribution."""
  one_hot = jax.nn.one_hot(indices, num_bins, dtype=weights.dtype)
  return jnp.einsum('...k,...kq->...q', weights, one_hot)


def soft_encode(ab, k: int = 5, sigma: float = 5.0):
  """Dense soft encoding [..., 313] of ab values [..., 2] (paper 001, k=5)."""
  return densify(*soft_encode_sparse(ab, k, sigma))


def nearest_bin(ab):
  """Index of the nearest bin centre (the hard assignment used for priors)."""
  return jnp.argmin(_squared_distances(ab, ab_gamut_bins()), axis=-1)


def annealed_mean_from_logits(logits, temperature: float = 0.38):
  """Eq. 14-15 from logits: softmax(logits / T) . bin centres."""
  probs = jax.nn.softmax(jnp.asarray(logits, jnp.float32) / temperature, -1)
  return probs @ jnp.asarray(ab_gamut_bins())


DECODINGS = ('annealed_mean', 'mode', 'mean')


def decode_ab_logits(logits, decode: str = 'annealed_mean',
                     temperature: float = 0.38):
  """313-bin logits [..., 313] -> ab [..., 2] in Lab units: the annealed
  mean (eq. 14-15), the mean (T = 1) or the mode (eq. 13)."""
  if decode == 'annealed_mean':
    return annealed_mean_from_logits(logits, temperature)
  if decode == 'mean':
    return annealed_mean_from_logits(logits, 1.0)
  if decode == 'mode':
    return jnp.asarray(ab_gamut_bins())[jnp.argmax(logits, -1)]
  choices.check('decode', decode, DECODINGS)
  raise AssertionError(decode)   # every choice is handled above


def annealed_mean(probs, temperature: float = 0.38):
  """Paper 001 eq. 14-15: ab [..., 2] from a distribution over 313 bins.

  T = 1 gives the mean of the distribution, T -> 0 its mode; 0.38 as Zhang.
  """
  log_probs = jnp.log(jnp.maximum(jnp.asarray(probs, jnp.float32), 1e-30))
  return annealed_mean_from_logits(log_probs, temperature)


def smooth_prior(prior, sigma: float = 5.0):
  """Gaussian smoothing of a distribution over the bins (eq. 11, P_smooth).

  Smoothing on the 2-D ab grid restricted to the in-gamut bins, i.e. a
  Gaussian kernel (std `sigma` in ab units) between bin centres, then
  renormalised. sigma <= 0 returns the normalised prior unchanged.
  """
  prior = np.asarray(prior, np.float64)
  prior = prior / prior.sum()
  if sigma <= 0:
    return prior
  centres = ab_gamut_bins().astype(np.float64)
  d2 = np.sum((centres[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
  kernel = np.exp(-d2 / (2.0 * sigma * sigma))
  smoothed = kernel @ prior
  return smoothed / smoothed.sum()


def rebalance_weights(prior, lam: float = 0.5, sigma: float = 5.0):
  """Paper 001 eq. 11-12: w = ((1-lam) P_smooth + lam/Q)^-1, E_P[w] = 1.

  Returns float32 [313]; the expectation is taken under P_smooth as in the
  paper (it equals the expectation under the raw prior when sigma = 0).
  """
  smoothed = smooth_prior(prior, sigma)
  num_bins = smoothed.shape[0]
  weights = 1.0 / ((1.0 - lam) * smoothed + lam / num_bins)
  weights = weights / np.sum(smoothed * weights)
  return weights.astype(np.float32)


class ABPriorAccumulator:
  """Streaming histogram of nearest-bin assignments (eq. 11, N_train,q).

  Feed it batches of ab values (and optionally a validity mask) from the
  input pipeline; the jitted bincount runs per batch, so memory stays flat.
  """

  def __init__(self):
    self.counts = np.zeros(NUM_AB_BINS, np.int64)
    self._count = jax.jit(self._batch_counts)

  @staticmethod
  def _batch_counts(ab, mask):
    bins = nearest_bin(ab.reshape(-1, 2))
    # Masked pixels go to an overflow bin that is dropped: integer-exact.
    bins = jnp.where(mask.reshape(-1), bins, NUM_AB_BINS)
    return jnp.bincount(bins, length=NUM_AB_BINS + 1)[:NUM_AB_BINS]

  def update(self, ab, mask=None):
    ab = np.asarray(ab, np.float32)
    if mask is None:
      mask = np.ones(ab.shape[:-1], bool)
    self.counts += np.asarray(self._count(ab, mask), np.int64)
    return self

  def prior(self) -> np.ndarray:
    total = self.counts.sum()
    if total == 0:
      raise ValueError('no pixels accumulated: the prior is undefined')
    return self.counts / total


def empirical_ab_prior(ab_batches: Iterable, max_batches: Optional[int] = None,
                       key: str = 'ab') -> np.ndarray:
  """P(q) over a stream of batches (arrays [..., 2] or dicts holding `key`).

  Typically fed from `colorjax.data.pipeline.create_loader(...)`; see
  `colorjax.data.prior.compute_split_prior` for the dataset-split wrapper.
  """
  accumulator = ABPriorAccumulator()
  for i, batch in enumerate(ab_batches):
    if max_batches is not None and i >= max_batches:
      break
    ab = batch[key] if isinstance(batch, dict) else batch
    accumulator.update(np.asarray(ab))
  return accumulator.prior()


def soft_encode_numpy(ab: np.ndarray, k: int = 5, sigma: float = 5.0):
  """numpy twin of `soft_encode_sparse` for the host pipeline."""
  centres = ab_gamut_bins()
  flat = ab.reshape(-1, 2).astype(np.float32)
  d2 = np.sum((flat[:, None, :] - centres[None]) ** 2, axis=-1)
  indices = np.argpartition(d2, k - 1, axis=-1)[:, :k]
  nearest = np.take_along_axis(d2, indices, axis=-1)
  order = np.argsort(nearest, axis=-1)      # nearest first, as top_k
  indices = np.take_along_axis(indices, order, axis=-1)
  nearest = np.take_along_axis(nearest, order, axis=-1)
  logits = -(nearest - nearest[:, :1]) / (2.0 * sigma * sigma)
  weights = np.exp(logits)
  weights /= weights.sum(-1, keepdims=True)
  shape = ab.shape[:-1] + (k,)
  return indices.astype(np.int32).reshape(shape), weights.astype(
      np.float32).reshape(shape)
