"""sRGB <-> CIELAB (D65, 2 degree observer).

The constants follow scikit-image (the reference the tests compare against):
sRGB primaries with the sRGB transfer curve, D65 white (0.95047, 1, 1.08883).
Each conversion is written once over an array module `xp`: the jnp versions
are jit-able and differentiable (the power and cube-root branches only ever
see inputs above their thresholds, so gradients are finite everywhere); the
numpy versions serve the host-side input pipeline, where JAX must not run
inside forked data workers.
"""

import jax.numpy as jnp
import numpy as np

# Linear sRGB -> XYZ (scikit-image `xyz_from_rgb`).
XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423],
     [0.212671, 0.715160, 0.072169],
     [0.019334, 0.119193, 0.950227]])
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
D65_WHITE = np.array([0.95047, 1.0, 1.08883])

_EPSILON = (6.0 / 29.0) ** 3     # CIE 0.008856
_KAPPA_SLOPE = 1.0 / (3.0 * (6.0 / 29.0) ** 2)   # 7.787
_SRGB_KNEE = 0.04045
_LINEAR_KNEE = 0.0031308


def _as_float(x, xp):
  x = xp.asarray(x)
  if not xp.issubdtype(x.dtype, xp.floating):
    x = x.astype(xp.float32)
  return x


def _srgb_to_linear(rgb, xp):
  high = ((xp.maximum(rgb, _SRGB_KNEE) + 0.055) / 1.055) ** 2.4
  return xp.where(rgb > _SRGB_KNEE, high, rgb / 12.92)


def _linear_to_srgb(linear, xp):
  high = 1.055 * xp.maximum(linear, _LINEAR_KNEE) ** (1.0 / 2.4) - 0.055
  return xp.where(linear > _LINEAR_KNEE, high, 12.92 * linear)


def _f(t, xp):
  cube_root = xp.cbrt(xp.maximum(t, _EPSILON))
  return xp.where(t > _EPSILON, cube_root, _KAPPA_SLOPE * t + 4.0 / 29.0)


def _f_inverse(f, xp):
  cube = xp.maximum(f, 6.0 / 29.0) ** 3
  return xp.where(f > 6.0 / 29.0, cube, (f - 4.0 / 29.0) / _KAPPA_SLOPE)


def _rgb_to_lab(rgb, xp):
  rgb = _as_float(rgb, xp)
  matrix = xp.asarray(XYZ_FROM_RGB.T / D65_WHITE[None, :], rgb.dtype)
  fx, fy, fz = xp.moveaxis(_f(_srgb_to_linear(rgb, xp) @ matrix, xp), -1, 0)
  return xp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)],
                  axis=-1)


def _lab_to_rgb(lab, xp):
  lab = _as_float(lab, xp)
  lightness, a, b = xp.moveaxis(lab, -1, 0)
  fy = (lightness + 16.0) / 116.0
  f = xp.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
  # Negative XYZ (far outside any gamut) is clipped to 0, as scikit-image.
  xyz = xp.maximum(_f_inverse(f, xp) * xp.asarray(D65_WHITE, lab.dtype), 0.0)
  linear = xyz @ xp.asarray(RGB_FROM_XYZ.T, lab.dtype)
  return xp.clip(_linear_to_srgb(xp.clip(linear, 0.0, 1.0), xp), 0.0, 1.0)


def rgb_to_lab(rgb):
  """sRGB in [0, 1], shape [..., 3] -> CIELAB with L in [0, 100] (jnp)."""
  return _rgb_to_lab(rgb, jnp)


def lab_to_rgb(lab):
  """CIELAB [..., 3] -> sRGB in [0, 1]; out-of-gamut colours are clipped."""
  return _lab_to_rgb(lab, jnp)


def rgb_to_lab_numpy(rgb):
  """numpy twin of `rgb_to_lab`, for host-side preprocessing."""
  return _rgb_to_lab(rgb, np)


def lab_to_rgb_numpy(lab):
  """numpy twin of `lab_to_rgb`."""
  return _lab_to_rgb(lab, np)


def join_lab(lightness, ab, ab_scale: float):
  """True L [0, 100] + ab normalised by `ab_scale` -> float32 Lab (jnp)."""
  return jnp.concatenate([jnp.asarray(lightness, jnp.float32),
                          jnp.asarray(ab, jnp.float32) * ab_scale], -1)


def equalize_lightness(lightness: np.ndarray, bins: int = 256) -> np.ndarray:
  """Histogram equalisation of L in [0, 100] (paper 000's augmentation)."""
  flat = lightness.reshape(-1)
  hist, edges = np.histogram(flat, bins=bins, range=(0.0, 100.0))
  cdf = np.cumsum(hist).astype(np.float64)
  first = cdf[np.nonzero(hist)[0][0]] if hist.any() else 0.0
  denom = max(cdf[-1] - first, 1.0)
  lut = np.clip((cdf - first) / denom, 0.0, 1.0) * 100.0
  index = np.clip(np.digitize(flat, edges[1:-1]), 0, bins - 1)
  return lut[index].reshape(lightness.shape).astype(np.float32)
