"""Geometry ops: image and segmentation move together (nearest neighbour
for labels), so the two always stay aligned; plus photometric jitter."""

import dataclasses
from typing import Optional

import grain
import numpy as np
from PIL import Image

from colorjax.color import lab as lab_lib
from colorjax.data.registry import Example
from colorjax.data.registry import register


def _resize(array: np.ndarray, height: int, width: int, nearest: bool):
  squeeze = array.ndim == 3 and array.shape[-1] == 1
  image = Image.fromarray(array[..., 0] if squeeze else array)
  resample = Image.NEAREST if nearest else Image.BILINEAR
  # PIL's BILINEAR antialiases when shrinking (it widens the filter).
  out = np.asarray(image.resize((width, height), resample=resample))
  return out[..., None] if squeeze else out


def _apply_geometry(example: Example, fn) -> Example:
  out = dict(example)
  out['image'] = fn(example['image'], False)
  if 'segmentation' in example:
    out['segmentation'] = fn(example['segmentation'], True)
  return out


@register('resize', reads=('image',), writes=('image',))
@dataclasses.dataclass
class Resize(grain.transforms.Map):
  """Resize to exactly (size, size) (or (height, width)); ignores aspect."""
  size: int
  width: Optional[int] = None

  def map(self, example):
    h, w = self.size, self.width or self.size
    return _apply_geometry(example, lambda a, n: _resize(a, h, w, n))


@register('resize_short', reads=('image',), writes=('image',))
@dataclasses.dataclass
class ResizeShortSide(grain.transforms.Map):
  """Aspect-preserving resize so that the shorter side equals `size`."""
  size: int

  def map(self, example):
    h, w = example['image'].shape[:2]
    scale = self.size / min(h, w)
    nh, nw = max(self.size, round(h * scale)), max(self.size, round(w * scale))
    return _apply_geometry(example, lambda a, n: _resize(a, nh, nw, n))


# The maps of the network input (before or after the Lab ops).
INPUT_MAPS = ('image', 'gray', 'l', 'ab', 'segmentation', 'semantic_map')


def _pad_maps(example: Example, height: int, width: int,
              name: str) -> Example:
  out = dict(example)
  for key in INPUT_MAPS:
    if key not in example:
      continue
    array = example[key]
    h, w = array.shape[:2]
    if h > height or w > width:
      raise ValueError(f'{name} pads {key} of {h}x{w} to {height}x{width}')
    out[key] = np.pad(array, [(0, height - h), (0, width - w)] + [
        (0, 0)] * (array.ndim - 2), mode='edge')
  return out


@register('pad_to', reads=(), writes=())
@dataclasses.dataclass
class PadTo(grain.transforms.Map):
  """Pads the input maps (image, gray, l, ab, labels) at the bottom and
  right to (height, width), repeating the edge pixels: a photo resized at
  its aspect, brought to the network's stride multiple (the padding's
  output is cropped away). Last in a spec, after the Lab ops, so that
  image-wide ops (histogram equalisation) see the photo alone."""
  height: int
  width: int

  def map(self, example):
    return _pad_maps(example, self.height, self.width,
                     f'pad_to({self.height}, {self.width})')


@register('pad_to_multiple', reads=(), writes=())
@dataclasses.dataclass
class PadToMultiple(grain.transforms.Map):
  """pad_to the next multiples of `multiple` of the maps' own size (0: no
  padding)."""
  multiple: int = 0

  def map(self, example):
    if not self.multiple:
      return example
    key = next(k for k in INPUT_MAPS if k in example)
    h, w = example[key].shape[:2]
    m = self.multiple
    return _pad_maps(example, round_up(h, m), round_up(w, m),
                     f'pad_to_multiple({m})')


