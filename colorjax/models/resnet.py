"""torchvision ResNet-18/34/50/101 in Flax, named like torchvision's state dict.

Layout of `torchvision.models.resnet50/101` (v1.5): conv1 7x7 stride 2
padding 3 (no bias), bn1, ReLU, max pool 3x3 stride 2 padding 1; layer1..4
of Bottlenecks (conv1 1x1, conv2 3x3 carrying the stride, conv3 1x1 to 4x
planes, each followed by BatchNorm2d eps 1e-5; `downsample` = 1x1 conv with
the stride + BN in the first block of each stage); global average pool; fc.
Flax module `layer2_0/downsample_1` holds torchvision's
`layer2.0.downsample.1`, so `colorjax.pretrained` fills it from a
torchvision file one tensor to one parameter (the registry's `resnet*`
names, the scene-label teacher, DeepLabV3's backbone). ResNet-18/34 use
torchvision's BasicBlock instead (conv1 3x3 carrying the stride, conv2 3x3,
expansion 1; the same `downsample`), as the CSAIL Places365
`resnet18_places365.pth.tar` does.

`replace_stride_with_dilation` follows torchvision's `ResNet._make_layer`:
for a stage k = 2..4 whose flag is set, the running dilation is multiplied
by the stage's stride (2) and the stride becomes 1; the stage's first block
uses the dilation before that change, the other blocks the new one; conv2's
padding equals its dilation. (DeepLabV3 uses [False, True, True]: output
stride 8.) `num_classes=None` drops the average pool and fc and returns
layer4's map, as torchvision's `IntermediateLayerGetter` does for
segmentation backbones.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from colorjax import choices
from colorjax.models import layers

RESNET18_BLOCKS = (2, 2, 2, 2)
RESNET34_BLOCKS = (3, 4, 6, 3)
RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET101_BLOCKS = (3, 4, 23, 3)


def _bn(name):
  return nn.BatchNorm(use_running_average=True, epsilon=1e-5, name=name)


def _conv(features, kernel, stride, name, dilation=1):
  pad = (kernel // 2) * dilation
  return layers.Conv(features, (kernel, kernel), (stride, stride),
                     padding=[(pad, pad), (pad, pad)],
                     kernel_dilation=(dilation, dilation), use_bias=False,
                     name=name)


class Bottleneck(nn.Module):
  planes: int
  stride: int = 1
  downsample: bool = False
  dilation: int = 1          # of conv2 (its padding too)
  expansion = 4

  @nn.compact
  def __call__(self, x):
    y = nn.relu(_bn('bn1')(_conv(self.planes, 1, 1, 'conv1')(x)))
    y = nn.relu(_bn('bn2')(_conv(self.planes, 3, self.stride, 'conv2',
                                 self.dilation)(y)))
    y = _bn('bn3')(_conv(self.planes * 4, 1, 1, 'conv3')(y))
    shortcut = x
    if self.downsample:
      shortcut = _bn('downsample_1')(
          _conv(self.planes * 4, 1, self.stride, 'downsample_0')(x))
    return nn.relu(y + shortcut)


class BasicBlock(nn.Module):
  """torchvision's BasicBlock (ResNet-18/34); torchvision refuses dilation
  in it, and so does `ResNet`."""
  planes: int
  stride: int = 1
  downsample: bool = False
  dilation: int = 1
  expansion = 1

  @nn.compact
  def __call__(self, x):
    y = nn.relu(_bn('bn1')(_conv(self.planes, 3, self.stride, 'conv1')(x)))
    y = _bn('bn2')(_conv(self.planes, 3, 1, 'conv2')(y))
    shortcut = x
    if self.downsample:
      shortcut = _bn('downsample_1')(
          _conv(self.planes, 1, self.stride, 'downsample_0')(x))
    return nn.relu(y + shortcut)


class ResNet(nn.Module):
  """NHWC images (torchvision's normalised input, transposed) -> logits.

  With `num_classes=None`: -> layer4's feature map, NHWC.
  """
  blocks: Sequence[int] = RESNET50_BLOCKS
  num_classes: Optional[int] = 1000
  # torchvision's flags for layer2, layer3, layer4.
  replace_stride_with_dilation: Sequence[bool] = (False, False, False)
  block: str = 'bottleneck'    # or 'basic' (ResNet-18/34)

  @nn.compact
  def __call__(self, x):
    if len(self.replace_stride_with_dilation) != 3:
      raise ValueError('replace_stride_with_dilation needs 3 flags, got '
                       f'{self.replace_stride_with_dilation}')
    blocks = {'bottleneck': Bottleneck, 'basic': BasicBlock}
    block = blocks[choices.check('block', self.block, sorted(blocks))]
    if block is BasicBlock and any(self.replace_stride_with_dilation):
      raise ValueError('dilation is not supported by BasicBlock (as in '
                       'torchvision)')
    x = nn.relu(_bn('bn1')(_conv(64, 7, 2, 'conv1')(x)))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=[(1, 1), (1, 1)])
    in_channels = 64
    dilation = 1
    for stage, count in enumerate(self.blocks):
      planes = 64 * 2 ** stage
      stride = 1 if stage == 0 else 2
      previous_dilation = dilation
      if stage > 0 and self.replace_stride_with_dilation[stage - 1]:
        dilation *= stride
        stride = 1
      for index in range(count):
        x = block(
            planes, stride if index == 0 else 1,
            downsample=index == 0 and (
                stride != 1 or in_channels != planes * block.expansion),
            dilation=previous_dilation if index == 0 else dilation,
            name=f'layer{stage + 1}_{index}')(x)
        in_channels = planes * block.expansion
    if self.num_classes is None:
      return x
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='fc')(x)
