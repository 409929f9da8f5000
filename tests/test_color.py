"""Colour science against scikit-image and colour-science."""

import hashlib
import os

import colour
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import color as skcolor
from skimage import data as skdata

from colorjax import color

REAL_IMAGES = ('astronaut', 'coffee', 'chelsea', 'rocket')


def _real(name):
  return getattr(skdata, name)().astype(np.float64) / 255.0


@pytest.mark.parametrize('name', REAL_IMAGES)
def test_rgb_to_lab_matches_skimage_on_photos(name):
  image = _real(name)
  expected = skcolor.rgb2lab(image)
  np.testing.assert_allclose(np.asarray(color.rgb_to_lab(image)), expected,
                             atol=1e-3)
  np.testing.assert_allclose(color.rgb_to_lab_numpy(image), expected,
                             atol=1e-3)


@pytest.mark.parametrize('name', REAL_IMAGES)
def test_lab_to_rgb_matches_skimage_on_photos(name):
  lab = skcolor.rgb2lab(_real(name))
  expected = skcolor.lab2rgb(lab)
  np.testing.assert_allclose(np.asarray(color.lab_to_rgb(lab)), expected,
                             atol=1e-4)


def test_random_colours_roundtrip_and_match_skimage(rng):
  rgb = rng.uniform(0, 1, (5000, 3))
  lab = np.asarray(jax.jit(color.rgb_to_lab)(rgb.astype(np.float32)))
  np.testing.assert_allclose(lab, skcolor.rgb2lab(rgb[None])[0], atol=1e-3)
  np.testing.assert_allclose(np.asarray(color.lab_to_rgb(lab)), rgb,
                             atol=1e-4)
  # Extremes: black, white, primaries.
  corners = np.array(np.meshgrid([0., 1.], [0., 1.], [0., 1.])).reshape(3, -1).T
  np.testing.assert_allclose(np.asarray(color.rgb_to_lab(corners)),
                             skcolor.rgb2lab(corners[None])[0], atol=1e-3)


def test_out_of_gamut_lab_is_clipped_never_nan(rng):
  lab = np.stack([rng.uniform(-20, 140, 4000), rng.uniform(-300, 300, 4000),
                  rng.uniform(-300, 300, 4000)], -1).astype(np.float32)
  rgb = np.asarray(color.lab_to_rgb(lab))
  assert np.all(np.isfinite(rgb))
  assert rgb.min() >= 0.0 and rgb.max() <= 1.0
  grads = jax.grad(lambda x: color.lab_to_rgb(x).sum())(jnp.asarray(lab))
  assert np.all(np.isfinite(np.asarray(grads)))


def test_lab_gradients_finite_at_black_and_knees():
  rgb = jnp.array([[0., 0., 0.], [0.04045, 0.04045, 0.04045], [1., 1., 1.]])
  grads = jax.grad(lambda x: color.rgb_to_lab(x).sum())(rgb)
  assert np.all(np.isfinite(np.asarray(grads)))


def _random_lab_pairs(rng, n):
  ref = np.stack([rng.uniform(0, 100, n), rng.uniform(-110, 110, n),
                  rng.uniform(-110, 110, n)], -1)
  other = ref + rng.normal(0, 15, ref.shape)
  return ref, other


def test_delta_e_cmc_matches_colour_science(rng):
  ref, other = _random_lab_pairs(rng, 20000)
  # Include the special cases: L below 16, zero chroma, hue range borders.
  special_ref = np.array([[10., 0., 0.], [50., 0., 0.], [50., -20., 5.],
                          [60., 3., -40.], [70., 30., -1e-3], [15.9, 5., 5.]])
  ref = np.concatenate([ref, special_ref])
  other = np.concatenate([other, special_ref + [1., 2., -3.]])
  ours = np.asarray(jax.jit(color.delta_e_cmc)(ref, other), np.float64)
  expected = colour.difference.delta_E_CMC(ref, other, l=2, c=1)
  np.testing.assert_allclose(ours, expected, rtol=1e-4)


def test_delta_e_cmc_one_to_one_option(rng):
  ref, other = _random_lab_pairs(rng, 1000)
  np.testing.assert_allclose(
      np.asarray(color.delta_e_cmc(ref, other, l=1.0, c=1.0)),
      colour.difference.delta_E_CMC(ref, other, l=1, c=1), rtol=1e-4)


def test_delta_e_cmc_is_zero_and_differentiable_at_identity():
  lab = jnp.array([[50., 0., 0.], [0., 0., 0.], [70., 20., -30.],
                   [10., 0., 1e-9]])
  assert np.allclose(np.asarray(color.delta_e_cmc(lab, lab)), 0.0)
  grad_ref, grad = jax.grad(lambda a, b: color.delta_e_cmc(a, b).sum(),
                            argnums=(0, 1))(lab, lab)
  assert np.all(np.isfinite(np.asarray(grad_ref)))
  assert np.all(np.isfinite(np.asarray(grad)))


