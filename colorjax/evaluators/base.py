"""The evaluator interface: what it needs, what it computes per batch.

An evaluator names the batch keys and the `predict` outputs it needs, so a
segmentation-only network or an unlabeled photo folder can be evaluated by
the evaluators that make sense for them. The runner (colorjax.evaluation)
reads each dataset once per evaluation and runs `predict` once per batch
for all the evaluators sharing that data.
"""

from typing import Any, Dict, Optional, Tuple

import jax
import numpy as np

from colorjax import color
from colorjax import sharding

# Colours of label maps in summaries and colorize's segmentation PNGs.
PALETTE = np.random.default_rng(7).integers(40, 256, (256, 3)).astype(
    np.uint8)


def to_rgb(lightness, ab, ab_scale: float):
  """True L [0, 100] + normalised ab -> sRGB [0, 1]."""
  return color.lab_to_rgb(color.join_lab(lightness, ab, ab_scale))


def resize_like(x, reference):
  """Bilinear resize of a [N, h, w, C] map to `reference`'s [N, H, W]."""
  if x.shape[1:3] == reference.shape[1:3]:
    return x
  return jax.image.resize(x, reference.shape[:3] + x.shape[3:], 'bilinear')


class Evaluator:
  """Base class. Subclasses set the `needs_*` and write `batch_metrics`.

  cfg: this evaluator's entry of `config.evals` (type, every_steps, ...).
  """
  needs_keys: Tuple[str, ...] = ()      # batch keys
  needs_outputs: Tuple[str, ...] = ()   # keys of method.predict's output
  needs_predict: bool = True            # False: calls the method itself

  def __init__(self, name: str, cfg, method, config, mesh):
    self.name = name
    self.cfg = cfg
    self.method = method
    self.config = config
    self.mesh = mesh
    self.ab_scale = config.data.ab_scale
    self._jitted = jax.jit(self.batch_metrics,
                           out_shardings=sharding.replicated(mesh))
    self._totals = None

  def unavailable(self, outputs) -> Optional[str]:
    """Why this evaluator cannot run on this method, or None."""
    missing = [k for k in self.needs_outputs if k not in outputs]
    if missing:
      return (f'{self.config.method} predicts {sorted(outputs)}, not '
              f'{missing}')
    return None

  def batch_metrics(self, state, batch, outputs, rng):
    """A clu Collection of one batch (runs under jit; batch['mask'] > 0
    marks the real images of a padded batch)."""
    raise NotImplementedError

  def start(self):
    self._totals = None

  def update(self, state, batch, outputs, rng, index: int):
    del index
    metrics = jax.device_get(self._jitted(state, batch, outputs, rng))
    self._totals = metrics if self._totals is None else self._totals.merge(
        metrics)

  def finish(self, writer=None, step: Optional[int] = None,
             samples_dir: Optional[str] = None) -> Dict[str, Any]:
    del writer, step, samples_dir
    if self._totals is None:
      return {}
    return {k: float(v) for k, v in self._totals.compute().items()}
