"""torchvision `deeplabv3_resnet101` files -> colorjax.models.deeplab.DeepLabV3.

The network is named like the state dict and converts with the shared
machinery (`common.underscore_key`); what is left here is the file's
training-only head.

The official COCO file (`deeplabv3_resnet101_coco-586e9e4e.pth`) also
holds `aux_classifier.*` (an FCNHead on layer3, used only for the training
loss); `prepare_state` drops it (files without it load too).
"""

from typing import Dict, Mapping

import numpy as np

AUX_PREFIX = 'aux_classifier.'


def prepare_state(state: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Drops `aux_classifier.*` (the training-only FCNHead), if present."""
  return {k: v for k, v in state.items() if not k.startswith(AUX_PREFIX)}
