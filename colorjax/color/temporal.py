"""Temporal stability of colorized frame sequences: a filter that keeps
consecutive frames' colours consistent where the scene did not change, and
the flicker metric that measures it.

Colorizing each frame alone makes static regions flicker: the network sees
a moving object, a little noise or a compression artifact and predicts a
slightly different colour for a wall that did not change. `Stabilizer` is
a recursive filter of the predicted ab at the network's resolution, gated
by how much L changed at each pixel since the previous frame:

  ab'_t = ab_t + s * w * (ab'_{t-1} - ab_t),   w = exp(-dL^2 / 2 sigma^2)

with dL = L_t - L_{t-1} (L at the network's resolution). Where L is
unchanged (w ~ 1) the colour is an exponential average over the last
~1 / (1 - s) frames; where something moved or the camera cut (dL >> sigma,
w ~ 0) the frame's own prediction is kept: no ghosting trails.

`flicker` is the mean ab change (Euclidean, Lab units) between consecutive
frames over the pixels whose L changed by less than `static` L units: the
colour change that nothing in the image explains.
"""

from typing import Dict, Iterable, Optional

import numpy as np
from scipy import ndimage

# s: the previous frame's weight where L is unchanged (about 5 frames).
STRENGTH = 0.8
# sigma of the L-change gate, in L units (L in [0, 100]): above sensor
# noise and compression (1-2 units), far below an object's edge moving by.
SIGMA = 3.0
# dL is the largest change within this many network pixels: the network's
# prediction next to a moving object changes with it (its receptive field
# sees it), so those pixels are not averaged either.
RADIUS = 2
# The flicker metric's "L did not change": |dL| below this, in L units.
STATIC = 2.0


class Stabilizer:
  """The recursive filter over one sequence; call it frame by frame in
  order. A frame of another size (a new shot) restarts it."""

  def __init__(self, strength: float = STRENGTH, sigma: float = SIGMA,
               radius: int = RADIUS):
    if not 0.0 <= strength < 1.0:
      raise ValueError(f'strength must be in [0, 1), not {strength}')
    self.strength = strength
    self.sigma = sigma
    self.radius = radius
    self._previous = None

  def __call__(self, ab: np.ndarray, lightness: np.ndarray) -> np.ndarray:
    """ab [..., h, w, 2] (e.g. [samples, h, w, 2]) and L [h, w, 1] of one
    frame at the network's resolution -> the stabilised ab."""
    ab = np.asarray(ab, np.float32)
    lightness = np.asarray(lightness, np.float32)
    if self._previous is not None and self._previous[0].shape == ab.shape:
      previous_ab, previous_l = self._previous
      change = np.abs(lightness - previous_l)
      if self.radius:
        change = ndimage.maximum_filter(
            change, size=(2 * self.radius + 1, 2 * self.radius + 1, 1))
      gate = np.exp(-np.square(change) / (2.0 * self.sigma ** 2))
      ab = ab + self.strength * gate * (previous_ab - ab)
    self._previous = (ab, lightness)
    return ab


def flicker(lab_frames: Iterable[np.ndarray], static: float = STATIC,
            reference: Optional[Iterable[np.ndarray]] = None
            ) -> Dict[str, float]:
  """Lab frames [H, W, 3] in order -> {'flicker': mean over consecutive
  pairs of the mean ab change over static pixels, 'static_fraction',
  'frame_pairs', 'frames'}; with `reference` (the true Lab frames), also
  'ab_error': the mean ab distance to them per pixel, over all frames.
  Static pixels are decided on `reference`'s L when given (the truth),
  else on the frames' own."""
  changes, fractions, errors = [], [], []
  previous = previous_truth = None
  references = iter(reference) if reference is not None else None
  count = 0
  for frame in lab_frames:
    frame = np.asarray(frame, np.float64)
    truth = (np.asarray(next(references), np.float64)
             if references is not None else None)
    if truth is not None:
      errors.append(np.sqrt(np.sum(np.square(frame[..., 1:] - truth[..., 1:]),
                                   -1)).mean())
    guide = truth if truth is not None else frame
    if previous is not None and previous.shape == frame.shape:
      still = np.abs(guide[..., 0] - previous_truth[..., 0]) < static
      if still.any():
        change = np.sqrt(np.sum(np.square(frame[..., 1:] - previous[..., 1:]),
                                -1))
        changes.append(change[still].mean())
      fractions.append(still.mean())
    previous, previous_truth = frame, guide
    count += 1
  result = {'flicker': float(np.mean(changes)) if changes else 0.0,
            'static_fraction': float(np.mean(fractions)) if fractions
                               else 0.0,
            'frame_pairs': len(fractions), 'frames': count}
  if errors:
    result['ab_error'] = float(np.mean(errors))
  return result
