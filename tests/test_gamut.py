"""Gamut mapping (color.gamut): undisplayable Lab colours lose chroma at
constant L and hue, just enough; displayable ones are untouched; colorize
uses it (against scikit-image's conversion, which clips)."""

import warnings

import numpy as np
from skimage import color as skcolor

from colorjax import colorize
from colorjax.color import gamut


def _hue(lab):
  return np.arctan2(lab[..., 2], lab[..., 1])


def _random_lab(n, seed=0):
  rng = np.random.default_rng(seed)
  return np.stack([rng.uniform(1, 99, n), rng.uniform(-128, 128, n),
                   rng.uniform(-128, 128, n)], -1)


def test_out_of_gamut_colours_keep_l_and_hue_and_lose_just_enough_chroma():
  lab = _random_lab(2000)
  outside = ~gamut.in_gamut(lab)
  assert 0.5 < outside.mean() < 0.99      # the test exercises both kinds
  mapped = gamut.into_gamut(lab)
  assert gamut.in_gamut(mapped).all()
  np.testing.assert_array_equal(mapped[..., 0], lab[..., 0])
  np.testing.assert_allclose(_hue(mapped), _hue(lab), atol=1e-9)
  np.testing.assert_array_equal(mapped[~outside], lab[~outside])
  # Maximal: 0.1% more chroma leaves the gamut again.
  scale = gamut.chroma_scale(lab)
  more = np.concatenate([lab[..., :1], lab[..., 1:] * np.minimum(
      scale * 1.001, 1.0)[..., None]], -1)
  assert not gamut.in_gamut(more[outside]).any()


def test_displayable_colours_convert_as_scikit_image():
  rgb = np.random.default_rng(1).uniform(0, 1, (500, 3))
  lab = skcolor.rgb2lab(rgb)
  assert gamut.in_gamut(lab).all()
  np.testing.assert_allclose(gamut.lab_to_rgb_in_gamut(lab), rgb, atol=1e-6)


def test_a_vivid_blue_stays_blue_where_clipping_turns_it_purple():
  """Clipping each channel moves the hue of an undisplayable blue by more
  than 10 degrees; the chroma reduction keeps it (measured back in Lab)."""
  lab = np.array([[30.0, 40.0, -120.0], [85.0, -100.0, 90.0],
                  [10.0, 60.0, 60.0]])
  assert not gamut.in_gamut(lab).any()
  with warnings.catch_warnings():      # skimage: "negative Z ... clipped"
    warnings.simplefilter('ignore', UserWarning)
    clipped = skcolor.rgb2lab(skcolor.lab2rgb(lab))
  mapped = skcolor.rgb2lab(gamut.lab_to_rgb_in_gamut(lab))
  degrees = lambda x: np.degrees(np.abs(np.angle(np.exp(1j * (  # pylint: disable=g-long-lambda
      _hue(x) - _hue(lab))))))
  assert degrees(clipped).max() > 10, degrees(clipped)
  assert degrees(mapped).max() < 1.5, degrees(mapped)
  assert np.abs(mapped[:, 0] - lab[:, 0]).max() < 0.5


def test_recombine_maps_into_the_gamut_unless_asked_to_clip():
  lightness = np.full((4, 6, 1), 30.0, np.float32)
  ab = np.zeros((2, 3, 2), np.float32)
  ab[..., 0], ab[..., 1] = 40.0, -120.0            # undisplayable blue
  chroma = colorize.recombine(lightness, ab)
  clip = colorize.recombine(lightness, ab, gamut='clip')
  want = np.rint(gamut.lab_to_rgb_in_gamut(np.concatenate(
      [lightness, np.broadcast_to(ab[:1, :1], (4, 6, 2))], -1)) * 255)
  np.testing.assert_array_equal(chroma, want.astype(np.uint8))
  np.testing.assert_array_equal(clip, np.rint(skcolor.lab2rgb(np.concatenate(
      [lightness, np.broadcast_to(ab[:1, :1], (4, 6, 2))], -1).astype(
          np.float64)) * 255).astype(np.uint8))
  assert not np.array_equal(chroma, clip)


def test_the_jitted_twin_maps_as_the_numpy_reference_does():
  """colorize's compiled recombination uses the jnp twin (float32, 16
  halvings over every pixel): the same sRGB as the float64 numpy reference
  (30 halvings, undisplayable pixels only) to a quarter of an 8-bit step,
  inside and outside the gamut."""
  import jax  # pylint: disable=g-import-not-at-top
  lab = _random_lab(4000, seed=3).astype(np.float32)
  want = gamut.lab_to_rgb_in_gamut(lab)
  got = np.asarray(jax.jit(gamut.lab_to_rgb_in_gamut_jnp)(lab))
  assert 0.3 < (~gamut.in_gamut(lab)).mean() < 0.99
  np.testing.assert_allclose(got, want, atol=1e-3)
