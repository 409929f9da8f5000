"""DeepLab files: torchvision's `deeplabv3_resnet101` -> colorjax.models.
deeplab.DeepLabV3, and the DeepLab-v2 ResNet-101 of paper 004 (the PyTorch
port of the authors' Caffe release) -> colorjax.models.deeplab_v2.DeepLabV2.

Both networks are named like their state dicts and convert with the shared
machinery (`common.underscore_key`); what is left here:

* torchvision's COCO file (`deeplabv3_resnet101_coco-586e9e4e.pth`) also
  holds `aux_classifier.*` (an FCNHead on layer3, used only for the
  training loss); `prepare_state` drops it (files without it load too).
* the DeepLab-v2 file (`deeplabv2_resnet101_msc-vocaug-20000.pth`) holds
  the MSC wrapper's `base.*`; `prepare_state_v2` also takes a bare
  DeepLabV2 state dict (no `base.`), and `v2_shapes` reads the blocks per
  layer and the stem width from the file (ResNet-101's 3, 4, 23, 3 and 64;
  the tests' small files have their own).
"""

import re
from typing import Any, Dict, Mapping

import numpy as np

from colorjax.models import deeplab_v2

AUX_PREFIX = 'aux_classifier.'
V2_PREFIX = 'base.'
# The PyTorch port's VOC file (kazuto1011/deeplab-pytorch release v1.0).
V2_VOC_FILE = 'deeplabv2_resnet101_msc-vocaug-20000.pth'
V2_VOC_URL = ('https://github.com/kazuto1011/deeplab-pytorch/releases/'
              'download/v1.0/' + V2_VOC_FILE)
V2_CLASSES_KEY = V2_PREFIX + 'aspp.c0.weight'


def prepare_state(state: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Drops `aux_classifier.*` (the training-only FCNHead), if present."""
  return {k: v for k, v in state.items() if not k.startswith(AUX_PREFIX)}


def prepare_state_v2(state: Mapping[str, np.ndarray]
                     ) -> Dict[str, np.ndarray]:
  """Keys under the MSC wrapper's `base.` (added when the file is a bare
  DeepLabV2)."""
  if any(k.startswith(V2_PREFIX) for k in state):
    return dict(state)
  return {V2_PREFIX + k: v for k, v in state.items()}


_BLOCK = re.compile(r'^base\.layer([2-5])\.block(\d+)\.')


def v2_shapes(state: Mapping[str, Any]) -> Dict[str, Any]:
  """DeepLabV2's `blocks` and `width` as the (prepared) state dict has them."""
  blocks = [0, 0, 0, 0]
  for key in state:
    match = _BLOCK.match(key)
    if match:
      layer, block = int(match.group(1)) - 2, int(match.group(2))
      blocks[layer] = max(blocks[layer], block)
  stem = state.get(V2_PREFIX + 'layer1.conv1.conv.weight')
  return dict(blocks=tuple(b or d for b, d in zip(blocks, deeplab_v2.BLOCKS)),
              width=int(np.shape(stem)[0]) if stem is not None else 64)
