"""torchvision ResNet-50/101 in Flax, named like torchvision's state dict.

Layout of `torchvision.models.resnet50/101` (v1.5): conv1 7x7 stride 2
padding 3 (no bias), bn1, ReLU, max pool 3x3 stride 2 padding 1; layer1..4
of Bottlenecks (conv1 1x1, conv2 3x3 carrying the stride, conv3 1x1 to 4x
planes, each followed by BatchNorm2d eps 1e-5; `downsample` = 1x1 conv with
the stride + BN in the first block of each stage); global average pool; fc.
Flax module `layer2_0/downsample_1` holds torchvision's
`layer2.0.downsample.1`.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET101_BLOCKS = (3, 4, 23, 3)


def _bn(name):
  return nn.BatchNorm(use_running_average=True, epsilon=1e-5, name=name)


def _conv(features, kernel, stride, name):
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), (stride, stride),
                 padding=[(pad, pad), (pad, pad)], use_bias=False, name=name)


class Bottleneck(nn.Module):
  planes: int
  stride: int = 1
  downsample: bool = False

  @nn.compact
  def __call__(self, x):
    y = nn.relu(_bn('bn1')(_conv(self.planes, 1, 1, 'conv1')(x)))
    y = nn.relu(_bn('bn2')(_conv(self.planes, 3, self.stride, 'conv2')(y)))
    y = _bn('bn3')(_conv(self.planes * 4, 1, 1, 'conv3')(y))
    shortcut = x
    if self.downsample:
      shortcut = _bn('downsample_1')(
          _conv(self.planes * 4, 1, self.stride, 'downsample_0')(x))
    return nn.relu(y + shortcut)


class ResNet(nn.Module):
  """NHWC images (torchvision's normalised input, transposed) -> logits."""
  blocks: Sequence[int] = RESNET50_BLOCKS
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x):
    x = nn.relu(_bn('bn1')(_conv(64, 7, 2, 'conv1')(x)))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=[(1, 1), (1, 1)])
    in_channels = 64
    for stage, count in enumerate(self.blocks):
      planes = 64 * 2 ** stage
      for index in range(count):
        stride = 2 if (index == 0 and stage > 0) else 1
        x = Bottleneck(planes, stride,
                       downsample=index == 0 and (stride != 1 or
                                                  in_channels != planes * 4),
                       name=f'layer{stage + 1}_{index}')(x)
        in_channels = planes * 4
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='fc')(x)
