"""The evaluator interface: what it needs, what it computes per batch.

An evaluator names the batch keys and the `predict` outputs it needs, so a
segmentation-only network or an unlabeled photo folder can be evaluated by
the evaluators that make sense for them. The runner (colorjax.evaluation)
reads each dataset once per evaluation and runs `predict` once per batch
for all the evaluators sharing that data.
"""

import os
from typing import Any, Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import choices
from colorjax import color
from colorjax import pretrained
from colorjax import sharding



def to_rgb(lightness, ab, ab_scale: float):
  """True L [0, 100] + normalised ab -> sRGB [0, 1]."""
  return color.lab_to_rgb(color.join_lab(lightness, ab, ab_scale))


def resize_like(x, reference):
  """Bilinear resize of a [N, h, w, C] map to `reference`'s [N, H, W]."""
  if x.shape[1:3] == reference.shape[1:3]:
    return x
  return jax.image.resize(x, reference.shape[:3] + x.shape[3:], 'bilinear')


class Scored(NamedTuple):
  """The images a colour metric compares, in the evaluator's protocol.

  l: true L [N, H, W, 1]; ab_true / ab_pred: Lab units [N, H, W, 2];
  mask: [N, H, W] float, 1 on real pixels (padding of the full-resolution
  canvas and of a partial batch is 0); hw: [N, 2] real sizes on the
  full-resolution canvas, None at the model's resolution (whole images).
  """
  l: jax.Array
  ab_true: jax.Array
  ab_pred: jax.Array
  mask: jax.Array
  hw: Optional[jax.Array] = None

  def rgb(self, ab=None):
    """sRGB [0, 1] of L + ab (default: the prediction)."""
    ab = self.ab_pred if ab is None else ab
    return color.lab_to_rgb(jnp.concatenate([self.l, ab], -1))


def upsample_to_canvas(ab, full_hw, canvas, covered=None):
  """Bilinear resize of each [h, w, C] map onto its real (H, W) size at the
  top-left of a canvas x canvas image (what colorize does: ab predicted at
  the model's resolution, upsampled onto the photo's own L). covered [N, 2]:
  the share of the map's rows and columns the photo covers (the rest is
  the network input's padding, left beyond (H, W) and masked); None: all.
  canvas: (rows, cols)."""
  rows, cols = canvas
  if covered is None:
    covered = jnp.ones((ab.shape[0], 2), jnp.float32)

  def one(x, hw, share):
    scale = hw.astype(jnp.float32) / (
        jnp.asarray(x.shape[:2], jnp.float32) * share)
    return jax.image.scale_and_translate(
        x, (rows, cols, x.shape[-1]), (0, 1), scale,
        jnp.zeros(2, jnp.float32), 'linear', antialias=True)
  return jax.vmap(one)(ab.astype(jnp.float32), full_hw,
                       jnp.asarray(covered, jnp.float32))


def covered_share(batch):
  """[N, 2] share of the network input (and of any output map at a
  proportional resolution) that the photo covers: `model_hw` over the
  input's size (None without `model_hw`: all of it)."""
  if 'model_hw' not in batch:
    return None
  size = jnp.asarray(batch['gray'].shape[1:3], jnp.float32)
  return batch['model_hw'].astype(jnp.float32) / size


def canvas_mask(full_hw, canvas):
  """[N, rows, cols] 1 inside each image's real (H, W), else 0 (canvas:
  (rows, cols))."""
  size = canvas
  rows = jnp.arange(size[0])[None, :, None] < full_hw[:, 0, None, None]
  cols = jnp.arange(size[1])[None, None, :] < full_hw[:, 1, None, None]
  return (rows & cols).astype(jnp.float32)


def crop_resize(images, full_hw, size: int, mode: str = 'stretch'):
  """The fixed-size input of a reference network (LPIPS, FID, classifiers,
  segmenters) from each image's real region (the top-left (H, W) of its
  canvas; full_hw None: the whole image), bilinear with antialiasing.

  mode 'stretch': the region resized to size x size (pytorch-fid, LPIPS);
  'center': shorter side resized to size * 8 / 7 (256 for 224), then the
  centre size x size crop (torchvision's classifier evaluation).
  """
  n, height, width = images.shape[:3]
  if full_hw is None:
    full_hw = jnp.broadcast_to(jnp.asarray([height, width], jnp.int32),
                               (n, 2))

  def one(x, hw):
    hw = hw.astype(jnp.float32)
    if mode == 'stretch':
      scale, shift = size / hw, jnp.zeros(2, jnp.float32)
    elif mode == 'center':
      factor = round(size * 8 / 7) / jnp.min(hw)
      scale = jnp.stack([factor, factor])
      shift = (size - hw * scale) / 2.0
    else:
      raise ValueError(f'crop_resize mode {mode!r}')
    return jax.image.scale_and_translate(
        x, (size, size, x.shape[-1]), (0, 1), scale, shift, 'linear',
        antialias=True)
  return jax.vmap(one)(images.astype(jnp.float32), full_hw)


