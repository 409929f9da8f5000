"""A folder of photos as a random-access data source (no labels needed).

Any JPEG/PNG/... files of any size and mode (DIV2K-style 2K images, grey,
CMYK, 16-bit), found recursively in a stable order. Evaluators read it
through the same grain loader and preprocessing as a tfds split, and
colorize uses its listing and decoding. An unreadable file yields a small
placeholder with `valid = 0`, so every process still sees the same number
of records (multi-host evaluation stays in step) and the evaluators mask it
out and count it.
"""

import os
from typing import Dict, List, Sequence

import numpy as np

from colorjax.datasets import imaging

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                    '.gif')


def find_images(inputs: Sequence[str]) -> List[str]:
  """Files given directly, plus image files found (recursively) in folders."""
  paths = []
  for entry in inputs:
    if os.path.isdir(entry):
      for root, dirs, names in os.walk(entry):
        dirs.sort()
        paths += [os.path.join(root, n) for n in sorted(names)
                  if n.lower().endswith(IMAGE_EXTENSIONS)]
    else:
      paths.append(entry)
  return paths


class ImageFolderSource:
  """grain RandomAccessDataSource over the images under `path`."""

  def __init__(self, path: str, min_size: int = 8):
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
      raise FileNotFoundError(f'image folder {path!r} does not exist')
    self.path = path
    self.files = find_images([path])
    if not self.files:
      raise FileNotFoundError(f'no image files ({", ".join(IMAGE_EXTENSIONS)})'
                              f' under {path!r}')
    self._placeholder = np.zeros((min_size, min_size, 3), np.uint8)

  def __len__(self) -> int:
    return len(self.files)

  def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
    path = self.files[index]
    try:
      image, valid = imaging.decode_image(path).array, 1.0
    except (imaging.DecodeError, OSError):
      image, valid = self._placeholder, 0.0
    return {'image': image, 'valid': np.float32(valid),
            'id': os.path.relpath(path, self.path)}

  def __repr__(self):
    return f'ImageFolderSource({self.path!r}, {len(self)} files)'
