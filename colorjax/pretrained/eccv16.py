"""richzhang/colorization's ECCV16 release file -> colorjax.models.eccv16.

The network, `colorjax.models.eccv16.ECCV16`, wraps InstanceAware's trunk
named like `ECCVGenerator`'s state dict (`torch_key` only drops the wrapper
level; `trunk_variables` drops it from the converted variables, which is
what InstanceAware's `init_from` copies).

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
import numpy as np

from colorjax.color import quantize
from colorjax.models import eccv16 as eccv16_net
from colorjax.models import instanceaware
from colorjax.pretrained import common

MODEL = 'richzhang/colorization eccv16'
LOGITS_KEY = 'model8.6.weight'
MODEL_OUT_KEY = 'model_out.weight'
MODEL_OUT_SHAPE = (2, instanceaware.NUM_BINS, 1, 1)


def torch_key(flax_path: Tuple[str, ...]) -> str:
  """('net', 'model8_0') -> 'model8.0'."""
  return common.underscore_key(flax_path[1:])


def trunk_variables(variables: Mapping[str, Any]) -> Dict[str, Any]:
  """The wrapped InstanceAware's variables ({'params', 'batch_stats'}),
  for an `InstanceAware(num_classes=0)` of the paper size."""
  return {collection: tree[eccv16_net.NET]
          for collection, tree in variables.items()}


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
