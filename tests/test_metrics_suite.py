"""Colourfulness and the Frechet distance against independent references."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from colorjax import metrics


def _colorfulness_reference(image_255, absolute):
  """Hasler & Suesstrunk 2003 M3, written out per image in float64."""
  r, g, b = (image_255[..., i].astype(np.float64) for i in range(3))
  rg, yb = r - g, 0.5 * (r + g) - b
  if absolute:
    rg, yb = np.abs(rg), np.abs(yb)
  return (np.sqrt(rg.std() ** 2 + yb.std() ** 2)
          + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


@pytest.mark.parametrize('absolute', [False, True])
def test_colorfulness_matches_the_formula(rng, absolute):
  images = rng.integers(0, 256, (3, 17, 23, 3))
  got = metrics.colorfulness(jnp.asarray(images / 255.0), absolute=absolute)
  expected = [_colorfulness_reference(im, absolute) for im in images]
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4)


def test_colorfulness_closed_forms_and_the_two_variants():
  gray = np.full((1, 8, 8, 3), 0.4)
  red = np.zeros((1, 8, 8, 3))
  red[..., 0] = 1.0
  assert float(metrics.colorfulness(jnp.asarray(gray))[0]) == pytest.approx(
      0.0, abs=1e-3)
  # Flat pure red: rg = 255, yb = 127.5, no spread.
  assert float(metrics.colorfulness(jnp.asarray(red))[0]) == pytest.approx(
      0.3 * np.hypot(255.0, 127.5), rel=1e-5)
  # Half red, half green: the signed means cancel, the absolute ones do not.
  halves = np.zeros((1, 8, 8, 3))
  halves[:, :, :4, 0] = 1.0
  halves[:, :, 4:, 1] = 1.0
  signed = float(metrics.colorfulness(jnp.asarray(halves))[0])
  absolute = float(metrics.colorfulness(jnp.asarray(halves), True)[0])
  assert signed == pytest.approx(255.0 + 0.3 * 127.5, rel=1e-5)
  assert absolute == pytest.approx(0.3 * np.hypot(255.0, 127.5), rel=1e-5)


def _frechet_reference(a, b):
  """The pytorch-fid formula: scipy's general matrix square root."""
  mu1, mu2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1.dot(s2))
  covmean = np.real(covmean)
  return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2)
               - 2 * np.trace(covmean))


@pytest.mark.parametrize('n,d', [(200, 16), (64, 32)])
def test_frechet_distance_matches_the_sqrtm_formula(rng, n, d):
  mixing = rng.normal(size=(d, d))
  a = rng.normal(size=(n, d)) @ mixing
  b = rng.normal(size=(n + 7, d)) @ (mixing + 0.3 * rng.normal(size=(d, d)))
  b += 0.5
  assert metrics.frechet_distance(a, b) == pytest.approx(
      _frechet_reference(a, b), rel=1e-6)


def test_frechet_distance_of_a_set_with_itself_and_of_a_shift(rng):
  a = rng.normal(size=(300, 8))
  assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
  shift = np.arange(8.0)
  assert metrics.frechet_distance(a, a + shift) == pytest.approx(
      float(shift @ shift), rel=1e-8)
  with pytest.raises(ValueError, match='equal D'):
    metrics.frechet_distance(a, a[:, :4])
