"""Chroma upsampling: a low-resolution ab onto a full-resolution L.

A network predicts ab at its input resolution (256 px on the short side for
the paper presets) while the photo keeps its own L. Upsampled bilinearly,
the ab is blurred across the edges that L draws sharply: colour bleeds a
pixel or two (of the network's) past object boundaries, the artifact users
of colorization tools report most.

'guided' is joint bilateral upsampling (Kopf, Cohen, Lischinski and
Uyttendaele, "Joint Bilateral Upsampling", SIGGRAPH 2007, eq. 2) on
bilinear's own stencil: each full-resolution pixel p averages the 2x2
network pixels q around it with bilinear's weights times a range weight
exp(-(L_p - L_q)^2 / 2 sigma^2), L_p the photo's lightness at p and L_q the
lightness at the network's resolution. Neighbours across an edge of L
(another object) lose their say; where L is smooth the range weights are
near equal and the result is bilinear's. A floor on the range weight falls
back to bilinear where no neighbour is alike.

Measured (`python -m colorjax.benchmark upsampling`, README "Chroma
upsampling"): on every scikit-image colour photo the ab error and the error
near L edges are lower than bilinear's. He et al.'s guided filter used as a
joint upsampler (fast guided filter: coefficients at the network's
resolution, upsampled, applied to the full L) was measured too: its ab
error was higher than bilinear's on every photo at every radius and eps
tried (its window averaging blurs ab more than the edges gain), so it is
not offered.

Both upsamplers run jitted on fixed-size tiles of the photo (the scale and
the tile's place are traced arguments), optionally followed by a `finish`
(colorize: gamut mapping and sRGB), so a folder of photos of any sizes
compiles one program per network-size bucket, not one per photo.
"""

import functools
from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from colorjax import choices

UPSAMPLERS = ('guided', 'bilinear')
# The range weight's sigma in L units (L in [0, 100]); chosen on the
# oracle (README "Chroma upsampling": 5 to 10 all better than bilinear).
RANGE_SIGMA = 7.0
# A floor under the range weight: with no alike neighbour, bilinear.
RANGE_FLOOR = 1e-6
# The full-resolution work runs in TILE x TILE tiles (SMALL_TILE for a
# photo of at most SMALL_TILE_PIXELS: a thumbnail would otherwise pay for
# four 256 x 256 tiles), TILES_PER_CALL to a call; the network-resolution
# ab is padded to a multiple of AB_BUCKET.
TILE = 256
SMALL_TILE = 64
SMALL_TILE_PIXELS = 256 * 256
TILES_PER_CALL = 4
AB_BUCKET = 128

Box = Tuple[float, float, float, float]


def resize_channels(image: np.ndarray, height: int, width: int,
                    box: Optional[Box] = None) -> np.ndarray:
  """float [h, w, C] -> [height, width, C], bilinear (PIL, per channel);
  box: the source region (left, top, right, bottom; fractional) to resize,
  default the whole image."""
  image = np.asarray(image, np.float32)
  return np.stack([np.asarray(Image.fromarray(image[..., c], mode='F').resize(
      (width, height), Image.BILINEAR, box=box))
                   for c in range(image.shape[-1])], axis=-1)


def _stencil(size: int, offset, count, start, step, limit):
  """The two source indices (clamped to [0, limit)) and their bilinear
  weights for output pixels offset .. offset + size - 1, pixel c at source
  coordinate start + (c + 0.5) * step - 0.5 (PIL's convention); pixels at
  or past `count` (the tile's share of the padding) read pixel 0."""
  pixel = offset + jnp.arange(size)
  position = start + (pixel.astype(jnp.float32) + 0.5) * step - 0.5
  position = jnp.where(pixel < count, position, 0.0)
  low = jnp.floor(position)
  weight_high = position - low
  low = low.astype(jnp.int32)
  indices = (jnp.clip(low, 0, limit - 1), jnp.clip(low + 1, 0, limit - 1))
  return indices, (1.0 - weight_high, weight_high)


