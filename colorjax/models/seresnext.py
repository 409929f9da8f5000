"""SE-ResNeXt50 (32x4d) in Flax, named like timm's `seresnext50_32x4d`.

Structure and names follow timm's model (Bottleneck with the stride on the
grouped 3x3, SE after bn3 with reduction 16 rounded to a multiple of 8, 1x1
conv + BN downsample), so a timm state dict converts one tensor to one
parameter. `SEResNeXt50` returns its stage features (ChromaCMC's global
branch, any width and block counts); `SEResNeXt50Classifier` is timm's
forward (logits only), what the registry builds. Converting timm's
ImageNet weights is the job of `colorjax.pretrained`
(`load('seresnext50_32x4d', path)`; local files only, no downloads).
Inputs are ImageNet-normalised RGB (`colorjax.models.imagenet`).
"""

from typing import Any, Dict, Sequence

import flax.linen as nn
import jax.numpy as jnp

from colorjax.models import layers

STAGE_BLOCKS = (3, 4, 6, 3)
STAGE_PLANES = (64, 128, 256, 512)


def _se_channels(channels: int, ratio: float = 1 / 16, divisor: int = 8):
  """timm's make_divisible(channels * ratio, 8, round_limit=0)."""
  value = channels * ratio
  return max(divisor, int(value + divisor / 2) // divisor * divisor)


class Bottleneck(nn.Module):
  planes: int
  stride: int
  downsample: bool
  train: bool = False
  cardinality: int = 32
  base_width: int = 4
  grouped_conv: str = 'auto'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    width = self.planes * self.base_width // 64 * self.cardinality
    out_channels = self.planes * 4
    conv = lambda f, k, s, name: layers.Conv(
        f, (k, k), (s, s), padding=[(k // 2, k // 2)] * 2, use_bias=False,
        dtype=self.dtype, name=name)
    bn = lambda name: layers.batch_norm(self.train, self.dtype, name)
    y = nn.relu(bn('bn1')(conv(width, 1, 1, 'conv1')(x)))
    y = nn.relu(bn('bn2')(layers.GroupedConv(
        width, 3, self.stride, self.cardinality,
        self.grouped_conv, self.dtype, name='conv2')(y)))
    y = bn('bn3')(conv(out_channels, 1, 1, 'conv3')(y))
    # Squeeze-and-excitation.
    squeeze = jnp.mean(y, axis=(1, 2), keepdims=True)
    squeeze = nn.relu(layers.Conv(_se_channels(out_channels), (1, 1),
                                  dtype=self.dtype, name='se_fc1')(squeeze))
    gate = nn.sigmoid(layers.Conv(out_channels, (1, 1), dtype=self.dtype,
                                  name='se_fc2')(squeeze))
    y = y * gate
    shortcut = x
    if self.downsample:
      shortcut = bn('downsample_bn')(conv(out_channels, 1, self.stride,
                                          'downsample_conv')(x))
    return nn.relu(y + shortcut)


class SEResNeXt50(nn.Module):
  """Returns a dict of features: 'stem', 'layer1'..'layer4', 'logits'."""
  num_classes: int = 1000
  train: bool = False
  dtype: Any = jnp.float32
  blocks: Sequence[int] = STAGE_BLOCKS
  width: int = 64       # stem width; stage planes scale with it
  grouped_conv: str = 'auto'   # see layers.GroupedConv

  @nn.compact
  def __call__(self, x) -> Dict[str, jnp.ndarray]:
    features = {}
    x = layers.Conv(self.width, (7, 7), (2, 2), padding=[(3, 3)] * 2,
                    use_bias=False, dtype=self.dtype, name='conv1')(x)
    x = nn.relu(layers.batch_norm(self.train, self.dtype, 'bn1')(x))
    features['stem'] = x
    x = nn.max_pool(x, (3, 3), (2, 2), padding=[(1, 1)] * 2)
    in_channels = self.width
    for stage, (count, planes) in enumerate(zip(self.blocks, STAGE_PLANES)):
      planes = planes * self.width // 64
      for index in range(count):
        stride = 2 if (index == 0 and stage > 0) else 1
        x = Bottleneck(planes, stride,
                       downsample=index == 0 and (stride != 1 or
                                                  in_channels != planes * 4),
                       train=self.train, grouped_conv=self.grouped_conv,
                       dtype=self.dtype, name=f'layer{stage + 1}_{index}')(x)
        in_channels = planes * 4
      features[f'layer{stage + 1}'] = x
    pooled = jnp.mean(x, axis=(1, 2))
    features['logits'] = nn.Dense(self.num_classes, dtype=self.dtype,
                                  name='fc')(pooled)
    return features


class SEResNeXt50Classifier(SEResNeXt50):
  """timm's forward: NHWC images -> logits (the dict's 'logits' entry)."""

  def __call__(self, x):  # pylint: disable=arguments-differ
    return super().__call__(x)['logits']