def round_up(size: int, multiple: int) -> int:
  """The smallest multiple of `multiple` >= size."""
  return -(-size // multiple) * multiple


def aspect_size(height: int, width: int, size: int, multiple: int):
  """(h, w, padded h, padded w) of a height x width photo in a network
  input whose short side is `size`, aspect kept, padded to multiples of
  `multiple` (0 or None: the square size x size)."""
  if not multiple:
    return size, size, size, size
  scale = size / min(height, width)
  h = max(1, int(round(height * scale)))
  w = max(1, int(round(width * scale)))
  return h, w, round_up(h, multiple), round_up(w, multiple)


@register('resize_aspect', reads=('image',), writes=('image', 'model_hw'))
@dataclasses.dataclass
class ResizeAtAspect(grain.transforms.Map):
  """The network input of a photo at its own aspect, as colorize makes it:
  the short side resized to `size` (`multiple` 0: the square size x size,
  aspect lost); `model_hw` = that (height, width), the photo's place in
  the input once `pad_to_multiple(multiple)` (last in the spec) pads it
  to the network's stride multiple, to crop the outputs back."""
  size: int
  multiple: int = 0

  def map(self, example):
    nh, nw, _, _ = aspect_size(*example['image'].shape[:2], self.size,
                               self.multiple)
    out = Resize(nh, nw).map(example)
    out['model_hw'] = np.array([nh, nw], np.int32)
    return out


def _crop(example: Example, top: int, left: int, size: int) -> Example:
  return _apply_geometry(
      example, lambda a, n: a[top:top + size, left:left + size])


@register('random_crop', reads=('image',), writes=('image',))
@dataclasses.dataclass
class RandomCrop(grain.transforms.RandomMap):
  """Square crop at a uniformly random position (pads nothing: resize first)."""
  size: int

  def random_map(self, example, rng: np.random.Generator):
    h, w = example['image'].shape[:2]
    if h < self.size or w < self.size:
      raise ValueError(f'random_crop({self.size}) on a {h}x{w} image: put '
                       'resize_short before it')
    top = int(rng.integers(0, h - self.size + 1))
    left = int(rng.integers(0, w - self.size + 1))
    return _crop(example, top, left, self.size)


@register('center_crop', reads=('image',), writes=('image',))
@dataclasses.dataclass
class CenterCrop(grain.transforms.Map):
  size: int

  def map(self, example):
    h, w = example['image'].shape[:2]
    if h < self.size or w < self.size:
      raise ValueError(f'center_crop({self.size}) on a {h}x{w} image')
    return _crop(example, (h - self.size) // 2, (w - self.size) // 2,
                 self.size)


@register('flip', reads=('image',), writes=('image',))
@dataclasses.dataclass
class RandomFlip(grain.transforms.RandomMap):
  """Horizontal flip with probability `p` (image and labels together)."""
  p: float = 0.5

  def random_map(self, example, rng):
    if rng.random() >= self.p:
      return example
    return _apply_geometry(example, lambda a, n: a[:, ::-1])


@register('random_affine', reads=('image',), writes=('image',))
@dataclasses.dataclass
class RandomAffine(grain.transforms.RandomMap):
  """Random rotation, scale and translation about the centre (paper 001's
  "rotate, scale and translate"), keeping the size; the image bilinear,
  labels nearest, and the border filled by replicating the edge (Keras'
  ImageDataGenerator default `fill_mode='nearest'`, the authors' tool).

  rotate: degrees ~ U(-r, r); scale: zoom ~ U(1-s, 1+s); translate: shift ~
  U(-t, t) of the height / width, per axis.
  """
  rotate: float = 15.0
  scale: float = 0.2
  translate: float = 0.1

  def random_map(self, example, rng):
    import scipy.ndimage  # pylint: disable=g-import-not-at-top
    h, w = example['image'].shape[:2]
    angle = np.deg2rad(rng.uniform(-self.rotate, self.rotate))
    zoom = rng.uniform(1.0 - self.scale, 1.0 + self.scale)
    shift = rng.uniform(-self.translate, self.translate, 2) * (h, w)
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    # Output pixel o reads input matrix @ (o - centre - shift) + centre.
    matrix = np.array([[cos, -sin], [sin, cos]])
    centre = (np.array([h, w], np.float64) - 1.0) / 2.0
    offset = centre - matrix @ (centre + shift)

    def warp(array, nearest):
      planes = array.reshape(h, w, -1)
      out = np.stack([scipy.ndimage.affine_transform(
          planes[..., c].astype(np.float32), matrix, offset,
          order=0 if nearest else 1, mode='nearest')
                      for c in range(planes.shape[-1])], -1)
      if not nearest:
        out = np.clip(np.rint(out), 0, 255)
      return out.astype(array.dtype).reshape(array.shape)

    return _apply_geometry(example, warp)


@register('brightness_contrast', reads=('image',), writes=('image',))
@dataclasses.dataclass
class RandomBrightnessContrast(grain.transforms.RandomMap):
  """Paper 001's augmentation, on RGB so the target colours move with it.

  brightness: additive delta ~ U(-b, b) in [0, 1] units; contrast: factor
  ~ U(1-c, 1+c) around the image mean (as tf.image.adjust_contrast).
  """
  brightness: float = 0.1
  contrast: float = 0.1

  def random_map(self, example, rng):
    image = example['image'].astype(np.float32) / 255.0
    delta = rng.uniform(-self.brightness, self.brightness)
    factor = rng.uniform(1.0 - self.contrast, 1.0 + self.contrast)
    mean = image.mean(axis=(0, 1), keepdims=True)
    image = np.clip((image - mean) * factor + mean + delta, 0.0, 1.0)
    out = dict(example)
    out['image'] = np.rint(image * 255.0).astype(np.uint8)
    return out




@register('keep_full', reads=('image',),
          writes=('l_full', 'ab_full', 'full_hw', 'full_downscaled',
                  'segmentation_full'))
@dataclasses.dataclass
class KeepFullResolution(grain.transforms.Map):
  """Keeps the photo as the user has it, before the model's resize, for the
  full-resolution evaluation protocol: `l_full` [C, C, 1] (L in [0, 100])
  and `ab_full` [C, C, 2] (Lab units) padded with zeros onto a fixed
  `canvas` x `canvas` (batches need one shape), `full_hw` = the real
  (height, width) on the canvas. A photo larger than the canvas is shrunk
  to fit, aspect kept, and flagged in `full_downscaled` (the evaluation
  counts them), so the canvas bounds memory on datasets with huge images.
  A label map, if any, is kept the same way in `segmentation_full`.
  canvas 0: no canvas, the photo at its own size and aspect (one photo per
  batch), never shrunk.
  """
  canvas: int

  def map(self, example):
    image = example['image']
    h, w = image.shape[:2]
    scale = 1.0 if not self.canvas else min(1.0, self.canvas / max(h, w))
    if scale < 1.0:
      h, w = max(1, round(h * scale)), max(1, round(w * scale))
      image = _resize(image, h, w, False)
    lab = lab_lib.rgb_to_lab_numpy(image.astype(np.float32) / 255.0)
    rows, cols = (self.canvas, self.canvas) if self.canvas else (h, w)
    padded = np.zeros((rows, cols, 3), np.float32)
    padded[:h, :w] = lab
    out = dict(example)
    out['l_full'] = padded[..., :1]
    out['ab_full'] = padded[..., 1:]
    out['full_hw'] = np.array([h, w], np.int32)
    out['full_downscaled'] = np.float32(scale < 1.0)
    if 'segmentation' in example:
      labels = example['segmentation']
      if labels.shape[:2] != (h, w):
        labels = _resize(labels, h, w, True)
      full = np.zeros((rows, cols, 1), labels.dtype)
      full[:h, :w] = labels.reshape(h, w, 1)
      out['segmentation_full'] = full
    return out
