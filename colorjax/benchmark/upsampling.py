"""`benchmark upsampling`: how well each chroma upsampler puts a
network-resolution ab back onto a photo's full-resolution L, with an
oracle that needs no trained model.

Each photo's true Lab is shrunk to the network's resolution (short side
`resolution`, aspect kept, PIL bilinear, which averages when it shrinks:
what a perfect network would predict), upsampled back with each method
(`color.upsample`: bilinear, guided) on the true full-resolution L, and
compared with the true ab: the mean ab error per pixel (Euclidean, Lab
units) over the photo, and within 3 px of an edge of L (`edge_band`),
where colour bleeds. Ratios are bilinear's error over guided's (> 1: guided
is better), measured in the same run.

Photos: the files or folders given, or scikit-image's bundled colour photos
(found on disk, never downloaded) and a synthetic 1536 px semantic_shapes
scene (sharp-edged objects on textured ground, larger than any bundled
photo). `figure=PATH` writes a picture of one photo (`figure_photo`, default
astronaut.png): the photo, and magnified crops (truth | bilinear | guided)
of the edge where guided gains most, in colour and (second row) as chroma
alone at a constant L of 70, where bleeding shows plainly.
"""

import os
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw
import tqdm

from colorjax import errors
from colorjax.color import lab_to_rgb_numpy
from colorjax.color import rgb_to_lab_numpy
from colorjax.color import upsample as upsample_lib
from colorjax.data import geometry_ops
from colorjax.data.image_folder import find_images
from colorjax.datasets import imaging
from colorjax.datasets import semantic_shapes

# scikit-image's bundled colour photos (in skimage/data, no download).
SKIMAGE_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg',
                  'motorcycle_left.png', 'hubble_deep_field.jpg', 'ihc.png',
                  'retina.jpg')
SYNTHETIC_SIZE = 1536
CROP = 48          # full-resolution pixels of a figure crop
MAGNIFY = 4


def _skimage_data() -> str:
  """scikit-image's data folder."""
  try:
    import skimage.data  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.ConfigError('benchmark upsampling: no --photos given and '
                             'scikit-image (its bundled photos) is not '
                             'installed; pip install scikit-image, or pass '
                             '--photos=FOLDER') from e
  return os.path.dirname(skimage.data.__file__)


def bundled_photo(name: str) -> np.ndarray:
  """uint8 RGB of one of scikit-image's bundled photos."""
  return imaging.decode_image(os.path.join(_skimage_data(), name)).array


def default_photos() -> List[Tuple[str, np.ndarray]]:
  """(name, uint8 RGB) of scikit-image's colour photos found on disk, and
  the synthetic scene."""
  folder = _skimage_data()
  photos = [(name, bundled_photo(name)) for name in SKIMAGE_PHOTOS
            if os.path.exists(os.path.join(folder, name))]
  rgb, _ = semantic_shapes.scene(0, 'test', 0, SYNTHETIC_SIZE)
  photos.append((f'semantic_shapes_{SYNTHETIC_SIZE}', rgb))
  return photos


def network_size(height: int, width: int, resolution: int):
  """The short side at `resolution`, the aspect kept (colorize's placement,
  unpadded)."""
  return geometry_ops.aspect_size(height, width, resolution, 1)[:2]


def oracle(rgb: np.ndarray, resolution: int,
           methods: Sequence[str] = upsample_lib.UPSAMPLERS):
  """One photo -> ({method: (ab error, edge ab error, seconds)}, true ab,
  {method: upsampled ab}, the edge band)."""
  lab = rgb_to_lab_numpy(rgb.astype(np.float32) / 255.0)
  lightness, true_ab = lab[..., :1], lab[..., 1:]
  rows, cols = network_size(*lab.shape[:2], resolution)
  ab_small = upsample_lib.resize_channels(true_ab, rows, cols)
  band = upsample_lib.edge_band(lightness)
  results, outputs = {}, {}
  for method in methods:
    upsample_lib.upsample_ab(lightness, ab_small, method)   # compile, warm
    start = time.perf_counter()
    ab = upsample_lib.upsample_ab(lightness, ab_small, method)
    seconds = time.perf_counter() - start
    results[method] = (*upsample_lib.ab_errors(true_ab, ab, band), seconds)
    outputs[method] = ab
  return results, true_ab, outputs, band


def _crop_at_edge(band, errors_bilinear, errors_guided):
  """Top-left of the CROP x CROP window where guided gains most."""
  gain = np.where(band, errors_bilinear - errors_guided, 0.0)
  c = np.cumsum(np.cumsum(np.pad(gain, ((1, 0), (1, 0))), 0), 1)
  sums = c[CROP:, CROP:] - c[:-CROP, CROP:] - c[CROP:, :-CROP] + c[:-CROP,
                                                                    :-CROP]
  y, x = np.unravel_index(np.argmax(sums), sums.shape)
  return int(y), int(x)


