"""Zhang et al.'s ECCV16 colorization network ("Colorful Image Colorization",
2016) from richzhang/colorization's PyTorch release, in Flax.

Why here: the published weights initialise the InstanceAware trunk (and
give a pretrained baseline). The network is `colorjax.models.instanceaware.
InstanceAware(num_classes=0)` (no classification branch), whose layer names
mirror `colorizers/eccv16.py`'s `ECCVGenerator` state dict key by key
(`model1_0` holds `model1.0`, ..., `model8_0` the 4x4 stride-2
ConvTranspose2d, `model8_6` the 1x1 conv to 313 ab-bin logits); `ECCV16`
wraps it as the submodule `net`.

Conventions: `ECCV16.__call__(l)` takes CIE L in [0, 100], NHWC [N, H, W, 1]
(H, W divisible by 8 for the output to be exactly H/4 x W/4), normalises it
as the release does, (L - 50) / 100, and returns the 313 logits of
`model8` -- before the softmax and `model_out` -- as NHWC [N, H/4, W/4, 313]
float32. BatchNorm uses the running statistics (inference).

The official file `colorization_release_v2-9b330a0b.pth` (the URL in
`colorizers/eccv16.py`:
https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth;
9b330a0b is its SHA-256 prefix, checked by `load`) also holds
`model_out.weight` [2, 313, 1, 1] (no bias), the fixed 1x1 conv taking the
softmax to the expected ab (the bin centres); `prepare_state` checks its
shape and drops it (files without it load too).
"""

from typing import Any, Dict, Mapping, Tuple

from absl import logging
import flax.linen as nn
import numpy as np

from colorjax.color import quantize
from colorjax.models import instanceaware
from colorjax.pretrained import common

MODEL = 'richzhang/colorization eccv16'
NET = 'net'                       # name of the wrapped InstanceAware
LOGITS_KEY = 'model8.6.weight'
MODEL_OUT_KEY = 'model_out.weight'
MODEL_OUT_SHAPE = (2, instanceaware.NUM_BINS, 1, 1)


class ECCV16(nn.Module):
  """L in [0, 100], NHWC [N, H, W, 1] -> model8 logits [N, H/4, W/4, 313]."""
  upconv: str = 'auto'            # layers.UpConv implementation

  @nn.compact
  def __call__(self, l):
    sizes = instanceaware.SIZES['paper']
    net = instanceaware.InstanceAware(
        widths=sizes['widths'], depths=sizes['depths'], num_classes=0,
        upconv=self.upconv, name=NET)
    # InstanceAware takes gray = L/50 - 1 and applies (L - 50)/100 itself.
    return net(l / 50.0 - 1.0)['logits']


def torch_key(flax_path: Tuple[str, ...]) -> str:
  """('net', 'model8_0') -> 'model8.0'."""
  return common.underscore_key(flax_path[1:])


def trunk_variables(variables: Mapping[str, Any]) -> Dict[str, Any]:
  """The wrapped InstanceAware's variables ({'params', 'batch_stats'}),
  for an `InstanceAware(num_classes=0)` of the paper size."""
  return {collection: tree[NET] for collection, tree in variables.items()}


def prepare_state(state: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Checks and drops `model_out.weight` (when present)."""
  state = dict(state)
  if LOGITS_KEY not in state:
    raise common.CheckpointMismatchError(
        f'state dict does not match {MODEL}: missing keys: {LOGITS_KEY} (the '
        '313-way logits conv; keys: '
        f'{", ".join(sorted(state)[:6])}{", ..." if len(state) > 6 else ""})')
  if MODEL_OUT_KEY in state:
    model_out = np.asarray(state.pop(MODEL_OUT_KEY), np.float64)
    got = tuple(np.shape(model_out))
    if got != MODEL_OUT_SHAPE:
      raise common.CheckpointMismatchError(
          f'state dict does not match {MODEL}: shape mismatches: '
          f'{MODEL_OUT_KEY} {got} (expected {MODEL_OUT_SHAPE})')
    check_bin_order(model_out)
  return state


def bin_order_error(model_out: np.ndarray) -> float:
  """Largest |model_out x 110 - bin centre| over the 313 bins (ab units).

  The release's model_out is the fixed expectation over the bins (its
  forward multiplies by ab_norm = 110), so in the official file this is
  ~0 exactly when colorjax's bins are in the file's order."""
  centres = quantize.ab_gamut_bins().astype(np.float64)      # [313, 2]
  return float(np.max(np.abs(model_out[:, :, 0, 0].T * 110.0 - centres)))


def check_bin_order(model_out: np.ndarray) -> None:
  error = bin_order_error(model_out)
  if error > 0.5:
    logging.warning(
        '%s: model_out.weight is not the expectation over colorjax\'s 313 '
        'ab bins in this order (largest difference %.1f ab units). The '
        'official file\'s is; with another file, decoding maps the logits '
        'to colorjax\'s bin centres, which may not be the ones it was '
        'trained with.', MODEL, error)