def upsample_tile(lightness, origin, ab_small, guide, limits, size, box,
                  sigma: Optional[float]):
  """One tile of the full-resolution result (jnp).

  lightness [T, T, 1]: the photo's L at rows origin[0].., cols origin[1]..;
  ab_small [h, w, C] and guide [h, w, 1] (L at that resolution), of which
  the first limits = (rows, cols) are real; size: the photo's (H, W); box:
  the photo's region in ab_small (left, top, right, bottom). sigma None:
  bilinear; else the range weight's sigma (eq. 2). -> ab [T, T, C]."""
  tile = lightness.shape[:2]
  left, top, right, bottom = box[0], box[1], box[2], box[3]
  (ri, rw) = _stencil(tile[0], origin[0], size[0], top,
                      (bottom - top) / size[0], limits[0])
  (ci, cw) = _stencil(tile[1], origin[1], size[1], left,
                      (right - left) / size[1], limits[1])
  total = 0.0
  norm = 0.0
  for i in range(2):
    ab_rows = jnp.take(ab_small, ri[i], axis=0)
    guide_rows = jnp.take(guide, ri[i], axis=0)
    for j in range(2):
      near_ab = jnp.take(ab_rows, ci[j], axis=1)                 # [T, T, C]
      weight = rw[i][:, None, None] * cw[j][None, :, None]       # bilinear
      if sigma is not None:
        near_l = jnp.take(guide_rows, ci[j], axis=1)             # [T, T, 1]
        similar = jnp.exp(-jnp.square(lightness - near_l)
                          / (2 * sigma ** 2))
        weight = weight * (similar + RANGE_FLOOR)                # eq. 2
      total = total + weight * near_ab
      norm = norm + weight
  return total / norm


def _ab(lightness, ab):
  """The tiled program's default finish: the upsampled ab itself."""
  del lightness
  return ab


@functools.partial(jax.jit, static_argnames=('sigma', 'finish'))
def _run_tiles(tiles, origins, ab_small, guide, limits, size, box, sigma,
               finish):
  def one(args):
    tile, origin = args
    return finish(tile, upsample_tile(tile, origin, ab_small, guide, limits,
                                      size, box, sigma))
  # lax.map, not vmap: a finish's lax.cond (e.g. the gamut bisection,
  # skipped for a tile without undisplayable colours) stays a branch.
  return jax.lax.map(one, (tiles, origins))


def guide_at(lightness: np.ndarray, rows: int, cols: int,
             region: Optional[Tuple[int, int]] = None) -> np.ndarray:
  """The full-resolution L [H, W, 1] as the guide at a network output of
  rows x cols: resized (PIL bilinear, which averages when it shrinks) to
  the photo's region (`region` = its rows x cols there; default all of
  it), the rest edge-padded like the network's input."""
  region = region or (rows, cols)
  small = resize_channels(lightness, *region)
  return np.pad(small, ((0, rows - region[0]), (0, cols - region[1]),
                        (0, 0)), mode='edge')


def guide_in_box(lightness: np.ndarray, rows: int, cols: int,
                 box: Box) -> np.ndarray:
  """`guide_at` for a photo occupying `box` of a rows x cols output."""
  region = (max(1, round(box[3] - box[1])), max(1, round(box[2] - box[0])))
  return guide_at(lightness, rows, cols, region)


