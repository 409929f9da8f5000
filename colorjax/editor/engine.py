"""What the editor's web server asks of a model (one loaded workdir).

The server (colorjax.editor.server) knows nothing about methods: it talks to
an `Engine`. `WorkdirEngine` (below) serves a trained workdir; tests may pass
any object with the same attributes and methods.
"""

from typing import List, Optional, Protocol, Sequence

import numpy as np

from colorjax import colorize
from colorjax.color import palette
from colorjax.datasets import catalog


class Engine(Protocol):
  """A loaded model, ready to colorize (jitted once, reused per request)."""

  method: str                  # config.method, e.g. 'semanticdriven'
  class_names: Sequence[str]   # index -> name of the segmentation classes
  palette: np.ndarray          # uint8 [num_classes, 3]: overlay colours
  # 'edit': the colours follow a semantic map the user may repaint
  #         (segment + colorize); 'sample': a sampling method (samples +
  #         temperature); 'view': neither (colorize only).
  mode: str

  def segment(self, rgb: np.ndarray) -> Optional[np.ndarray]:
    """uint8 [H, W, 3] photo -> uint8 [H, W] predicted label map at the
    photo's resolution, or None when the model predicts no segmentation."""

  def colorize(self, rgb: np.ndarray,
               labels: Optional[np.ndarray] = None) -> np.ndarray:
    """uint8 [H, W, 3] photo (its lightness is used) and, in 'edit' mode, a
    uint8 [h, w] label map of any resolution (nearest-neighbour resized) ->
    uint8 [H, W, 3] colorization at the photo's resolution. labels=None:
    the model's own predicted map."""

  def sample(self, rgb: np.ndarray, num_samples: int,
             temperature: Optional[float] = None,
             seed: int = 0) -> List[np.ndarray]:
    """'sample' mode: num_samples uint8 [H, W, 3] colorizations."""


class WorkdirEngine:
  """A trained workdir behind the editor: its latest checkpoint, restored
  once, with the jitted predict / sample of `colorjax.colorize.Colorizer`
  (the same code path as the `colorize` command)."""

  def __init__(self, workdir: Optional[str], restored=None):
    """restored: (config, method, state) instead of a workdir (benchmarks
    time an untrained paper-size model this way)."""
    self._colorizer = colorize.Colorizer(workdir, restored=restored)
    config = self._colorizer.config
    self.method = config.method
    num_classes = config.data.get('num_classes') or 0
    names = catalog.lookup(config.data.dataset).get('class_names') or ()
    self.class_names = tuple(names)[:num_classes] or tuple(
        f'class {i}' for i in range(num_classes))
    self.palette = palette.PALETTE[:len(self.class_names)]
    self.mode = ('sample' if self._colorizer.samples else
                 'edit' if self._colorizer.takes_map else 'view')
    self._last = None    # (photo, options) -> the run's result; see _run

  def _run(self, rgb, labels=None, **kwargs):
    # One model run serves an upload's segment() and colorize() of the
    # same photo: the last map-less run is kept, with the photo array
    # itself (an identity check, not a hash of megapixels). Only a
    # read-only array (the server's uploads) is kept: a writeable one could
    # change in place under the same identity.
    key = (rgb, tuple(sorted(kwargs.items())))
    if labels is None and self._last is not None and (
        self._last[0][0] is rgb and self._last[0][1] == key[1]):
      return self._last[1]
    frozen = isinstance(rgb, np.ndarray) and not rgb.flags.writeable
    photo = self._colorizer.photo(np.asarray(rgb, np.uint8), '', labels)
    ab, predicted = self._colorizer.predict([photo], **kwargs)
    result = photo, ab[0], None if predicted is None else predicted[0]
    self._last = (key, result) if labels is None and frozen else None
    return result

  def segment(self, rgb):
    photo, _, labels = self._run(rgb)
    if labels is None:
      return None
    return self._colorizer.labels_at_photo_size(photo, labels)

  def colorize(self, rgb, labels=None):
    photo, ab, _ = self._run(rgb, labels)
    return self._colorizer.to_rgb(photo, ab[0])

  def sample(self, rgb, num_samples, temperature=None, seed=0):
    photo, ab, _ = self._run(rgb, num_samples=num_samples,
                             temperature=temperature, seed=seed)
    return [self._colorizer.to_rgb(photo, s) for s in ab]
