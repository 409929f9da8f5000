"""Robust decoding of the image and label files real datasets contain.

Real photo collections hold CMYK and greyscale JPEGs, RGBA and 16-bit PNGs
and the odd truncated file. Every image is fully decoded here (PIL is lazy, a
truncated file only fails on `load`), converted to 8-bit RGB, and re-encoded
only when it is not already a plain RGB JPEG or PNG, so the ArrayRecord
files keep the original bytes whenever they can. EXIF orientation is
deliberately ignored: the segmentation labels of VOC, COCO and ADE20K are
aligned to the stored pixel grid, not to the rotated view.
"""

import dataclasses
import io
import os
from typing import Union

import numpy as np
from PIL import Image

from colorjax import errors

PathOrBytes = Union[str, os.PathLike, bytes]


class DecodeError(errors.UserError, ValueError):
  """A file that cannot be turned into an example; the builder skips it."""

  def __init__(self, reason: str, detail: str = ''):
    super().__init__(f'{reason}: {detail}' if detail else reason)
    self.reason = reason


@dataclasses.dataclass(frozen=True)
class DecodedImage:
  array: np.ndarray       # uint8 [H, W, 3]
  encoded: bytes          # JPEG or PNG bytes that decode to `array`
  reencoded: bool         # True when `encoded` is not the original file


def _read(source: PathOrBytes) -> bytes:
  if isinstance(source, bytes):
    return source
  with open(source, 'rb') as f:
    return f.read()


def _open_fully(data: bytes) -> Image.Image:
  try:
    image = Image.open(io.BytesIO(data))
    image.load()
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    # OSError covers "image file is truncated" and unknown formats.
    raise DecodeError('undecodable', str(e)) from e
  return image


def _sixteen_bit_to_uint8(image: Image.Image) -> np.ndarray:
  array = np.asarray(image)
  if array.dtype == np.uint8:
    return array
  # 16-bit PNGs use the full 0..65535 range; 'I' mode can hold any int32.
  maximum = 65535.0 if array.max(initial=0) > 255 or image.mode.startswith(
      'I;16') else 255.0
  return np.clip(np.rint(array.astype(np.float64) * (255.0 / maximum)), 0,
                 255).astype(np.uint8)


def to_rgb_array(image: Image.Image) -> np.ndarray:
  """Any PIL mode -> uint8 RGB [H, W, 3]."""
  mode = image.mode
  if mode == 'RGB':
    return np.asarray(image, dtype=np.uint8)
  if mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F'):
    gray = _sixteen_bit_to_uint8(image) if mode != 'F' else np.clip(
        np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)
  if mode in ('RGBA', 'LA', 'PA') or (mode == 'P' and
                                       'transparency' in image.info):
    # Composite on white: transparent pixels of web images are meant to be
    # seen on a light page, and black would add a spurious dark colour.
    rgba = image.convert('RGBA')
    background = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(background, rgba).convert('RGB'))
  # CMYK (incl. Adobe-inverted, handled by PIL), YCbCr, L, 1, P, LAB...
  return np.asarray(image.convert('RGB'), dtype=np.uint8)


def decode_image(source: PathOrBytes) -> DecodedImage:
  """Decodes an image file to uint8 RGB, keeping the original bytes if fit."""
  data = _read(source)
  image = _open_fully(data)
  if image.width == 0 or image.height == 0:
    raise DecodeError('empty', f'{image.width}x{image.height}')
  array = to_rgb_array(image)
  if image.format in ('JPEG', 'PNG') and image.mode == 'RGB':
    return DecodedImage(array, data, reencoded=False)
  return DecodedImage(array, encode_png(array), reencoded=True)


def decode_label_map(source: PathOrBytes,
                     max_label: int = 255) -> np.ndarray:
  """Decodes a segmentation PNG to uint8 [H, W] class indices.

  Palette PNGs (VOC) give their indices, greyscale PNGs their values;
  colour-coded label images are rejected, since guessing a palette would
  silently corrupt the labels.
  """
  image = _open_fully(_read(source))
  if image.mode in ('P', 'L', '1'):
    labels = np.asarray(image if image.mode != '1' else image.convert('L'))
  elif image.mode.startswith('I'):
    labels = np.asarray(image)
  elif image.mode == 'LA':
    labels = np.asarray(image)[..., 0]
  else:
    raise DecodeError('bad_label_mode', f'label map has mode {image.mode}')
  labels = labels.astype(np.int64)
  # Every supported dataset has < 256 labels; the stored maps are uint8
  # (tfds' numpy decoding of 16-bit PNGs needs OpenCV).
  if labels.min(initial=0) < 0 or labels.max(initial=0) > max_label:
    raise DecodeError('bad_label_value',
                      f'values {labels.min()}..{labels.max()}')
  return labels.astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
  """Lossless PNG of a uint8 RGB [H, W, 3] or gray [H, W(, 1)] array."""
  array = np.asarray(array, np.uint8)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  image = Image.fromarray(array)
  buffer = io.BytesIO()
  image.save(buffer, format='PNG', compress_level=1)
  return buffer.getvalue()
