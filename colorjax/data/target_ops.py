"""Target ops: lower-resolution targets, soft-encoded ab bins, label
remapping, image-level labels, scene targets."""

import dataclasses
from typing import Dict

import grain
import numpy as np

from colorjax.data.registry import register

from colorjax.color import quantize


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
    out['ab_bins'], out['ab_weights'] = quantize.soft_encode_numpy(ab, self.k,
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


@register('multi_hot', reads=('labels',), writes=('labels',))
@dataclasses.dataclass
class MultiHotLabels(grain.transforms.Map):
  """Image-level class list -> float32 multi-hot [num_classes - first].

  `first` drops the classes below it and shifts the others down (VOC's
  background 0 is not an image tag: `multi_hot(21, first=1)` gives the 20
  object classes).
  """
  num_classes: int
  first: int = 0

  def map(self, example):
    out = dict(example)
    hot = np.zeros(self.num_classes - self.first, np.float32)
    labels = np.asarray(example['labels'], np.int64)
    hot[labels[(labels >= self.first) & (labels < self.num_classes)]
        - self.first] = 1.0
    out['labels'] = hot
    return out


@register('scene_one_hot', reads=('scene',), writes=('scene',))
@dataclasses.dataclass
class SceneOneHot(grain.transforms.Map):
  """Scene target -> float32 [num_scenes].

  An integer scene id (semantic_shapes 2.0.0's `scene`) becomes a one-hot
  vector; a vector already [num_scenes] (a soft label joined from
  colorjax.datasets.scene_labels) passes through as float32.
  """
  num_scenes: int

  def map(self, example):
    scene = np.asarray(example['scene'])
    out = dict(example)
    if scene.ndim == 0 and np.issubdtype(scene.dtype, np.integer):
      if not 0 <= int(scene) < self.num_scenes:
        raise ValueError(f'scene_one_hot({self.num_scenes}): scene id '
                         f'{int(scene)} is out of range')
      hot = np.zeros(self.num_scenes, np.float32)
      hot[int(scene)] = 1.0
      out['scene'] = hot
    elif scene.shape == (self.num_scenes,):
      out['scene'] = scene.astype(np.float32)
    else:
      raise ValueError(
          f'scene_one_hot({self.num_scenes}): `scene` must be an integer '
          f'scene id or a [{self.num_scenes}] vector of scene probabilities; '
          f'got shape {scene.shape}, dtype {scene.dtype}')
    return out


@register('semantic_map', reads=('segmentation',), writes=('semantic_map',))
@dataclasses.dataclass
class SemanticMap(grain.transforms.Map):
  """Adds `semantic_map` = the ground-truth `segmentation`: the map a
  map-conditioned colorizer (paper 002) reads instead of its own
  prediction, e.g. to evaluate it with ground-truth maps."""

  def map(self, example):
    out = dict(example)
    out['semantic_map'] = np.asarray(example['segmentation'])
    return out