def test_delta_e_cmc_gradients_finite_at_zero_chroma(rng):
  ref = jnp.zeros((64, 3)).at[:, 0].set(50.0)        # achromatic references
  pred = jnp.asarray(rng.normal(0, 10, (64, 3)) + [50, 0, 0], jnp.float32)
  pred = pred.at[:8, 1:].set(0.0)                      # and achromatic guesses
  grads = jax.grad(lambda a, b: color.delta_e_cmc(a, b).mean(),
                   argnums=(0, 1))(ref, pred)
  for g in grads:
    assert np.all(np.isfinite(np.asarray(g)))
  # A gradient step on the prediction reduces the loss (it is informative).
  loss = lambda p: color.delta_e_cmc(ref, p).mean()
  step = pred - 1.0 * jax.grad(loss)(pred)
  assert float(loss(step)) < float(loss(pred))


# sha256 of colorjax/color/ab_bins_313.csv, identical to the reference copy
# ../shared/reference/ab_bins_313.csv (checked below when that is present),
# and of the table as loaded (int16 little-endian, row order kept).
AB_BINS_CSV_SHA256 = (
    '38ccc0f9f7d26e37762015c33a43b6287a4066d91c2c8f3fbfbfb4d66ff4de1c')
AB_BINS_TABLE_SHA256 = (
    'e74b520cf1929e90ad9f051db10931e8ac5d1534c6cedabd7bfeba7a78a96c89')


def test_ab_bins_are_the_shipped_reference_table():
  bins = color.ab_gamut_bins()
  assert bins.shape == (313, 2)
  # Guarded without ../shared: the shipped file and the table it loads to.
  shipped = os.path.join(os.path.dirname(color.__file__), 'ab_bins_313.csv')
  with open(shipped, 'rb') as f:
    assert hashlib.sha256(f.read()).hexdigest() == AB_BINS_CSV_SHA256
  assert hashlib.sha256(np.asarray(bins, '<i2').tobytes()).hexdigest() == (
      AB_BINS_TABLE_SHA256)
  np.testing.assert_array_equal(
      bins, np.loadtxt(shipped, delimiter=',', comments='#', skiprows=3))
  reference = os.path.join(os.path.dirname(__file__), '..', '..', 'shared',
                           'reference', 'ab_bins_313.csv')
  if os.path.exists(reference):
    with open(reference, 'rb') as f:
      assert hashlib.sha256(f.read()).hexdigest() == AB_BINS_CSV_SHA256
    table = np.loadtxt(reference, delimiter=',', comments='#', skiprows=3)
    np.testing.assert_array_equal(bins, table)
  # Independent facts of Zhang et al.'s table: a 10-grid, unique centres.
  assert np.all(np.mod(bins, 10) == 0)
  assert len({tuple(b) for b in bins}) == 313


def test_soft_encode_is_a_distribution_over_the_k_nearest(rng):
  ab = rng.uniform(-100, 100, (7, 9, 2)).astype(np.float32)
  probs = np.asarray(color.soft_encode(ab, k=5, sigma=5.0))
  assert probs.shape == (7, 9, 313)
  np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
  assert np.all((probs > 0).sum(-1) <= 5)
  # Brute force: weights are the normalised Gaussians of the 5 nearest bins.
  bins = color.ab_gamut_bins().astype(np.float64)
  for point, dist in zip(ab.reshape(-1, 2), probs.reshape(-1, 313)):
    d2 = np.sum((bins - point) ** 2, -1)
    nearest = np.argsort(d2)[:5]
    w = np.exp(-(d2[nearest] - d2[nearest].min()) / 50.0)
    np.testing.assert_allclose(dist[nearest], w / w.sum(), atol=1e-5)


def test_pipeline_soft_encoding_equals_jax(rng):
  ab = rng.uniform(-80, 80, (6, 5, 2)).astype(np.float32)
  idx_np, w_np = color.soft_encode_numpy(ab, k=5, sigma=5.0)
  idx_jax, w_jax = color.soft_encode_sparse(ab, k=5, sigma=5.0)
  np.testing.assert_array_equal(idx_np, np.asarray(idx_jax))
  np.testing.assert_allclose(w_np, np.asarray(w_jax), atol=1e-6)
  np.testing.assert_allclose(np.asarray(color.densify(idx_jax, w_jax)),
                             np.asarray(color.soft_encode(ab)), atol=1e-6)


