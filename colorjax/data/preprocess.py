"""Per-example preprocessing ops, composed from a config string.

A pipeline is written as in big_vision, e.g.
    "resize_short(286)|random_crop(256)|flip|equalize_l|to_lab|normalize_lab"
Each op is a grain transform acting on the example dict. Ops that change the
geometry treat `image` and `segmentation` together (nearest neighbour for
labels), so the two always stay aligned. Random ops draw from the
per-record numpy Generator grain hands them, which makes every epoch
reproducible and resumable from the iterator state.

All ops run on the host in numpy/PIL: JAX is never called inside the
(forked) data workers.
"""

import ast
import dataclasses
import re
from typing import Callable, Dict, List, Optional, Sequence

import grain
import numpy as np
from PIL import Image

from colorjax.color import lab as lab_lib
from colorjax.color import quantize

Example = Dict[str, np.ndarray]
_OPS: Dict[str, Callable[..., grain.transforms.Transformation]] = {}


def register(name: str, reads: Sequence[str], writes: Sequence[str] = ()):
  """Registers an op under `name`, with the keys it needs (`reads`) and
  the keys it adds or changes (`writes`); geometry ops also move an
  optional `segmentation`. Names must be unique."""
  def wrap(cls):
    if name in _OPS:
      raise ValueError(f'preprocessing op {name!r} is registered twice '
                       f'({_OPS[name].__name__} and {cls.__name__})')
    cls.op_name, cls.reads, cls.writes = name, tuple(reads), tuple(writes)
    _OPS[name] = cls
    return cls
  return wrap


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


@register('to_lab', reads=('image',), writes=('gray', 'l', 'ab'))
@dataclasses.dataclass
class ToLab(grain.transforms.Map):
  """Adds float32 `gray`, `l` [H, W, 1] (L in [0, 100]) and `ab` [H, W, 2].

  `gray` is the network input (later ops may equalise or normalise it);
  `l` keeps the true lightness for losses, metrics and recombination.
  """

  def map(self, example):
    lab = lab_lib.rgb_to_lab_numpy(example['image'].astype(np.float32) / 255.0)
    out = dict(example)
    out['gray'] = lab[..., :1].astype(np.float32)
    out['l'] = out['gray'].copy()
    out['ab'] = lab[..., 1:].astype(np.float32)
    return out


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


@register('equalize_l', reads=('gray',), writes=('gray',))
@dataclasses.dataclass
class EqualizeLightness(grain.transforms.Map):
  """Equalises the network input `gray` only; the target `ab` is untouched."""
  bins: int = 256

  def map(self, example):
    out = dict(example)
    out['gray'] = equalize_lightness(example['gray'], self.bins)
    return out


@register('normalize_lab', reads=('gray',), writes=('gray', 'ab', 'ab_small'))
@dataclasses.dataclass
class NormalizeLab(grain.transforms.Map):
  """Maps L [0, 100] -> [l_low, l_high] and ab -> ab / ab_scale.

  Defaults give L in [-1, 1] and ab roughly in [-1, 1] (|ab| <= 110 in sRGB).
  """
  l_low: float = -1.0
  l_high: float = 1.0
  ab_scale: float = 110.0

  def map(self, example):
    out = dict(example)
    out['gray'] = (example['gray'] / 100.0 * (self.l_high - self.l_low)
                   + self.l_low).astype(np.float32)
    for key in ('ab', 'ab_small'):
      if key in example:
        out[key] = (example[key] / self.ab_scale).astype(np.float32)
    return out


@register('downsample_targets', reads=('ab',),
          writes=('ab_small', 'segmentation_small'))
