"""semantic_shapes: an embedded, generated dataset where semantics decide colour.

Why it exists: real datasets cannot be downloaded here, and a useful stand-in
must reward exactly what the five papers claim: using semantics.
  * Luminance says nothing about class: every region draws its lightness
    from the same range, L ~ U(40, 70) plus a +-7 texture, so gray levels of all classes overlap.
  * Shape and texture (carried by L) say which class a region is, so a
    network can recover semantics from the gray image; labels are exact
    (hard masks, no anti-aliasing, lossless PNG).
  * Chroma is decided by the class, not by L. Some classes are multi-modal
    (two or three plausible colours), so an L2 regressor averages them
    towards gray while distribution / sampling models stay vivid.
Deterministic: scene i of a split depends only on (seed, split, i).

Version 2.0.0 adds scene types (day, sunset, autumn; feature `scene`),
because paper 001's scene-context head needs scene types that decide the
colours of all classes jointly: the same class takes another palette in
another scene type, and which scene type an image shows is only visible
through global cues of its background (the sky's gradient runs downwards
at sunset, autumn grass has a coarse texture), which a model can use only
through global context. Lightness and each class's texture stay as in
1.0.0, which is still prepared bit-identically (`version='1.0.0'`).
"""

import dataclasses
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow_datasets as tfds

from colorjax.color.lab import lab_to_rgb_numpy
from colorjax.datasets import base
from colorjax.datasets import classes
from colorjax.datasets import imaging


class ShapeClass(NamedTuple):
  name: str
  modes: Tuple[Tuple[float, float], ...]   # plausible (a, b) colours
  weights: Tuple[float, ...]               # probability of each mode
  texture: str


# Modes are chosen inside the sRGB gamut for every lightness the scenes use
# (L in [33, 77]), so 8-bit rounding, not gamut clipping, is the only change.
CLASSES: List[ShapeClass] = [
    ShapeClass('sky', ((-5.0, -32.0), (22.0, 36.0)), (0.7, 0.3), 'gradient'),
    ShapeClass('grass', ((-38.0, 38.0),), (1.0,), 'noise'),
    ShapeClass('ball', ((40.0, 28.0), (8.0, -40.0)), (0.5, 0.5), 'radial'),
    ShapeClass('box', ((2.0, 45.0),), (1.0,), 'checker'),
    ShapeClass('flower', ((45.0, -25.0), (0.0, 45.0), (-25.0, -15.0)),
               (1 / 3, 1 / 3, 1 / 3), 'diagonal'),
    ShapeClass('bar', ((28.0, -36.0),), (1.0,), 'stripes'),
    ShapeClass('fish', ((28.0, 42.0), (-30.0, 10.0)), (0.6, 0.4), 'dots'),
]
CLASS_NAMES = tuple(c.name for c in CLASSES)
assert CLASS_NAMES == classes.SEMANTIC_SHAPES
OBJECT_CLASSES = tuple(range(2, len(CLASSES)))
LIGHTNESS_RANGE = (40.0, 70.0)
CHROMA_JITTER = 3.0       # per-instance std of (a, b) around the mode
TEXTURE_AMPLITUDE = 7.0

# Version 2.0.0: scene types. The sky and grass textures of each (every
# other class's texture is the same in all scenes) make the scene type
# recognisable from the gray image, through the background only.
SCENE_NAMES = ('day', 'sunset', 'autumn')
assert SCENE_NAMES == classes.SEMANTIC_SCENES
SCENE_TEXTURES = (('gradient', 'noise'),            # (sky, grass)
                  ('inverted_gradient', 'noise'),
                  ('gradient', 'coarse_noise'))
COARSE_NOISE_BLOCK = 4    # autumn grass: noise constant over 4x4 blocks


class Palette(NamedTuple):
  modes: Tuple[Tuple[float, float], ...]   # plausible (a, b) colours
  weights: Tuple[float, ...]               # probability of each mode


# The (a, b) colours of version 1's CLASSES (in gamut for L in [33, 77]).
_BLUE, _VIOLET, _PURPLE = (-5.0, -32.0), (8.0, -40.0), (28.0, -36.0)
_MAGENTA, _RED, _ORANGE = (45.0, -25.0), (40.0, 28.0), (22.0, 36.0)
_AMBER, _YELLOW, _GREEN = (28.0, 42.0), (2.0, 45.0), (-38.0, 38.0)
_SEA_GREEN, _TEAL = (-30.0, 10.0), (-25.0, -15.0)


def _one(ab):
  return Palette((ab,), (1.0,))


def _two(ab1, ab2):
  return Palette((ab1, ab2), (0.5, 0.5))