def figure(rgb, true_ab, outputs, band, path: str):
  """The photo (the crop outlined) and magnified crops: truth | bilinear |
  guided, each recombined with the true L (top) and with L = 70
  (bottom)."""
  lightness = rgb_to_lab_numpy(rgb.astype(np.float32) / 255.0)[..., :1]
  distance = {m: np.sqrt(np.sum((outputs[m] - true_ab) ** 2, -1))
              for m in outputs}
  y, x = _crop_at_edge(band, distance['bilinear'], distance['guided'])
  def tile(lightness_crop, ab):
    lab = np.concatenate([lightness_crop, ab[y:y + CROP, x:x + CROP]], -1)
    rgb_crop = np.rint(np.clip(lab_to_rgb_numpy(lab), 0, 1) * 255)
    return np.kron(rgb_crop.astype(np.uint8),
                   np.ones((MAGNIFY, MAGNIFY, 1), np.uint8))

  crop_l = lightness[y:y + CROP, x:x + CROP]
  flat_l = np.full_like(crop_l, 70.0)
  side = CROP * MAGNIFY
  gap = np.full((side, 8, 3), 255, np.uint8)
  rows = []
  for row_l in (crop_l, flat_l):
    parts = []
    for ab in (true_ab, outputs['bilinear'], outputs['guided']):
      parts += [gap, tile(row_l, ab)]
    rows.append(np.concatenate(parts, 1))
  tiles = np.concatenate([rows[0], np.full((8, rows[0].shape[1], 3), 255,
                                           np.uint8), rows[1]], 0)
  photo = Image.fromarray(rgb)
  ImageDraw.Draw(photo).rectangle([x, y, x + CROP, y + CROP],
                                  outline=(255, 0, 0), width=3)
  height = tiles.shape[0]
  photo = photo.resize((round(photo.width * height / photo.height), height),
                       Image.LANCZOS)
  picture = Image.fromarray(np.concatenate([np.asarray(photo), tiles], 1))
  labelled = Image.new('RGB', (picture.width, picture.height + 20),
                       (255, 255, 255))
  labelled.paste(picture, (0, 20))
  draw = ImageDraw.Draw(labelled)
  for k, label in enumerate(('truth', 'bilinear', 'guided')):
    draw.text((photo.width + 8 + k * (side + 8) + 4, 4), label,
              fill=(0, 0, 0))
  directory = os.path.dirname(path)
  if directory:
    os.makedirs(directory, exist_ok=True)
  labelled.save(path)
  return {'crop_top_left': [y, x], 'crop_size': CROP, 'magnified': MAGNIFY}


def benchmark_upsampling(photos: Sequence[str], resolution: int,
                         figure_path: Optional[str] = None,
                         figure_photo: str = 'astronaut.png'):
  """The oracle on `photos` (files/folders; empty: the defaults)."""
  if photos:
    named = [(os.path.basename(p), imaging.decode_image(p).array)
             for p in find_images(photos)]
    if not named:
      raise errors.ConfigError(f'--photos: no images in {list(photos)}')
  else:
    named = default_photos()
  rows = []
  best = None
  print(f'chroma upsampling oracle: true ab shrunk to a {resolution} px '
        'short side, upsampled back onto the true L')
  print(f'{"photo":28s} {"size":>10s} {"ab error bilinear/guided":>26s} '
        f'{"ratio":>6s} {"edge error":>15s} {"ratio":>6s}')
  for name, rgb in tqdm.tqdm(named, unit='photo', disable=None, leave=False):
    results, true_ab, outputs, band = oracle(rgb, resolution)
    (b_all, b_edge, b_s), (g_all, g_edge, g_s) = (results['bilinear'],
                                                  results['guided'])
    row = {'photo': name, 'height': rgb.shape[0], 'width': rgb.shape[1],
           'network_size': list(network_size(*rgb.shape[:2], resolution)),
           'edge_fraction': float(band.mean()),
           'bilinear': {'ab_error': b_all, 'edge_ab_error': b_edge,
                        'seconds': b_s},
           'guided': {'ab_error': g_all, 'edge_ab_error': g_edge,
                      'seconds': g_s},
           'ratio_ab_error': b_all / g_all,
           'ratio_edge_ab_error': b_edge / g_edge}
    rows.append(row)
    print(f'{name:28s} {rgb.shape[0]:>4d}x{rgb.shape[1]:<5d} '
          f'{b_all:12.3f} / {g_all:<11.3f} {row["ratio_ab_error"]:6.2f} '
          f'{b_edge:7.3f} / {g_edge:<6.3f} {row["ratio_edge_ab_error"]:6.2f}')
    if figure_path and name == figure_photo:
      best = (row['ratio_edge_ab_error'], name, rgb, true_ab, outputs, band)
  report = {'resolution': resolution, 'photos': rows,
            'range_sigma': upsample_lib.RANGE_SIGMA,
            'min_ratio_ab_error': min(r['ratio_ab_error'] for r in rows),
            'min_ratio_edge_ab_error': min(r['ratio_edge_ab_error']
                                           for r in rows)}
  print(f'guided vs bilinear: ab error lower on '
        f'{sum(r["ratio_ab_error"] > 1 for r in rows)}/{len(rows)} photos, '
        f'edge error lower on '
        f'{sum(r["ratio_edge_ab_error"] > 1 for r in rows)}/{len(rows)}')
  if figure_path and not best:
    raise errors.ConfigError(f'--figure: no photo named {figure_photo!r} '
                             'among the photos (--figure_photo)')
  if figure_path:
    report['figure'] = {'path': figure_path, 'photo': best[1],
                        **figure(*best[2:], figure_path)}
    print(f'figure ({best[1]}): {figure_path}')
  return report
