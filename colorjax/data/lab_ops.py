"""Lab ops: the network input `gray`, the true lightness `l` and the
target `ab`, their equalisation and normalisation (maths in colorjax.color);
and `rgb`, the float colour input of networks that see colour."""

import dataclasses

import grain
import numpy as np

from colorjax.data.registry import register

from colorjax.color import lab as lab_lib


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


@register('equalize_l', reads=('gray',), writes=('gray',))
@dataclasses.dataclass
class EqualizeLightness(grain.transforms.Map):
  """Equalises the network input `gray` only; the target `ab` is untouched."""
  bins: int = 256

  def map(self, example):
    out = dict(example)
    out['gray'] = lab_lib.equalize_lightness(example['gray'], self.bins)
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


@register('to_rgb', reads=('image',), writes=('rgb',))
@dataclasses.dataclass
class ToRGB(grain.transforms.Map):
  """Adds float32 `rgb` [H, W, 3] = image / 255 in [0, 1]: the input of
  networks that see colour (the reference segmenter).

  gray=True: the image's gray version as RGB instead, Lab (L, 0, 0) ->
  sRGB (R = G = B), what a colour network sees of a gray-scale photo.
  """
  gray: bool = False

  def map(self, example):
    out = dict(example)
    rgb = example['image'].astype(np.float32) / 255.0
    if self.gray:
      lab = lab_lib.rgb_to_lab_numpy(rgb)
      lab[..., 1:] = 0.0
      rgb = np.clip(lab_lib.lab_to_rgb_numpy(lab), 0.0, 1.0)
    out['rgb'] = rgb.astype(np.float32)
    return out
