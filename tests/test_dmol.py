"""Discretized mixture of logistics: a proper pmf, sampled faithfully."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from colorjax.losses import dmol

K = 3
GRID = jnp.linspace(-1.0, 1.0, dmol.NUM_LEVELS)


def _outputs(rng, batch=4, scale_range=(-4.0, 0.5)):
  logits = rng.normal(0, 1, (batch, K))
  means = rng.uniform(-1.2, 1.2, (batch, 2 * K))     # some beyond the edges
  log_scales = rng.uniform(*scale_range, (batch, 2 * K))
  coeff = rng.normal(0, 1, (batch, K))
  return jnp.asarray(np.concatenate([logits, means, log_scales, coeff], -1),
                     jnp.float32)


def _pmf(outputs):
  """[batch, 256 (a), 256 (b)] probabilities from dmol_log_prob."""
  a, b = jnp.meshgrid(GRID, GRID, indexing='ij')
  ab = jnp.stack([a, b], -1)                      # [256, 256, 2]
  log_p = jax.vmap(lambda o: dmol.dmol_log_prob(
      jnp.broadcast_to(o, (256, 256, o.shape[-1])), ab, K))(outputs)
  return np.exp(np.asarray(log_p, np.float64))


def test_probabilities_of_all_bins_sum_to_one(rng):
  for scales in ((-4.0, 0.5), (-7.0, -5.0), (1.0, 3.0)):
    probs = _pmf(_outputs(rng, scale_range=scales))
    np.testing.assert_allclose(probs.sum(axis=(1, 2)), 1.0, atol=2e-4)


def test_log_prob_is_finite_with_finite_gradients_at_edges(rng):
  outputs = _outputs(rng, batch=6, scale_range=(-7.0, 3.0))
  ab = jnp.array([[-1.0, 1.0], [1.0, -1.0], [0.0, 0.0], [-1.0, -1.0],
                  [1.0, 1.0], [0.5, -0.99]])
  value, grads = jax.value_and_grad(
      lambda o: dmol.dmol_log_prob(o, ab, K).sum())(outputs)
  assert np.isfinite(float(value))
  assert np.all(np.isfinite(np.asarray(grads)))


def test_samples_follow_the_pmf(rng):
  outputs = _outputs(rng, batch=1, scale_range=(-2.5, -1.5))
  pmf = _pmf(outputs)[0]
  n = 200_000
  samples = dmol.dmol_sample(jax.random.PRNGKey(0),
                             jnp.broadcast_to(outputs, (n, outputs.shape[-1])),
                             K)
  index = np.asarray(jnp.round((samples + 1.0) * 127.5)).astype(int)
  # Samples lie on the grid.
  np.testing.assert_allclose(np.asarray(samples),
                             index / 127.5 - 1.0, atol=1e-6)
  # Marginals of a and of b, binned by 8 levels (chi-square-like), and the
  # binned joint.
  _assert_samples_follow(index, pmf, atol=4e-3)


def test_lower_temperature_gives_lower_entropy_samples(rng):
  outputs = _outputs(rng, batch=1, scale_range=(-2.0, -1.0))
  wide = jnp.broadcast_to(outputs, (20000, outputs.shape[-1]))

  def entropy(temperature):
    samples = dmol.dmol_sample(jax.random.PRNGKey(1), wide, K,
                               temperature=temperature)
    index = np.asarray(jnp.round((samples + 1.0) * 127.5)).astype(int)
    _, counts = np.unique(index[:, 0] * 256 + index[:, 1],
                          return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())

  assert entropy(0.1) < entropy(0.5) < entropy(1.0)


# --- an independent reference -------------------------------------------
# Written from the module's documented layout and PixelCNN++ (Salimans et al.
# 2017): outputs = [logits | mean_a | mean_b | log_s_a | log_s_b | coeff];
# the bin of a level x is [x - 1/255, x + 1/255], the edge bins x = -1 and
# x = 1 take the tails; b's mean is mean_b + tanh(coeff) * a. float64, no
# shared code with colorjax.losses.dmol.

LEVELS = np.linspace(-1.0, 1.0, 256)


def _mixture(logits, mean_a, mean_b, log_s_a, log_s_b, coeff):
  parts = [logits, mean_a, mean_b, log_s_a, log_s_b, coeff]
  return np.concatenate([np.asarray(p, np.float64) for p in parts])


def _bin_probs(x, mean, scale):
  """P(bin of x) of a discretized logistic; x on the grid (any shape)."""
  hi = (x + 1.0 / 255 - mean) / scale
  lo = (x - 1.0 / 255 - mean) / scale
  # expit(hi) - expit(lo), in the tail where it does not cancel in float64.
  interior = np.where(lo > 0, special.expit(-lo) - special.expit(-hi),
                      special.expit(hi) - special.expit(lo))
  return np.where(x <= -1.0, special.expit(hi),
                  np.where(x >= 1.0, special.expit(-lo), interior))


def _reference_pmf(outputs, temperature=1.0):
  """p(a, b) [256 (a), 256 (b)] of a hand-built mixture; `temperature`
  divides the logits and multiplies the scales (the documented semantics)."""
  k = len(outputs) // 6
  logits, mean_a, mean_b, log_s_a, log_s_b, coeff = np.split(outputs, 6)
  weights = special.softmax(logits / temperature)
  a = LEVELS[:, None, None]
  b = LEVELS[None, :, None]
  p_a = _bin_probs(a, mean_a, np.exp(log_s_a) * temperature)
  p_b = _bin_probs(b, mean_b + np.tanh(coeff) * a,
                   np.exp(log_s_b) * temperature)
  assert p_a.shape[-1] == k
  return np.sum(weights * p_a * p_b, axis=-1)


def _dmol_pmf(outputs):
  a, b = np.meshgrid(LEVELS, LEVELS, indexing='ij')
  log_p = dmol.dmol_log_prob(jnp.asarray(outputs, jnp.float32)[None, None],
                             jnp.asarray(np.stack([a, b], -1), jnp.float32),
                             len(outputs) // 6)
  return np.asarray(log_p, np.float64)


HAND_BUILT = {
    # K = 1: b leans on a; a's mean sits past the +1 edge (mass in its bin).
    'k1': _mixture([0.0], [1.02], [-0.3], [-3.0], [-2.2], [0.7]),
    # K = 2: one component hugging -1 (edge bin of a), one inside and wide
    # in a, so that b's dependence on a (a negative coefficient) shows; b's
    # mean of the first lies beyond -1 (edge bin of b).
    'k2': _mixture([0.4, -0.9], [-0.97, 0.35], [-0.9, 0.2], [-2.5, -2.0],
                   [-1.8, -3.5], [1.2, -0.6]),
}


@pytest.mark.parametrize('name', sorted(HAND_BUILT))
def test_log_prob_equals_logistic_cdf_differences(name):
  outputs = HAND_BUILT[name]
  reference = _reference_pmf(outputs)
  np.testing.assert_allclose(reference.sum(), 1.0, atol=1e-9)
  log_p = _dmol_pmf(outputs)
  np.testing.assert_allclose(np.exp(log_p), reference, atol=1e-6, rtol=0)
  # In log space wherever the reference is accurate (float64 cancellation
  # leaves about 1e-16 absolute), tails included.
  meaningful = reference > 1e-12
  assert meaningful.mean() > 0.05
  np.testing.assert_allclose(log_p[meaningful], np.log(reference[meaningful]),
                             atol=2e-3, rtol=1e-4)
  # The edge bins (rows and columns of a or b = -1, +1) explicitly.
  for index in (0, 1, 254, 255):
    np.testing.assert_allclose(np.exp(log_p[index]), reference[index],
                               atol=1e-6)
    np.testing.assert_allclose(np.exp(log_p[:, index]), reference[:, index],
                               atol=1e-6)
  # The mixtures put real mass in the edge bins (or the check is empty).
  assert reference[255].sum() > 0.05 if name == 'k1' else (
      reference[0].sum() > 0.05 and reference[:, 0].sum() > 0.05)


def _sample_indices(outputs, n, temperature=None, seed=0):
  tiled = jnp.broadcast_to(jnp.asarray(outputs, jnp.float32),
                           (n, len(outputs)))
  key = jax.random.PRNGKey(seed)
  samples = (dmol.dmol_sample(key, tiled, len(outputs) // 6) if temperature
             is None else dmol.dmol_sample(key, tiled, len(outputs) // 6,
                                           temperature=temperature))
  return np.asarray(samples), np.asarray(
      jnp.round((samples + 1.0) * 127.5)).astype(int)


def _assert_samples_follow(index, pmf, atol=5e-3):
  n = len(index)
  for axis in (0, 1):
    counts = np.bincount(index[:, axis] // 8, minlength=32) / n
    expected = pmf.sum(axis=1 - axis).reshape(32, 8).sum(-1)
    np.testing.assert_allclose(counts, expected, atol=atol)
  joint = np.zeros((32, 32))
  np.add.at(joint, (index[:, 0] // 8, index[:, 1] // 8), 1.0 / n)
  assert np.abs(joint - pmf.reshape(32, 8, 32, 8).sum(axis=(1, 3))).sum() < 0.03


def test_temperature_semantics():
  """dmol_sample's documented temperature T: logits / T and scales * T.

  T = 1 is the model's own distribution (the default, plain sampling); the
  samples at T follow the reference pmf with logits / T and scales * T; as
  T -> 0 every sample is the grid point nearest the means of the most likely
  component (b's mean taken at that a): the most conservative colour.
  """
  outputs = HAND_BUILT['k2']
  n = 100_000
  plain, plain_index = _sample_indices(outputs, n)
  one, _ = _sample_indices(outputs, n, temperature=1.0)
  np.testing.assert_array_equal(one, plain)
  _assert_samples_follow(plain_index, _reference_pmf(outputs))
  _, cooled = _sample_indices(outputs, n, temperature=0.5, seed=1)
  _assert_samples_follow(cooled, _reference_pmf(outputs, temperature=0.5))
  # ... which differs from the model's distribution by more than the noise.
  assert np.abs(np.bincount(cooled[:, 0] // 8, minlength=32) / n -
                np.bincount(plain_index[:, 0] // 8, minlength=32) / n
                ).max() > 0.05
  frozen, _ = _sample_indices(outputs, 1000, temperature=1e-6, seed=2)
  logits, mean_a, mean_b, _, _, coeff = np.split(outputs, 6)
  top = int(np.argmax(logits))
  a = LEVELS[np.argmin(np.abs(LEVELS - mean_a[top]))]
  b = LEVELS[np.argmin(np.abs(LEVELS - (mean_b[top] + np.tanh(coeff[top]) *
                                        a)))]
  np.testing.assert_allclose(frozen, np.broadcast_to([a, b], frozen.shape),
                             atol=1e-6)


def test_uniform_model_gives_eight_bits_per_dim(rng):
  """One component per (a, b) grid point, equal logits, narrowest scale: the
  pmf is uniform over the 256 x 256 levels, i.e. log2(256) = 8 bits/dim."""
  a, b = np.meshgrid(LEVELS, LEVELS, indexing='ij')
  k = 256 * 256
  outputs = np.concatenate([np.zeros(k), a.ravel(), b.ravel(),
                            np.full(2 * k, dmol.MIN_LOG_SCALE), np.zeros(k)])
  points = np.concatenate([
      [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0], [0.0, 0.0]],
      LEVELS[rng.integers(0, 256, (59, 2))]])
  log_p = dmol.dmol_log_prob(jnp.asarray(outputs, jnp.float32)[None],
                             jnp.asarray(points, jnp.float32), k)
  np.testing.assert_allclose(np.asarray(log_p), -2 * np.log(256.0), atol=1e-4)
  bits = dmol.bits_per_dim(jnp.sum(log_p), 2 * len(points))
  np.testing.assert_allclose(float(bits), 8.0, atol=1e-4)
