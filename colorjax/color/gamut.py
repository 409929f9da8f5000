"""Bringing Lab colours into the sRGB gamut without changing their hue.

A predicted ab can lie outside what sRGB displays at its L (vivid
predictions on very dark or very light pixels). Clipping each RGB channel
then changes the hue and lightness (a saturated blue turns purple). Here
the chroma is reduced instead, at constant L and hue angle: ab is scaled by
the largest s in [0, 1] whose colour is displayable, found by bisection
(s = 0, the grey of that L, always is). numpy, for the host-side
recombination of colorize.
"""

import numpy as np

from colorjax.color import lab as lab_lib

# Linear-RGB slack of "inside": float32 round-off of the conversion.
TOLERANCE = 1e-5


def _linear_rgb(lab: np.ndarray) -> np.ndarray:
  """Lab -> linear sRGB, unclipped (negative or > 1 outside the gamut)."""
  lightness, a, b = np.moveaxis(lab, -1, 0)
  fy = (lightness + 16.0) / 116.0
  f = np.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
  xyz = lab_lib._f_inverse(f, np) * lab_lib.D65_WHITE  # pylint: disable=protected-access
  return xyz @ lab_lib.RGB_FROM_XYZ.T


def in_gamut(lab: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
  """bool [...]: the Lab colour is displayable in sRGB."""
  linear = _linear_rgb(np.asarray(lab, np.float64))
  return np.all((linear >= -tolerance) & (linear <= 1.0 + tolerance), -1)


def chroma_scale(lab: np.ndarray, iterations: int = 30) -> np.ndarray:
  """[...]: the largest s in [0, 1] with (L, s a, s b) in the gamut (to
  2^-iterations); 1 where the colour is displayable already."""
  lab = np.asarray(lab, np.float64)
  lab = np.concatenate([np.clip(lab[..., :1], 0.0, 100.0), lab[..., 1:]], -1)
  inside = in_gamut(lab)
  low = np.where(inside, 1.0, 0.0)
  high = np.ones(lab.shape[:-1])
  for _ in range(iterations):
    middle = (low + high) / 2.0
    ok = in_gamut(np.concatenate([lab[..., :1], lab[..., 1:] *
                                  middle[..., None]], -1))
    low = np.where(ok & ~inside, middle, low)
    high = np.where(ok | inside, high, middle)
  return low


def into_gamut(lab: np.ndarray, iterations: int = 30) -> np.ndarray:
  """Lab with ab scaled toward grey just enough to be displayable (L and
  hue angle kept); displayable colours are returned unchanged."""
  lab = np.asarray(lab)
  scale = chroma_scale(lab, iterations).astype(lab.dtype)
  return np.concatenate([lab[..., :1], lab[..., 1:] * scale[..., None]], -1)


def lab_to_rgb_in_gamut(lab: np.ndarray) -> np.ndarray:
  """Lab -> sRGB in [0, 1] by chroma reduction (not per-channel clipping)."""
  return lab_lib.lab_to_rgb_numpy(into_gamut(lab))
