"""The colours label maps are drawn in (summaries, colorize's indexed
segmentation PNGs, the semantic-map editor)."""

import numpy as np


def voc_colormap(n: int = 256) -> np.ndarray:
  """The PASCAL VOC label colour map (the palette of VOC's and DeepLab's
  label PNGs): class i's bits, three at a time, fill R, G and B from the
  most significant bit down, so neighbouring indices get distinct colours."""
  cmap = np.zeros((n, 3), np.uint8)
  for i in range(n):
    code, rgb = i, [0, 0, 0]
    for bit in range(8):
      for channel in range(3):
        rgb[channel] |= ((code >> channel) & 1) << (7 - bit)
      code >>= 3
    cmap[i] = rgb
  return cmap


PALETTE = voc_colormap()
