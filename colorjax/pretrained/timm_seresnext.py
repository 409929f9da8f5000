"""timm `seresnext50_32x4d` state dicts -> colorjax.models.seresnext.

The Flax modules (colorjax.models.seresnext.SEResNeXt50 and its
SEResNeXt50Classifier) follow timm's structure one tensor to one parameter;
only the names differ:
`layer2_1/se_fc1` <-> `layer2.1.se.fc1`, `downsample_conv`/`downsample_bn`
<-> `downsample.0`/`downsample.1`.
"""

from typing import Any, Dict, Mapping, Tuple

from colorjax.pretrained import common

NAME = 'seresnext50_32x4d'
# timm's ImageNet weights of NAME, fetched by the user (README, "Pretrained
# networks (offline)"): the Hugging Face hub file, or the same weights as
# timm's older release .pth (its name carries the SHA-256 prefix `load`
# checks).
HUB_FILE = ('model.safetensors of the Hugging Face hub model '
            'timm/seresnext50_32x4d.racm_in1k')
PTH_URL = ('https://github.com/rwightman/pytorch-image-models/releases/'
           'download/v0.1-weights/seresnext50_32x4d_racm-a304a460.pth')


def torch_key(flax_path: Tuple[str, ...]) -> str:
  """Maps a Flax module path of SEResNeXt50 to its timm module prefix."""
  parts = []
  for name in flax_path:
    if name.startswith('layer') and '_' in name:
      parts += name.split('_')
    elif name.startswith('se_'):
      parts += ['se', name[3:]]
    elif name == 'downsample_conv':
      parts += ['downsample', '0']
    elif name == 'downsample_bn':
      parts += ['downsample', '1']
    else:
      parts.append(name)
  return '.'.join(parts)


def convert(state_dict: Mapping[str, Any],
            reference_variables: Mapping[str, Any]) -> Dict[str, Any]:
  """timm state dict -> {'params', 'batch_stats'} shaped like the reference.

  The reference may be any SEResNeXt50 configuration (e.g. ChromaCMC's
  branch with its own width and block counts).
  """
  return common.convert_variables(state_dict, reference_variables, torch_key,
                                  NAME)

