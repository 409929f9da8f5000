"""torchvision VGG16 files: their widths, and the parts colorjax models embed.

The network itself, `colorjax.models.vgg.VGG`, converts with the shared
machinery (`common.underscore_key`; registry names `vgg16`, `vgg16_bn`).
What is left here: the widths a file holds (`widths`: torchvision's are
64..512 and 4096, a test's small file has its own), and tree surgery onto
the names of the models that embed a VGG16 (the registry's `embedded`
hook): paper 001's SceneContext encoder from vgg16_bn
(`init_from.model.pretrained=vgg16_bn:PATH`) and paper 003's InstanceAware
classification branch from vgg16 (`init_from.branch.pretrained=vgg16:PATH`).
"""

from typing import Any, Dict, Mapping

import numpy as np

from colorjax.models import vgg as vgg_net

# torchvision's ImageNet VGG16 (the file paper 003's branch starts from).
VGG16_FILE = 'vgg16-397923af.pth'
VGG16_URL = 'https://download.pytorch.org/models/' + VGG16_FILE

# Paper 001's SceneContext encoder (colorjax.models.scenecontext) from
# vgg16_bn: block k's two convolutions <- the first two of VGG's block k
# (torchvision `features` indices; each BatchNorm is at index + 1). VGG's
# third convolutions of blocks 3-4 and block 5 have no counterpart, and the
# strided second convolution reuses VGG's stride-1 kernel (VGG pools instead).
SCENECONTEXT_ENCODER = {
    'enc1_conv0': 0, 'enc1_conv1': 3, 'enc2_conv0': 7, 'enc2_conv1': 10,
    'enc3_conv0': 14, 'enc3_conv1': 17, 'enc4_conv0': 24, 'enc4_conv1': 27,
}


def scenecontext_encoder(variables: Mapping[str, Any]) -> Dict[str, Any]:
  """vgg16_bn variables -> the SceneContext encoder's names (what
  `init_from.model.pretrained=vgg16_bn:PATH` copies)."""
  params, stats = variables['params'], variables.get('batch_stats', {})
  out = {'params': {}, 'batch_stats': {}}
  for name, index in SCENECONTEXT_ENCODER.items():
    bn = name.replace('conv', 'bn')
    out['params'][name] = params[f'features_{index}']
    out['params'][bn] = params[f'features_{index + 1}']
    if stats:
      out['batch_stats'][bn] = stats[f'features_{index + 1}']
  return out


def widths(state: Mapping[str, Any], batch_norm: bool) -> Dict[str, Any]:
  """VGG's `layers` and `fc_features` as the state dict's shapes give them
  (VGG16's layout: the same layers at the same torchvision indices)."""
  layers, index = [], 0
  for layer in vgg_net.VGG16_LAYERS:
    if layer == 'M':
      layers.append('M')
      index += 1
      continue
    weight = state.get(f'features.{index}.weight')
    layers.append(int(np.shape(weight)[0]) if weight is not None else layer)
    index += 3 if batch_norm else 2
  fc = tuple(int(np.shape(state[key])[0]) if key in state else 4096
             for key in ('classifier.0.weight', 'classifier.3.weight'))
  return dict(layers=tuple(layers), fc_features=fc)


# Paper 003's branch (colorjax.models.instanceaware, branch_reduce='vgg16')
# from VGG16's head: fc1-fc3 <- fc6-fc8 (torchvision `classifier` 0, 3, 6).
INSTANCEAWARE_BRANCH = {'fc1': 'classifier_0', 'fc2': 'classifier_3',
                        'fc3': 'classifier_6'}


def instanceaware_branch(variables: Mapping[str, Any]) -> Dict[str, Any]:
  """vgg16 variables -> InstanceAware's fc1-fc3 (what
  `init_from.branch.pretrained=vgg16:PATH` copies)."""
  params = variables['params']
  return {'params': {ours: params[theirs]
                     for ours, theirs in INSTANCEAWARE_BRANCH.items()}}
