"""torchvision vgg16_bn weights -> SceneContext's encoder (tree surgery).

The network itself, `colorjax.models.vgg.VGG`, converts with the shared
machinery (`common.underscore_key`; registry names `vgg16`, `vgg16_bn`).
What is left here maps a converted vgg16_bn onto the names of paper 001's
SceneContext encoder (`colorjax.models.scenecontext`), which
`init_from.model.pretrained=vgg16_bn:PATH` copies (the registry's
`embedded` hook).
"""

from typing import Any, Dict, Mapping

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