class Evaluator:
  """Base class. Subclasses set the `needs_*` and write `batch_metrics`.

  cfg: this evaluator's entry of `config.evals` (type, every_steps, ...).
  """
  needs_keys: Tuple[str, ...] = ()      # batch keys
  needs_outputs: Tuple[str, ...] = ()   # keys of method.predict's output
  needs_predict: bool = True            # False: calls the method itself
  # Colour metrics follow cfg.resolution: 'model' (the batch's l/ab) or
  # 'full' (l_full/ab_full of the keep_full op, prediction upsampled).
  uses_resolution: bool = False

  def __init__(self, name: str, cfg, method, config, mesh):
    self.name = name
    self.cfg = cfg
    self.method = method
    self.config = config
    self.mesh = mesh
    self.ab_scale = config.data.ab_scale
    self.resolution = cfg.get('resolution') or 'model'
    choices.check(f'evals.{name}.resolution', self.resolution,
                  ('model', 'full'))
    if self.uses_resolution and self.resolution == 'full':
      self.needs_keys = tuple(self.needs_keys) + (
          'l_full', 'ab_full', 'full_hw', 'full_downscaled', 'model_hw',
          'gray')
    # Reference networks' variables ({name: variables}), passed to the
    # jitted metrics as arguments (not baked in as constants).
    self.networks: Dict[str, Any] = {}
    # Weights files used: {path: sha256}, recorded with the results.
    self.weights: Dict[str, str] = {}
    self._jitted = jax.jit(self._batch_outputs,
                           out_shardings=sharding.replicated(mesh))
    self._totals = None
    self._sums: Dict[str, np.ndarray] = {}
    self._lists: Dict[str, list] = {}

  def load_network(self, key: str, name: str, path: str):
    """colorjax.pretrained network `name` from `path` -> its module; the
    variables go to `self.networks[key]` (replicated), the file's hash to
    `self.weights`."""
    path = os.path.expanduser(path)
    module, variables = pretrained.load(name, path)
    self.networks[key] = jax.device_put(variables,
                                        sharding.replicated(self.mesh))
    self.weights[path] = pretrained.file_sha256(os.path.expanduser(path))
    return module

  def scored(self, batch, ab_pred) -> Scored:
    """Ground truth and prediction (normalised ab, any resolution) in this
    evaluator's resolution protocol."""
    real = batch['mask'] > 0
    if self.resolution == 'full':
      canvas = tuple(batch['l_full'].shape[1:3])
      ab = upsample_to_canvas(ab_pred * self.ab_scale, batch['full_hw'],
                              canvas, covered_share(batch))
      mask = canvas_mask(batch['full_hw'], canvas) * real[:, None, None]
      return Scored(batch['l_full'], batch['ab_full'], ab, mask,
                    batch['full_hw'])
    ab = resize_like(ab_pred, batch['l']) * self.ab_scale
    mask = jnp.broadcast_to(real[:, None, None].astype(jnp.float32),
                            batch['l'].shape[:3])
    return Scored(batch['l'], batch['ab'] * self.ab_scale, ab, mask)

  def _batch_outputs(self, networks, state, batch, outputs, rng):
    result = self.batch_metrics(state, batch, outputs, rng, networks)
    if isinstance(result, tuple) and result[1].get('per_image'):
      # Which rows are real images, replicated (multi-host safe).
      result[1]['per_image']['__real__'] = batch['mask']
    return result

  # Evaluators that need a network file: what to pass when it is missing.
  missing_network_hint: Optional[str] = None

  def has_network(self) -> bool:
    return True

  def unavailable(self, outputs) -> Optional[str]:
    """Why this evaluator cannot run on this method, or None."""
    if self.missing_network_hint and not self.has_network():
      return self.missing_network_hint
    missing = [k for k in self.needs_outputs if k not in outputs]
    if missing:
      return (f'{self.config.method} predicts {sorted(outputs)}, not '
              f'{missing}')
    return None

  def batch_metrics(self, state, batch, outputs, rng, networks):
    """One batch's metrics, under jit (batch['mask'] > 0 marks the real
    images of a padded batch; networks = self.networks).

    Returns a clu Collection, or (Collection, extras) with extras =
    {'sum': {name: array summed over batches},
     'per_image': {name: [N, ...] kept for the real images}}.
    """
    raise NotImplementedError

  def start(self):
    self._totals = None
    self._sums = {}
    self._lists = {}

  def update(self, state, batch, outputs, rng, index: int):
    del index
    result = jax.device_get(self._jitted(self.networks, state, batch,
                                         outputs, rng))
    metrics, extras = result if isinstance(result, tuple) else (result, {})
    self._totals = metrics if self._totals is None else self._totals.merge(
        metrics)
    for key, value in extras.get('sum', {}).items():
      value = np.asarray(value, np.float64)
      self._sums[key] = self._sums.get(key, 0.0) + value
    if extras.get('per_image'):
      per_image = dict(extras['per_image'])
      real = np.asarray(per_image.pop('__real__')) > 0
      for key, value in per_image.items():
        self._lists.setdefault(key, []).append(np.asarray(value)[real])

  def per_image(self, key: str) -> np.ndarray:
    """The per-image values of `key` over all batches (real images only)."""
    parts = self._lists.get(key, [])
    return np.concatenate(parts) if parts else np.zeros((0,))

  def finish(self, writer=None, step: Optional[int] = None,
             samples_dir: Optional[str] = None) -> Dict[str, Any]:
    del writer, step, samples_dir
    if self._totals is None:
      return {}
    return {k: float(v) for k, v in self._totals.compute().items()}