# SCENE_PALETTES[scene_id][class_id]: the colours of a class in a scene
# type. Every class takes other colours in each scene (sky: blue, orange,
# violet; day's and autumn's skies are the closest pair, 16 (a, b) units
# apart); every colour serves several classes across scenes, so neither the
# class nor the scene alone decides a colour. Within a scene the 8 colours
# are >= 20 units apart. Flower stays bimodal (0.5/0.5, modes >= 70 apart)
# in every scene.
SCENE_PALETTES: Tuple[Tuple[Palette, ...], ...] = (
    # day:    sky, grass, ball, box, flower, bar, fish
    (_one(_BLUE), _one(_GREEN), _one(_RED), _one(_YELLOW),
     _two(_MAGENTA, _TEAL), _one(_PURPLE), _one(_SEA_GREEN)),
    # sunset
    (_one(_ORANGE), _one(_SEA_GREEN), _one(_VIOLET), _one(_PURPLE),
     _two(_RED, _GREEN), _one(_YELLOW), _one(_TEAL)),
    # autumn
    (_one(_VIOLET), _one(_AMBER), _one(_GREEN), _one(_SEA_GREEN),
     _two(_YELLOW, _PURPLE), _one(_TEAL), _one(_MAGENTA)),
)
assert len(SCENE_PALETTES) == len(SCENE_NAMES)
assert all(len(p) == len(CLASSES) for p in SCENE_PALETTES)