def test_annealed_mean_limits(rng):
  logits = rng.normal(0, 2, (11, 313)).astype(np.float32)
  probs = np.asarray(jax.nn.softmax(logits))
  bins = color.ab_gamut_bins()
  # T = 1: the mean; T -> 0: the mode (paper 001 eq. 13-15).
  np.testing.assert_allclose(np.asarray(color.annealed_mean(probs, 1.0)),
                             probs @ bins, atol=1e-3)
  np.testing.assert_allclose(np.asarray(color.annealed_mean(probs, 1e-3)),
                             bins[probs.argmax(-1)], atol=1e-3)
  np.testing.assert_allclose(
      np.asarray(color.annealed_mean_from_logits(logits, 0.38)),
      np.asarray(color.annealed_mean(probs, 0.38)), atol=1e-3)
  # Sharper than the mean: annealing moves away from the (grayish) mean.
  mean = probs @ bins
  annealed = np.asarray(color.annealed_mean(probs, 0.38))
  mode = bins[probs.argmax(-1)]
  assert np.mean(np.linalg.norm(annealed - mode, axis=-1)) < np.mean(
      np.linalg.norm(mean - mode, axis=-1))


def test_annealed_mean_of_zero_probabilities_is_finite():
  probs = np.zeros((1, 313), np.float32)
  probs[0, 10] = 1.0
  out = np.asarray(color.annealed_mean(probs))
  np.testing.assert_allclose(out[0], color.ab_gamut_bins()[10], atol=1e-4)


def test_rebalance_weights_expectation_one(rng):
  prior = rng.dirichlet(np.full(313, 0.3))
  for lam, sigma in ((0.5, 5.0), (0.0, 5.0), (0.5, 0.0), (1.0, 5.0)):
    weights = color.rebalance_weights(prior, lam=lam, sigma=sigma)
    smoothed = color.smooth_prior(prior, sigma)
    assert abs(float(np.sum(smoothed * weights)) - 1.0) < 1e-5
  # lam = 1: uniform weights; rarer colours get larger weights for lam < 1.
  np.testing.assert_allclose(color.rebalance_weights(prior, 1.0), 1.0,
                             rtol=1e-5)
  weights = color.rebalance_weights(prior, 0.5, 0.0)
  order = np.argsort(prior)
  assert np.all(np.diff(weights[order]) <= 1e-6)


def test_rebalance_weights_closed_form(rng):
  """Paper 001 eq. 11-12, written out: P_smooth = P convolved with a Gaussian
  (std sigma, ab units) over the bin centres and renormalised; w(q) =
  1 / ((1 - lam) P_smooth(q) + lam / Q), scaled so E_{P_smooth}[w] = 1."""
  prior = rng.dirichlet(np.full(313, 0.3))
  centres = color.ab_gamut_bins().astype(np.float64)
  d2 = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
  for lam, sigma in ((0.5, 5.0), (0.0, 5.0), (0.5, 0.0), (0.2, 2.5),
                     (0.9, 10.0), (1.0, 5.0)):
    if sigma > 0:
      smoothed = np.exp(-d2 / (2 * sigma ** 2)) @ prior
    else:
      smoothed = prior.copy()
    smoothed /= smoothed.sum()
    expected = 1.0 / ((1.0 - lam) * smoothed + lam / 313)
    expected /= np.sum(smoothed * expected)
    weights = color.rebalance_weights(prior, lam=lam, sigma=sigma)
    assert weights.shape == (313,) and weights.dtype == np.float32
    np.testing.assert_allclose(weights, expected, rtol=2e-5)
  # The default is the paper's lam = 0.5, sigma = 5.
  np.testing.assert_allclose(color.rebalance_weights(prior),
                             color.rebalance_weights(prior, 0.5, 5.0))


def test_smooth_prior_is_gaussian_smoothing_on_the_grid():
  prior = np.zeros(313)
  centre = int(np.argmin(np.sum(color.ab_gamut_bins() ** 2, -1)))
  prior[centre] = 1.0
  smoothed = color.smooth_prior(prior, sigma=5.0)
  bins = color.ab_gamut_bins()
  d2 = np.sum((bins - bins[centre]) ** 2, -1)
  expected = np.exp(-d2 / 50.0)
  np.testing.assert_allclose(smoothed, expected / expected.sum(), atol=1e-9)


def test_prior_accumulator_equals_bruteforce(rng):
  batches = [rng.uniform(-90, 90, (2, 5, 6, 2)).astype(np.float32)
             for _ in range(4)]
  prior = color.empirical_ab_prior(iter(batches))
  bins = color.ab_gamut_bins()
  flat = np.concatenate([b.reshape(-1, 2) for b in batches])
  nearest = np.argmin(((flat[:, None] - bins[None]) ** 2).sum(-1), -1)
  np.testing.assert_allclose(prior, np.bincount(nearest, minlength=313)
                             / len(flat))
  acc = color.ABPriorAccumulator()
  mask = np.zeros(batches[0].shape[:-1], bool)
  mask[0] = True
  acc.update(batches[0], mask)
  assert acc.counts.sum() == mask.sum()
