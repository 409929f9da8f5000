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


# --- Masked metrics (full-resolution protocol), ab errors, MS-SSIM --------

def _on_canvas(images, canvas):
  """Pads [N, h, w, C] onto [N, canvas, canvas, C] with noise (which the
  mask must hide) and returns the [N, canvas, canvas] mask."""
  n, h, w, c = images.shape
  padded = np.random.default_rng(5).uniform(0, 1, (n, canvas, canvas, c))
  padded[:, :h, :w] = images
  mask = np.zeros((n, canvas, canvas), np.float32)
  mask[:, :h, :w] = 1
  return jnp.asarray(padded, jnp.float32), jnp.asarray(mask)


@pytest.mark.parametrize('name', ['psnr', 'psnr_channel', 'ssim', 'entropy',
                                  'colorfulness', 'colorfulness_abs'])
def test_masked_metrics_equal_the_metric_of_the_real_region(rng, name):
  a = rng.uniform(0, 1, (2, 23, 30, 3)).astype(np.float32)
  b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
  fns = {
      'psnr': lambda x, y, m=None: metrics.psnr(x, y, mask=m),
      'psnr_channel': lambda x, y, m=None: metrics.psnr(
          x, y, mask=m, per_channel=True),
      'ssim': lambda x, y, m=None: metrics.ssim(x, y, mask=m),
      'entropy': lambda x, y, m=None: metrics.image_entropy(x, mask=m),
      'colorfulness': lambda x, y, m=None: metrics.colorfulness(x, mask=m),
      'colorfulness_abs': lambda x, y, m=None: metrics.colorfulness(
          x, True, mask=m),
  }
  fn = fns[name]
  expected = fn(jnp.asarray(a), jnp.asarray(b))
  pa, mask = _on_canvas(a, 40)
  pb, _ = _on_canvas(b, 40)
  np.testing.assert_allclose(np.asarray(fn(pa, pb, mask)),
                             np.asarray(expected), rtol=2e-4)


def test_psnr_per_channel_is_the_mean_of_skimage_channel_psnrs(rng):
  from skimage.metrics import peak_signal_noise_ratio  # pylint: disable=g-import-not-at-top
  a = rng.uniform(0, 1, (1, 16, 16, 3))
  b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
  expected = np.mean([peak_signal_noise_ratio(a[0, ..., c], b[0, ..., c],
                                              data_range=1.0)
                      for c in range(3)])
  got = metrics.psnr(jnp.asarray(b), jnp.asarray(a), per_channel=True)
  assert float(got[0]) == pytest.approx(expected, rel=1e-4)


def test_ab_errors_follow_their_definitions(rng):
  pred = rng.normal(0, 30, (2, 9, 11, 2))
  true = rng.normal(0, 30, (2, 9, 11, 2))
  sq = ((pred - true) ** 2).reshape(2, -1, 2)
  p = 9 * 11
  # 001 eq. 23: sqrt(sum over pixels and channels) / (2P).
  np.testing.assert_allclose(np.asarray(metrics.l2_ab(
      jnp.asarray(pred), jnp.asarray(true))),
                             np.sqrt(sq.sum((1, 2))) / (2 * p), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(metrics.rmse_ab(
      jnp.asarray(pred), jnp.asarray(true))),
                             np.sqrt(sq.mean((1, 2))), rtol=1e-5)
  errors = np.sqrt(((pred - true) ** 2).sum(-1)).reshape(-1)
  hist = np.asarray(metrics.ab_error_histogram(jnp.asarray(pred),
                                               jnp.asarray(true)))
  expected = np.histogram(np.minimum(errors, 150.5),
                          bins=np.arange(152))[0]
  np.testing.assert_array_equal(hist, expected)
  thresholds, within, auc = metrics.cumulative_ab_accuracy(hist)
  direct = np.array([np.mean(errors < t) for t in thresholds])
  np.testing.assert_allclose(within, direct, atol=1e-12)
  assert auc == pytest.approx(direct.mean())


def test_ms_ssim_matches_pytorch_msssim(rng):
  import torch  # pylint: disable=g-import-not-at-top
  pytorch_msssim = pytest.importorskip('pytorch_msssim')
  a = rng.uniform(0, 1, (2, 176, 180, 3)).astype(np.float32)
  b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1).astype(np.float32)
  b[1] = a[1] * 0.5 + 0.25     # a different kind of change
  ta, tb = (torch.from_numpy(x.transpose(0, 3, 1, 2)) for x in (a, b))
  expected = pytorch_msssim.ms_ssim(ta, tb, data_range=1.0,
                                    size_average=False).numpy()
  got = np.asarray(metrics.ms_ssim(jnp.asarray(a), jnp.asarray(b)))
  np.testing.assert_allclose(got, expected, rtol=1e-4)
  # Fewer scales for small images: the first weights, renormalised.
  weights = [w / sum(metrics.MS_SSIM_WEIGHTS[:3])
             for w in metrics.MS_SSIM_WEIGHTS[:3]]
  expected3 = pytorch_msssim.ms_ssim(ta, tb, data_range=1.0,
                                     size_average=False,
                                     weights=weights).numpy()
  got3 = np.asarray(metrics.ms_ssim(jnp.asarray(a), jnp.asarray(b),
                                    weights=metrics.MS_SSIM_WEIGHTS[:3]))
  np.testing.assert_allclose(got3, expected3, rtol=1e-4)
  small = jnp.asarray(a[:, :64, :64])
  assert float(metrics.ms_ssim(small, small)[0]) == pytest.approx(1.0,
                                                                  abs=1e-5)