def _round_up(size: int, multiple: int) -> int:
  return -(-size // multiple) * multiple


def upsample_tiled(lightness: np.ndarray, ab_small: np.ndarray,
                   method: str = 'guided', box: Optional[Box] = None,
                   guide: Optional[np.ndarray] = None,
                   sigma: float = RANGE_SIGMA, finish=_ab) -> np.ndarray:
  """ab [h, w, C] onto the full-resolution lightness [H, W, 1], then
  `finish(L, ab)` (jnp, static: e.g. Lab -> uint8 sRGB) -> its [H, W, ...]
  result, in fixed-size tiles, TILES_PER_CALL to a call of one compiled
  program (one per tile size, AB_BUCKET-padded network size, upsampler and
  finish; none per photo size)."""
  choices.check('upsample', method, UPSAMPLERS)
  height, width = lightness.shape[:2]
  rows, cols = ab_small.shape[:2]
  box = box or (0.0, 0.0, float(cols), float(rows))
  if method == 'guided' and guide is None:
    guide = guide_in_box(lightness, rows, cols, box)
  elif guide is None:
    guide = np.zeros((rows, cols, 1), np.float32)      # not read
  small_pad = ((0, _round_up(rows, AB_BUCKET) - rows),
               (0, _round_up(cols, AB_BUCKET) - cols), (0, 0))
  ab_small = np.pad(np.asarray(ab_small, np.float32), small_pad)
  guide = np.pad(np.asarray(guide, np.float32), small_pad)
  tile = SMALL_TILE if height * width <= SMALL_TILE_PIXELS else TILE
  grid = (_round_up(height, tile) // tile, _round_up(width, tile) // tile)
  padded = np.pad(np.asarray(lightness, np.float32),
                  ((0, grid[0] * tile - height), (0, grid[1] * tile - width),
                   (0, 0)), mode='edge')
  tiles = padded.reshape(grid[0], tile, grid[1], tile, 1).transpose(
      0, 2, 1, 3, 4).reshape(-1, tile, tile, 1)
  origins = np.stack(np.meshgrid(np.arange(grid[0]) * tile,
                                 np.arange(grid[1]) * tile, indexing='ij'),
                     -1).reshape(-1, 2).astype(np.int32)
  count = len(tiles)
  calls = _round_up(count, TILES_PER_CALL)
  tiles = np.concatenate([tiles, np.zeros((calls - count, tile, tile, 1),
                                          np.float32)])
  origins = np.concatenate([origins, np.zeros((calls - count, 2), np.int32)])
  arguments = (ab_small, guide, np.asarray([rows, cols], np.int32),
               np.asarray([height, width], np.int32),
               np.asarray(box, np.float32))
  sigma = float(sigma) if method == 'guided' else None
  outputs = [_run_tiles(tiles[k:k + TILES_PER_CALL],
                        origins[k:k + TILES_PER_CALL], *arguments,
                        sigma=sigma, finish=finish)
             for k in range(0, calls, TILES_PER_CALL)]
  out = np.concatenate(jax.device_get(outputs))[:count]
  channels = out.shape[3:]
  return out.reshape(grid[0], grid[1], tile, tile, *channels).transpose(
      0, 2, 1, 3, *range(4, 4 + len(channels))).reshape(
          grid[0] * tile, grid[1] * tile, *channels)[:height, :width]


def upsample_ab(lightness: np.ndarray, ab_small: np.ndarray,
                method: str = 'guided', box: Optional[Box] = None,
                guide: Optional[np.ndarray] = None,
                sigma: float = RANGE_SIGMA) -> np.ndarray:
  """ab [h, w, C] -> [H, W, C] (Lab units, float32) at the full-resolution
  lightness [H, W, 1]. box: the photo's region in ab_small (the rest is
  padding), default all of it. guide: L at ab_small's resolution (default:
  the full L shrunk onto the box, `guide_at`). 'bilinear' is PIL's bilinear
  resize (to ~1e-4, tested), computed by the same tiles."""
  return upsample_tiled(lightness, ab_small, method, box, guide, sigma)


def edge_band(lightness: np.ndarray, width: int = 3,
              threshold: float = 10.0) -> np.ndarray:
  """bool [H, W]: pixels within `width` px of an edge of L [H, W, 1] (the
  Sobel gradient magnitude, in L units per pixel, above `threshold`)."""
  l = np.pad(np.asarray(lightness[..., 0], np.float64), 1, mode='edge')
  gx = (l[:-2, 2:] + 2 * l[1:-1, 2:] + l[2:, 2:]
        - l[:-2, :-2] - 2 * l[1:-1, :-2] - l[2:, :-2]) / 8.0
  gy = (l[2:, :-2] + 2 * l[2:, 1:-1] + l[2:, 2:]
        - l[:-2, :-2] - 2 * l[:-2, 1:-1] - l[:-2, 2:]) / 8.0
  edges = np.hypot(gx, gy) > threshold
  band = edges.copy()
  for _ in range(width):        # dilation by a 3x3 square, `width` times
    padded = np.pad(band, 1)
    band = np.any([padded[i:i + band.shape[0], j:j + band.shape[1]]
                   for i in range(3) for j in range(3)], axis=0)
  return band


def ab_errors(true_ab: np.ndarray, ab: np.ndarray,
              band: np.ndarray) -> Sequence[float]:
  """(mean ab error, mean ab error within the edge band): the Euclidean ab
  distance per pixel, averaged."""
  distance = np.sqrt(np.sum((np.asarray(true_ab, np.float64)
                             - np.asarray(ab, np.float64)) ** 2, -1))
  return float(distance.mean()), float(distance[band].mean())
