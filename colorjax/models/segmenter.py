"""Reference segmenters: networks that take normalised RGB and give logits.

Paper 004 (Table 3, Fig. 9) scores colorizations by the mean IoU a
segmentation network trained on colour images reaches on them. Two
networks, selected by `config.model.name`:

  'deeplabv3_resnet101'  torchvision's DeepLabV3-ResNet101 (output stride
      8, ASPP rates 12/24/36, no auxiliary classifier),
      `colorjax.models.deeplab.DeepLabV3`. Its BatchNorms use their running
      statistics in training too (frozen BN): per-device batches of a few
      321x321 crops are too small to estimate them, and the torchvision
      weights it starts from bring good ones.
  'small'  `SmallSegNet`, a small U-shaped fully-convolutional net for the
      CPU twins (`:demo`, `:tiny`): `depth` stride-2 stages of
      conv3x3+BN+ReLU, decoded by bilinear upsampling + skip concatenation;
      works on any H x W. BatchNorm trains normally (batch statistics).

Both take [N, H, W, 3] images already normalised with the ImageNet mean and
standard deviation (the method does that) and return logits [N, H, W, C]
at the input resolution.
"""

from typing import Any, Dict

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models import deeplab
from colorjax.models import layers
from colorjax.models import resnet

MODELS = ('small', 'deeplabv3_resnet101')

# Model presets of the configs (config.model is updated with one of these).
SIZES: Dict[str, Dict[str, Any]] = {
    'paper': dict(name='deeplabv3_resnet101', width=0, depth=0),
    'demo': dict(name='small', width=16, depth=3),
    'tiny': dict(name='small', width=8, depth=2),
}


def _resize(x, height: int, width: int):
  if x.shape[1:3] == (height, width):
    return x
  return jax.image.resize(x, (x.shape[0], height, width, x.shape[3]),
                          'bilinear')


class ConvBNReLU(nn.Module):
  features: int
  stride: int = 1
  train: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = layers.Conv(self.features, (3, 3), (self.stride, self.stride),
                    padding=[(1, 1), (1, 1)], use_bias=False,
                    dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not self.train, momentum=0.9,
                     epsilon=1e-5, dtype=self.dtype)(x)
    return nn.relu(x)


class SmallSegNet(nn.Module):
  """Encoder: level 0 = two convs at full resolution (width w); level
  i = 1..depth = a stride-2 conv to w * 2^i channels + a conv. Decoder, for
  i = depth-1 .. 0: bilinear upsampling of the deeper map to level i's size,
  concatenated with level i's map, one conv to w * 2^i. Head: 1x1 conv
  (with bias) to the classes. Convs have no bias (BN follows).
  """
  num_classes: int
  width: int = 16
  depth: int = 3
  train: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    height, width = x.shape[1:3]
    block = lambda c, s=1: ConvBNReLU(c, s, self.train, self.dtype)  # pylint: disable=unnecessary-lambda-assignment
    x = x.astype(self.dtype)
    x = block(self.width)(block(self.width)(x))
    skips = [x]
    for level in range(1, self.depth + 1):
      channels = self.width * 2 ** level
      x = block(channels)(block(channels, 2)(x))
      skips.append(x)
    for level in range(self.depth - 1, -1, -1):
      skip = skips[level]
      x = _resize(x, *skip.shape[1:3])
      x = block(self.width * 2 ** level)(jnp.concatenate([x, skip], -1))
    logits = layers.Conv(self.num_classes, (1, 1), dtype=self.dtype,
                         name='classifier')(x)
    return _resize(logits, height, width).astype(jnp.float32)


def small_param_count(num_classes: int, width: int, depth: int,
                      in_channels: int = 3) -> int:
  """SmallSegNet's parameter count, by arithmetic (conv kernels, BN scale
  and bias, the head's kernel and bias)."""
  conv = lambda c_in, c_out: 9 * c_in * c_out + 2 * c_out  # pylint: disable=unnecessary-lambda-assignment
  total = conv(in_channels, width) + conv(width, width)
  for level in range(1, depth + 1):
    c_in, c_out = width * 2 ** (level - 1), width * 2 ** level
    total += conv(c_in, c_out) + conv(c_out, c_out)
  for level in range(depth - 1, -1, -1):
    c_out = width * 2 ** level
    total += conv(2 * c_out + c_out, c_out)    # deeper (2c) + skip (c)
  return total + width * num_classes + num_classes


def trains_batch_stats(model_config) -> bool:
  """Whether the network updates its BatchNorm statistics in training."""
  return model_config.name == 'small'


def build(model_config, num_classes: int, train: bool) -> nn.Module:
  """The network `model_config.name` names (see the module docstring)."""
  name = model_config.name
  if name == 'small':
    dtype = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[
        model_config.get('dtype', 'float32')]
    return SmallSegNet(num_classes=num_classes, width=model_config.width,
                       depth=model_config.depth, train=train, dtype=dtype)
  if name == 'deeplabv3_resnet101':
    return deeplab.DeepLabV3(num_classes=num_classes,
                             blocks=resnet.RESNET101_BLOCKS)
  raise ValueError(f'unknown segmenter model {name!r}; known: {MODELS}')


def logits_of(outputs, height: int, width: int) -> jax.Array:
  """float32 logits [N, height, width, C] of a network's output (an array,
  or torchvision's {'out': ...} dict), resized bilinearly if needed."""
  if isinstance(outputs, dict):
    outputs = outputs['out']
  return _resize(outputs.astype(jnp.float32), height, width)
