"""Discretized mixture of logistics: a proper pmf, sampled faithfully."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
  # Compare marginals of a and of b, binned by 8 levels (chi-square-like).
  for axis in (0, 1):
    counts = np.bincount(index[:, axis] // 8, minlength=32) / n
    expected = pmf.sum(axis=1 - axis).reshape(32, 8).sum(-1)
    np.testing.assert_allclose(counts, expected, atol=4e-3)
  joint = np.zeros((32, 32))
  np.add.at(joint, (index[:, 0] // 8, index[:, 1] // 8), 1.0 / n)
  expected_joint = pmf.reshape(32, 8, 32, 8).sum(axis=(1, 3))
  assert np.abs(joint - expected_joint).sum() < 0.03


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
