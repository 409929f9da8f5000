"""Bringing Lab colours into the sRGB gamut without changing their hue.

A predicted ab can lie outside what sRGB displays at its L (vivid
predictions on very dark or very light pixels). Clipping each RGB channel
then changes the hue and lightness (a saturated blue turns purple). Here
the chroma is reduced instead, at constant L and hue angle: ab is scaled by
the largest s in [0, 1] whose colour is displayable, found by bisection
(s = 0, the grey of that L, always is). numpy (the reference) and a jnp
twin (`lab_to_rgb_in_gamut_jnp`, jit-able: colorize's recombination runs
in one compiled program).
"""

import jax
import jax.numpy as jnp
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
  scale = np.ones(lab.shape[:-1])
  # Bisection on the undisplayable colours alone (most of a photo is
  # displayable: searching every pixel cost ~1.4 s per photo in colorize).
  outside = lab[~inside]
  low = np.zeros(outside.shape[:-1])
  high = np.ones(outside.shape[:-1])
  for _ in range(iterations):
    middle = (low + high) / 2.0
    ok = in_gamut(np.concatenate([outside[..., :1], outside[..., 1:] *
                                  middle[..., None]], -1))
    low = np.where(ok, middle, low)
    high = np.where(ok, high, middle)
  scale[~inside] = low
  return scale


def into_gamut(lab: np.ndarray, iterations: int = 30) -> np.ndarray:
  """Lab with ab scaled toward grey just enough to be displayable (L and
  hue angle kept); displayable colours are returned unchanged."""
  lab = np.asarray(lab)
  scale = chroma_scale(lab, iterations).astype(lab.dtype)
  return np.concatenate([lab[..., :1], lab[..., 1:] * scale[..., None]], -1)


def lab_to_rgb_in_gamut(lab: np.ndarray) -> np.ndarray:
  """Lab -> sRGB in [0, 1] by chroma reduction (not per-channel clipping)."""
  return lab_lib.lab_to_rgb_numpy(into_gamut(lab))


def lab_to_rgb_in_gamut_jnp(lab, iterations: int = 16):
  """jnp twin of `lab_to_rgb_in_gamut` (float32; the same bisection over
  every pixel, no data-dependent shapes under jit; skipped when every
  colour is displayable). 16 halvings put the chroma within 2^-16 of the
  boundary: < 0.002 ab units, far below an 8-bit step."""
  lab = jnp.asarray(lab, jnp.float32)
  lab = jnp.concatenate([jnp.clip(lab[..., :1], 0.0, 100.0), lab[..., 1:]],
                        -1)

  lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
  fy = (lightness + 16.0) / 116.0
  y = lab_lib._f_inverse(fy, jnp) * lab_lib.D65_WHITE[1]  # pylint: disable=protected-access
  matrix = lab_lib.RGB_FROM_XYZ

  def inside(scale):
    # Written per channel (a 3x3 matmul per iteration is a separate,
    # unfused kernel on XLA:CPU: 3x slower).
    x = lab_lib._f_inverse(fy + scale * a / 500.0, jnp) * lab_lib.D65_WHITE[0]  # pylint: disable=protected-access
    z = lab_lib._f_inverse(fy - scale * b / 200.0, jnp) * lab_lib.D65_WHITE[2]  # pylint: disable=protected-access
    ok = True
    for row in matrix:
      linear = row[0] * x + row[1] * y + row[2] * z
      ok = ok & (linear >= -TOLERANCE) & (linear <= 1.0 + TOLERANCE)
    return ok

  displayable = inside(jnp.ones(lab.shape[:-1], jnp.float32))

  def bisect(_):
    low = jnp.where(displayable, 1.0, 0.0)
    high = jnp.ones_like(low)
    for _ in range(iterations):
      middle = (low + high) / 2.0
      ok = inside(middle)
      low = jnp.where(ok & ~displayable, middle, low)
      high = jnp.where(ok | displayable, high, middle)
    return low

  scale = jax.lax.cond(jnp.all(displayable),
                       lambda _: jnp.ones(lab.shape[:-1], jnp.float32),
                       bisect, None)
  return lab_lib.lab_to_rgb(jnp.concatenate(
      [lab[..., :1], lab[..., 1:] * scale[..., None]], -1))
