"""torchvision DeepLabV3 (ResNet-101 backbone) in Flax, named like its
state dict.

Layout of `torchvision.models.segmentation.deeplabv3_resnet101`:

* `backbone.*`: ResNet-101 with replace_stride_with_dilation=[False, True,
  True] (output stride 8; `resnet.ResNet` with `num_classes=None`: no
  average pool, no fc), as torchvision's `IntermediateLayerGetter` keeps it.
* `classifier` = DeepLabHead(2048, num_classes):
  `classifier.0` = ASPP(2048, [12, 24, 36]) with 256 channels:
  `convs.0` = 1x1 conv + BN + ReLU; `convs.1..3` = 3x3 convs with dilation
  and padding 12, 24, 36 + BN + ReLU; `convs.4` = ASPPPooling (global
  average pool, `convs.4.1` 1x1 conv, `convs.4.2` BN, ReLU, bilinear
  upsampling from 1x1, i.e. a broadcast); the five maps concatenated,
  `project.0` 1x1 conv to 256 + `project.1` BN + ReLU + Dropout(0.5);
  then `classifier.1` 3x3 conv (padding 1) + `classifier.2` BN + ReLU +
  `classifier.4` 1x1 conv to num_classes (with bias).
  Convs have no bias except classifier.4; every BN has eps 1e-5.
* the logits are resized to the input size with `F.interpolate(...,
  mode='bilinear', align_corners=False)`.

`DeepLabV3.__call__` returns torchvision's `model(x)['out']` (NHWC logits
at the input size) for x torchvision's normalised image (ImageNet mean and
std) transposed to NHWC. Dropout is the identity and BatchNorm uses the
running statistics (inference).

Module names follow the state dict (`classifier_0/convs_4_1` holds
`classifier.0.convs.4.1`), so `colorjax.pretrained` fills it from a
torchvision file one tensor to one parameter (registry name
`deeplabv3_resnet101`); `colorjax.models.segmenter` trains it as paper
004's reference segmenter.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from colorjax.models import inception
from colorjax.models import layers
from colorjax.models import resnet

ASPP_RATES = (12, 24, 36)
ASPP_CHANNELS = 256


def _bn(name):
  return nn.BatchNorm(use_running_average=True, epsilon=1e-5, name=name)


def _conv(features, kernel, name, dilation=1, use_bias=False):
  pad = (kernel // 2) * dilation
  return layers.Conv(features, (kernel, kernel),
                     padding=[(pad, pad), (pad, pad)],
                     kernel_dilation=(dilation, dilation), use_bias=use_bias,
                     name=name)


class ASPP(nn.Module):
  """torchvision's ASPP(in_channels, atrous_rates, out_channels=256)."""
  atrous_rates: Sequence[int] = ASPP_RATES
  channels: int = ASPP_CHANNELS

  @nn.compact
  def __call__(self, x):
    n, h, w, _ = x.shape
    branches = [nn.relu(_bn('convs_0_1')(
        _conv(self.channels, 1, 'convs_0_0')(x)))]
    for k, rate in enumerate(self.atrous_rates, 1):
      branches.append(nn.relu(_bn(f'convs_{k}_1')(
          _conv(self.channels, 3, f'convs_{k}_0', dilation=rate)(x))))
    k = len(self.atrous_rates) + 1
    pooled = jnp.mean(x, axis=(1, 2), keepdims=True)
    pooled = nn.relu(_bn(f'convs_{k}_2')(
        _conv(self.channels, 1, f'convs_{k}_1')(pooled)))
    # Bilinear upsampling of a 1x1 map is a broadcast.
    branches.append(jnp.broadcast_to(pooled, (n, h, w, self.channels)))
    x = jnp.concatenate(branches, axis=-1)
    return nn.relu(_bn('project_1')(_conv(self.channels, 1, 'project_0')(x)))


class DeepLabV3(nn.Module):
  """NHWC images (torchvision's normalised input) -> logits [N, H, W, C]."""
  num_classes: int = 21
  blocks: Sequence[int] = resnet.RESNET101_BLOCKS

  @nn.compact
  def __call__(self, x):
    _, h, w, _ = x.shape
    features = resnet.ResNet(self.blocks, num_classes=None,
                             replace_stride_with_dilation=(False, True, True),
                             name='backbone')(x)
    y = ASPP(name='classifier_0')(features)
    y = nn.relu(_bn('classifier_2')(_conv(ASPP_CHANNELS, 3,
                                          'classifier_1')(y)))
    y = _conv(self.num_classes, 1, 'classifier_4', use_bias=True)(y)
    return inception.resize_bilinear(y, (h, w))
