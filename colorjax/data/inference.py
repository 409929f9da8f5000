"""A photo -> model input: the transforms colorize and the full-resolution
evaluation protocol both feed a model (one definition, so what is scored is
what users get).

A photo keeps its aspect where the network allows (`Placement`): its short
side is resized to the model resolution, the long side in proportion, and
the image is padded at the bottom and right (edge pixels repeated) up to
the network's stride multiple; the photo's share of the network's output
(`photo_box`) is resized to the photo's size, the padding's left out,
before the ab goes onto the photo's L.
"""

import dataclasses
from typing import Optional

from colorjax.data import geometry_ops
from colorjax.data import preprocess


@dataclasses.dataclass(frozen=True)
class Placement:
  """A photo inside the network's input: resized to height x width, padded
  to padded_height x padded_width (bottom and right)."""
  height: int
  width: int
  padded_height: int
  padded_width: int

  @property
  def padded(self):
    return (self.padded_height, self.padded_width)


def placement(photo_height: int, photo_width: int, resolution: int,
              multiple: Optional[int]) -> Placement:
  """Where a photo goes in the network's input: its short side at
  `resolution`, the aspect kept, padded up to multiples of `multiple` (the
  method's `input_multiple`); multiple None (a network that takes only its
  square input size): the square resolution x resolution, aspect lost."""
  return Placement(*geometry_ops.aspect_size(photo_height, photo_width,
                                             resolution, multiple))


def photo_box(where: Optional[Placement], rows: int, cols: int):
  """The photo's region in a network output of rows x cols (any
  resolution proportional to the input), as PIL's resize box (left, top,
  right, bottom; fractional): resizing that box to the photo's size crops
  the padding's share exactly, splitting no output pixel."""
  if where is None:
    return (0.0, 0.0, float(cols), float(rows))
  return (0.0, 0.0, cols * where.width / where.padded_width,
          rows * where.height / where.padded_height)


def inference_spec(config, where: Optional[Placement] = None,
                   geometry: Optional[str] = None) -> str:
  """Eval transforms without crop or labels: resize to the model size (a
  `where` placement: its size; or the `geometry` ops given, e.g.
  'resize_aspect(256, 32)'), then exactly what evaluation does from
  `to_lab` on (equalise, normalise), then (a placement) the padding to its
  padded size -- last, so image-wide ops see the photo alone. The
  full-resolution evaluation protocol feeds the model this too."""
  size = config.data.image_size
  parts = [p.strip() for p in config.data.preprocess_eval.split('|')]
  names = [p.split('(')[0] for p in parts]
  if 'to_lab' not in names:
    raise ValueError('data.preprocess_eval has no to_lab op')
  # Training targets are not needed; ops reading what a photo lacks
  # (labels, scene) cannot run.
  targets = ('keep', 'soft_encode', 'downsample_targets')
  tail = [p for p, n in zip(parts[names.index('to_lab'):], names[
      names.index('to_lab'):]) if n not in targets]
  tail, _ = preprocess.without_unavailable(
      [op for part in tail for op in preprocess.parse(part)], ('image',))
  kept = {op.op_name for op in tail}
  geometry = geometry or f'resize({size})'
  padding = []
  if where is not None:
    geometry = f'resize({where.height}, {where.width})'
    if (where.padded_height, where.padded_width) != (where.height,
                                                     where.width):
      padding = [f'pad_to({where.padded_height}, {where.padded_width})']
  return '|'.join([geometry] + [
      p for p in parts[names.index('to_lab'):]
      if p.split('(')[0] in kept] + padding)


def inference_ops(config, where: Optional[Placement] = None):
  return preprocess.parse(inference_spec(config, where))
