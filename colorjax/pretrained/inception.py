"""pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` -> FIDInception.

The network, `colorjax.models.inception.FIDInception`, is named like the
file; what converting it needs beyond the shared machinery is here.

Names are torchvision's module names, which contain underscores
(`Mixed_7c.branch3x3dbl_3a.bn.running_var`), so the Flax path is joined
with '.' as it is (`torch_key`), not through `common.underscore_key`.

The file also holds `fc.weight` [1008, 2048] / `fc.bias` [1008] (the
ImageNet-2012 + 8 classes head of the TensorFlow graph), which FID does not
use: `prepare_state` checks their shapes and drops them (a file without
them loads too).
"""

from typing import Dict, Mapping, Tuple

import numpy as np

from colorjax.models import inception as inception_net
from colorjax.pretrained import common

FC_CLASSES = 1008       # the TensorFlow graph's head, unused by FID


def torch_key(flax_path: Tuple[str, ...]) -> str:
  """('Mixed_7c', 'branch3x3_2a', 'bn') -> 'Mixed_7c.branch3x3_2a.bn'."""
  return '.'.join(flax_path)


def prepare_state(state: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Drops the unused 1008-way classifier `fc.weight` / `fc.bias`.

  Present or not; when present they must have the FID file's shapes
  ([1008, 2048], [1008]), which tells the FID graph's weights from
  torchvision's own Inception (1000 classes).
  """
  state = dict(state)
  problems = []
  for key, shape in (('fc.weight', (FC_CLASSES, inception_net.FEATURES)),
                     ('fc.bias', (FC_CLASSES,))):
    if key in state:
      got = tuple(np.shape(state.pop(key)))
      if got != shape:
        problems.append(f'{key} {got} (expected {shape}: the FID file has a '
                        f'{FC_CLASSES}-way head)')
  if problems:
    raise common.CheckpointMismatchError(
        'state dict does not match pytorch-fid inception_v3_fid: shape '
        'mismatches: ' + '; '.join(problems))
  return state