@dataclasses.dataclass
class DownsampleTargets(grain.transforms.Map):
  """Adds `ab_small` (mean over factor x factor blocks, Lab units) and
  `segmentation_small` (the label at each block's centre): the targets of
  models that predict colour at a lower resolution (paper 004: 1/4)."""
  factor: int = 4

  def map(self, example):
    f = self.factor
    h, w = example['ab'].shape[:2]
    if h % f or w % f:
      raise ValueError(f'downsample_targets({f}) on a {h}x{w} image')
    out = dict(example)
    out['ab_small'] = example['ab'].reshape(h // f, f, w // f, f, 2).mean(
        axis=(1, 3)).astype(np.float32)
    if 'segmentation' in example:
      out['segmentation_small'] = example['segmentation'][f // 2::f,
                                                          f // 2::f]
    return out


def soft_encode_numpy(ab: np.ndarray, k: int = 5, sigma: float = 5.0):
  """numpy twin of `quantize.soft_encode_sparse` for the host pipeline."""
  centres = quantize.ab_gamut_bins()
  flat = ab.reshape(-1, 2).astype(np.float32)
  d2 = np.sum((flat[:, None, :] - centres[None]) ** 2, axis=-1)
  indices = np.argpartition(d2, k - 1, axis=-1)[:, :k]
  nearest = np.take_along_axis(d2, indices, axis=-1)
  order = np.argsort(nearest, axis=-1)      # nearest first, as top_k
  indices = np.take_along_axis(indices, order, axis=-1)
  nearest = np.take_along_axis(nearest, order, axis=-1)
  logits = -(nearest - nearest[:, :1]) / (2.0 * sigma * sigma)
  weights = np.exp(logits)
  weights /= weights.sum(-1, keepdims=True)
  shape = ab.shape[:-1] + (k,)
  return indices.astype(np.int32).reshape(shape), weights.astype(
      np.float32).reshape(shape)


@register('soft_encode', reads=('ab',), writes=('ab_bins', 'ab_weights'))
@dataclasses.dataclass
class SoftEncode(grain.transforms.Map):
  """Adds sparse soft-encoded targets `ab_bins` / `ab_weights` [h, w, k].

  Computed on un-normalised ab (put it before normalize_lab), at the
  resolution `stride` times coarser than the image if the model predicts
  the distribution at a lower resolution (Zhang et al. predict at 1/4).
  """
  k: int = 5
  sigma: float = 5.0
  stride: int = 1

  def map(self, example):
    ab = example['ab'][::self.stride, ::self.stride]
    out = dict(example)
    out['ab_bins'], out['ab_weights'] = soft_encode_numpy(ab, self.k,
                                                          self.sigma)
    return out


@register('remap_labels', reads=('segmentation',),
          writes=('segmentation',))
@dataclasses.dataclass
class RemapLabels(grain.transforms.Map):
  """Applies a label lookup given as {old: new}; others map to `default`.

  e.g. ADE20K 0 'other' -> 255 ignore with 1..150 -> 0..149:
  remap_labels({0: 255}, shift=-1) ; COCO-Stuff unlabeled as class 182:
  remap_labels({255: 182}).
  """
  mapping: Dict[int, int] = dataclasses.field(default_factory=dict)
  shift: int = 0

  def __post_init__(self):
    lut = np.clip(np.arange(256) + self.shift, 0, 255)
    for old, new in self.mapping.items():
      lut[old] = new
    self._lut = lut.astype(np.uint8)

  def map(self, example):
    out = dict(example)
    out['segmentation'] = self._lut[example['segmentation']]
    return out


@register('keep', reads=())
@dataclasses.dataclass
class Keep(grain.transforms.Map):
  """Keeps only the named keys (batches must hold arrays, not strings)."""
  keys: Sequence[str] = ()

  def map(self, example):
    missing = [k for k in self.keys if k not in example]
    if missing:
      raise KeyError(f'keep{tuple(self.keys)}: example has no {missing}; it '
                     f'has {sorted(example)}')
    return {k: example[k] for k in self.keys}


@register('multi_hot', reads=('labels',), writes=('labels',))
@dataclasses.dataclass
class MultiHotLabels(grain.transforms.Map):
  """Image-level class list -> float32 multi-hot [num_classes]."""
  num_classes: int

  def map(self, example):
    out = dict(example)
    hot = np.zeros(self.num_classes, np.float32)
    labels = np.asarray(example['labels'], np.int64)
    hot[labels[(labels >= 0) & (labels < self.num_classes)]] = 1.0
    out['labels'] = hot
    return out


_OP_PATTERN = re.compile(r'^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$', re.S)


def _parse_args(text: str):
  if not text or not text.strip():
    return (), {}
  call = ast.parse(f'f({text})', mode='eval').body
  args = tuple(ast.literal_eval(a) for a in call.args)
  kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
  return args, kwargs


def parse(spec: str) -> List[grain.transforms.Transformation]:
  """'op(args)|op|...' -> list of grain transforms (literal args only)."""
  ops = []
  for part in _split_top_level(spec):
    match = _OP_PATTERN.match(part)
    if not match or match.group(1) not in _OPS:
      raise ValueError(f'unknown preprocessing op {part.strip()!r}; known: '
                       f'{sorted(_OPS)}')
    args, kwargs = _parse_args(match.group(2))
    ops.append(_OPS[match.group(1)](*args, **kwargs))
  return ops


def _split_top_level(spec: str) -> List[str]:
  """Splits on '|' outside brackets (args may hold dicts and tuples)."""
  parts, depth, current = [], 0, []
  for char in spec:
    depth += char in '([{'
    depth -= char in ')]}'
    if char == '|' and depth == 0:
      parts.append(''.join(current))
      current = []
    else:
      current.append(char)
  parts.append(''.join(current))
  return [p for p in parts if p.strip()]


def without_unavailable(ops: Sequence[grain.transforms.Transformation],
                        keys: Sequence[str]):
  """(ops that can run on examples holding `keys`, names of those dropped).

  An unlabeled photo folder has only `image`: label ops (remap_labels,
  multi_hot, ...) are dropped, colour ops kept, in order.
  """
  available, kept, dropped = set(keys), [], []
  for op in ops:
    if set(op.reads) <= available:
      kept.append(op)
      available |= set(op.writes)
    else:
      dropped.append(op.op_name)
  return kept, dropped


def apply(ops: Sequence[grain.transforms.Transformation], example: Example,
          rng: Optional[np.random.Generator] = None) -> Example:
  """Runs ops eagerly on one example (tests, colorize CLI, baselines)."""
  rng = rng or np.random.default_rng(0)
  for op in ops:
    if isinstance(op, grain.transforms.RandomMap):
      example = op.random_map(example, rng)
    else:
      example = op.map(example)
  return example
