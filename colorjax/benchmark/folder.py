"""`benchmark folder`: images/s of `colorize` on a folder of mixed-size
photos (streaming: threads decode ahead and write behind, batches of one
network input size, one compiled recombination per network-size bucket)
against a loop of single-photo calls on the same photos, in the same run.

Baselines:
  loop  the same Colorizer (model loaded, programs compiled: only the
        streaming differs), one `colorize` call per photo with batch 1 and
        no threads. It runs after the folder, so it finds the
        recombination programs compiled already: the ratio is
        conservative.
  cli   (with --workdir) `python -m colorjax.colorize --input=PHOTO` once
        per photo, as a script without folder support would run it, on
        the first `cli_photos` photos (each call loads the model and
        compiles), extrapolated per photo.

Photos: --photos (files or folders), or `num_photos` made from
scikit-image's bundled colour photos: random crops of random aspect
(1:2 to 2:1), resized to a random long side of 320-1600 px, JPEG q90.
"""

import os
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from colorjax import colorize as colorize_lib
from colorjax import methods
from colorjax.benchmark import common
from colorjax.benchmark import upsampling
from colorjax.data.image_folder import find_images

SIZES = (320, 1600)


def make_photos(folder: str, count: int, seed: int = 0):
  """`count` mixed-size JPEGs from the bundled photos -> their paths."""
  rng = np.random.default_rng(seed)
  sources = [upsampling.bundled_photo(n) for n in upsampling.SKIMAGE_PHOTOS]
  os.makedirs(folder, exist_ok=True)
  paths = []
  for i in range(count):
    source = sources[i % len(sources)]
    height, width = source.shape[:2]
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))   # width/height
    crop_h = int(min(height, width / aspect))
    crop_w = int(min(width, crop_h * aspect))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    long_side = int(rng.integers(*SIZES))
    scale = long_side / max(crop_h, crop_w)
    image = Image.fromarray(source[top:top + crop_h, left:left + crop_w])
    image = image.resize((max(8, round(crop_w * scale)),
                          max(8, round(crop_h * scale))), Image.BICUBIC)
    paths.append(os.path.join(folder, f'photo_{i:04d}.jpg'))
    image.save(paths[-1], quality=90)
  return paths


def _random_colorizer(config):
  method = methods.get_method(config)
  state, _ = common.random_state(method)
  return lambda: colorize_lib.Colorizer(None, restored=(config, method,
                                                        state))


def benchmark_folder(workdir: Optional[str], config, config_name,
                     photos: Sequence[str], num_photos: int, batch_size: int,
                     workers: Optional[int], cli_photos: int):
  if workdir:
    make = lambda: colorize_lib.Colorizer(workdir)  # pylint: disable=unnecessary-lambda-assignment
    what = workdir
  else:
    make = _random_colorizer(config)
    what = f'{config_name} (random init)'
  with tempfile.TemporaryDirectory() as scratch:
    if photos:
      paths = find_images(photos)
    else:
      paths = make_photos(os.path.join(scratch, 'photos'), num_photos)
    sizes = [Image.open(p).size for p in paths]
    megapixels = sum(w * h for w, h in sizes) / 1e6
    print(f'folder benchmark: {len(paths)} photos, {megapixels:.1f} '
          f'megapixels ({min(min(s) for s in sizes)}-'
          f'{max(max(s) for s in sizes)} px), {what}')

    folder = make()
    start = time.perf_counter()
    written, failures = colorize_lib.colorize(
        None, paths, os.path.join(scratch, 'folder'), batch_size=batch_size,
        workers=workers, colorizer=folder)
    folder_s = time.perf_counter() - start
    assert not failures, failures
    network_sizes = {folder.photo(np.zeros((h, w, 3), np.uint8)).placement
                     .padded for w, h in sizes}
    print(f'  folder: {len(paths) / folder_s:7.2f} images/s '
          f'({folder_s:.1f} s; {len(network_sizes)} network input sizes)')

    single = make()
    start = time.perf_counter()
    for path in paths:
      colorize_lib.colorize(None, [path], os.path.join(scratch, 'loop'),
                            batch_size=1, workers=0, colorizer=single)
    loop_s = time.perf_counter() - start
    print(f'  loop of single-photo calls (same process, warm): '
          f'{len(paths) / loop_s:7.2f} images/s ({loop_s:.1f} s)')
    # Batch 8 and batch 1 round differently in the network (XLA's
    # kernels): the files agree to a few 8-bit steps, not bit for bit.
    difference = [np.abs(np.asarray(Image.open(a), np.int16) - np.asarray(
        Image.open(os.path.join(scratch, 'loop', os.path.basename(a))),
        np.int16)) for a in written]
    max_difference = int(max(d.max() for d in difference))
    mean_difference = float(np.mean([d.mean() for d in difference]))
    report = {'photos': len(paths), 'megapixels': megapixels,
              'model': what, 'batch_size': batch_size,
              'workers': workers, 'network_input_sizes': len(network_sizes),
              'folder': {'seconds': folder_s,
                         'images_per_s': len(paths) / folder_s},
              'loop': {'seconds': loop_s, 'images_per_s': len(paths) / loop_s},
              'ratio_vs_loop': loop_s / folder_s,
              'max_abs_difference_8bit': max_difference,
              'mean_abs_difference_8bit': mean_difference,
              'cpu_count': os.cpu_count()}
    print(f'  folder / loop: {loop_s / folder_s:.2f}x (outputs differ by '
          f'{mean_difference:.3f} on average, at most {max_difference}, in '
          '8-bit steps: batch 8 against batch 1)')
    if workdir and cli_photos:
      start = time.perf_counter()
      for path in paths[:cli_photos]:
        subprocess.run([sys.executable, '-m', 'colorjax.colorize',
                        f'--workdir={workdir}', f'--input={path}',
                        f'--output={os.path.join(scratch, "cli")}'],
                       check=True, capture_output=True, cwd=common.REPO)
      per_photo = (time.perf_counter() - start) / min(cli_photos, len(paths))
      report['cli'] = {'photos_timed': min(cli_photos, len(paths)),
                       'seconds_per_photo': per_photo,
                       'images_per_s': 1 / per_photo}
      report['ratio_vs_cli'] = per_photo * len(paths) / folder_s
      print(f'  loop of `python -m colorjax.colorize` calls (first '
            f'{min(cli_photos, len(paths))} photos): {1 / per_photo:7.2f} '
            f'images/s; folder / cli: {report["ratio_vs_cli"]:.1f}x')
  return report