def _texture(kind: str, yy, xx, size: int, rng: np.random.Generator):
  """Zero-centred lightness pattern in [-1, 1] identifying a class."""
  period = max(size / 8.0, 3.0) * rng.uniform(0.8, 1.25)
  k = 2.0 * np.pi / period
  phase = rng.uniform(0, 2 * np.pi)
  if kind == 'gradient':
    return 2.0 * (yy / size) - 1.0
  if kind == 'inverted_gradient':     # version 2: sunset sky
    return 1.0 - 2.0 * (yy / size)
  if kind == 'noise':
    return rng.uniform(-1.0, 1.0, yy.shape)
  if kind == 'coarse_noise':          # version 2: autumn grass
    b = COARSE_NOISE_BLOCK
    coarse = rng.uniform(-1.0, 1.0, (-(-yy.shape[0] // b),
                                     -(-yy.shape[1] // b)))
    return np.repeat(np.repeat(coarse, b, 0), b, 1)[:yy.shape[0],
                                                     :yy.shape[1]]
  if kind == 'checker':
    return np.sign(np.sin(k * xx + phase) * np.sin(k * yy + phase) + 1e-9)
  if kind == 'diagonal':
    return np.sign(np.sin(k * (xx + yy) / np.sqrt(2.0) + phase) + 1e-9)
  if kind == 'stripes':
    return np.sign(np.sin(k * yy + phase) + 1e-9)
  if kind == 'dots':
    return np.where(np.sin(k * xx + phase) * np.sin(k * yy) > 0.5, 1.0, -1.0)
  raise ValueError(kind)


def _shape_mask(class_id: int, yy, xx, size: int, rng: np.random.Generator):
  """Mask and normalised radius of one object instance."""
  cy, cx = rng.uniform(0.2, 0.8, 2) * size
  radius = rng.uniform(0.12, 0.25) * size
  dy, dx = yy - cy, xx - cx
  name = CLASSES[class_id].name
  if name == 'ball':
    r = np.sqrt(dy ** 2 + dx ** 2) / radius
    return r <= 1.0, r
  if name == 'box':
    r = np.maximum(np.abs(dy), np.abs(dx)) / radius
    return r <= 0.8, r
  if name == 'flower':      # upward triangle
    inside = (dy <= radius * 0.6) & (np.abs(dx) <= (dy + radius) * 0.6)
    return inside & (dy >= -radius), None
  if name == 'bar':         # wide flat rectangle
    return (np.abs(dy) <= radius * 0.35) & (np.abs(dx) <= radius * 1.3), None
  if name == 'fish':        # horizontal ellipse
    r = np.sqrt((dy / (0.55 * radius)) ** 2 + (dx / (1.2 * radius)) ** 2)
    return r <= 1.0, r
  raise ValueError(name)


def _instance_chroma(class_id: int, rng: np.random.Generator,
                     scene_id: Optional[int] = None):
  """A colour of the class (in scene type `scene_id`; None: version 1)."""
  palette = (CLASSES[class_id] if scene_id is None
             else SCENE_PALETTES[scene_id][class_id])
  mode = rng.choice(len(palette.modes), p=palette.weights)
  return np.asarray(palette.modes[mode]) + rng.normal(0.0, CHROMA_JITTER, 2)


def render_scene(rng: np.random.Generator, size: int):
  """One version-1 scene: (uint8 RGB [size, size, 3], uint8 labels
  [size, size])."""
  return _render(rng, size, None)


def render_scene_v2(rng: np.random.Generator, size: int):
  """One version-2 scene: (RGB, labels, scene id); the scene type is drawn
  uniformly first."""
  scene_id = int(rng.integers(len(SCENE_NAMES)))
  rgb, labels = _render(rng, size, scene_id)
  return rgb, labels, scene_id


def _render(rng: np.random.Generator, size: int, scene_id: Optional[int]):
  """scene_id None draws exactly what version 1 drew (same rng calls)."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
  lab = np.zeros((size, size, 3))
  labels = np.zeros((size, size), np.uint8)

  def paint(mask, class_id, r=None):
    lightness = rng.uniform(*LIGHTNESS_RANGE)
    texture = CLASSES[class_id].texture
    if scene_id is not None and class_id < 2:   # sky, grass
      texture = SCENE_TEXTURES[scene_id][class_id]
    if texture == 'radial':   # shading from the centre
      pattern = 1.0 - 2.0 * np.clip(r, 0, 1)
    else:
      pattern = _texture(texture, yy, xx, size, rng)
    lab[mask, 0] = lightness + TEXTURE_AMPLITUDE * pattern[mask]
    lab[mask, 1:] = _instance_chroma(class_id, rng, scene_id)
    labels[mask] = class_id

  horizon = size * rng.uniform(0.3, 0.7)
  wave = 0.05 * size * np.sin(2 * np.pi * (xx / size * rng.uniform(0.5, 2.0))
                              + rng.uniform(0, 2 * np.pi))
  sky = yy < horizon + wave
  paint(sky, 0)
  paint(~sky, 1)
  for _ in range(rng.integers(1, 4)):
    class_id = int(rng.choice(OBJECT_CLASSES))
    mask, r = _shape_mask(class_id, yy, xx, size, rng)
    if mask.sum() >= 4:
      paint(mask, class_id, r)
  rgb = np.rint(lab_to_rgb_numpy(lab) * 255.0).astype(np.uint8)
  return rgb, labels


_SPLIT_OFFSETS = {'train': 0, 'validation': 1, 'test': 2}


def scene(seed: int, split: str, index: int, size: int, version: int = 1):
  """Scene `index` of `split` of dataset version `version` (major): a pure
  function of its arguments. Version 1: (rgb, labels); version 2: (rgb,
  labels, scene id)."""
  rng = np.random.default_rng([seed, _SPLIT_OFFSETS[split], index])
  if version == 1:
    return render_scene(rng, size)
  if version == 2:
    return render_scene_v2(rng, size)
  raise ValueError(f'semantic_shapes has no version {version} (1, 2)')


@dataclasses.dataclass
class SemanticShapesConfig(tfds.core.BuilderConfig):
  image_size: int = 64
  num_train: int = 4096
  num_validation: int = 256
  num_test: int = 256
  seed: int = 0


class SemanticShapes(tfds.core.GeneratorBasedBuilder):
  """Generated scenes; configs `64` (demos, tests) and `256` (benchmarks)."""

  VERSION = tfds.core.Version('2.0.0')
  SUPPORTED_VERSIONS = [tfds.core.Version('1.0.0')]
  RELEASE_NOTES = {
      '2.0.0': 'scene types (day, sunset, autumn) recognisable from the '
               'gray image decide the palette of every class jointly; new '
               'feature `scene`',
      '1.0.0': 'classes decide colour; shape and texture carry the class, '
               'lightness does not',
  }
  BUILDER_CONFIGS = [
      SemanticShapesConfig(name='64', image_size=64),
      SemanticShapesConfig(name='128', image_size=128, num_train=2048),
      SemanticShapesConfig(name='256', image_size=256, num_train=1024,
                           num_validation=128, num_test=128),
  ]

  @property
  def _scenes(self) -> bool:
    return self.version.major >= 2

  def _info(self):
    features = base.features(CLASS_NAMES)
    if self._scenes:
      features = tfds.features.FeaturesDict({
          **features, 'scene': tfds.features.ClassLabel(names=SCENE_NAMES)})
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=features,
        metadata=tfds.core.MetadataDict(num_classes=len(CLASS_NAMES),
                                        ignore_label=None, skipped={}),
    )

  def download_and_prepare(self, *args, **kwargs):
    """Prepares any supported version, not only the newest.

    tfds generates only the default version, lest old versions be made by
    newer code by accident. This generator branches on the version and
    still makes 1.0.0 bit-identically (tests pin its content), so each
    supported version may be prepared: tfds checks the requested version
    against `canonical_version`, which is set to it here.
    """
    self.__dict__['canonical_version'] = self.version  # a cached_property
    return super().download_and_prepare(*args, **kwargs)

  def _split_generators(self, dl_manager):
    del dl_manager
    config = self.builder_config
    return {split: self._generate_examples(split, count)
            for split, count in (('train', config.num_train),
                                 ('validation', config.num_validation),
                                 ('test', config.num_test)) if count > 0}

  def _generate_examples(self, split, count):
    config = self.builder_config
    for index in range(count):
      rgb, labels, *scene_id = scene(config.seed, split, index,
                                     config.image_size, self.version.major)
      example_id = f'{split}_{index:06d}'
      example = {
          'image': imaging.encode_png(rgb),
          'segmentation': imaging.encode_png(labels),
          'labels': base.image_level_labels(labels, len(CLASS_NAMES), None),
          'id': example_id,
      }
      if self._scenes:
        example['scene'] = scene_id[0]
      yield example_id, example
