"""torchvision VGG16 / VGG16-BN in Flax, named like torchvision's state dict.

Layout of `torchvision.models.vgg16(_bn)`: `features` is a Sequential of
3x3 convs (padding 1, with bias) [+ BatchNorm2d eps 1e-5] + ReLU and 2x2
max pools; then AdaptiveAvgPool2d((7, 7)), flatten in NCHW order and
`classifier` = Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU,
Dropout, Linear(4096, num_classes). Dropout is the identity at inference.
Flax module `features_3` holds torchvision's `features.3`, so
`colorjax.pretrained` fills it from a torchvision file one tensor to one
parameter (registry names `vgg16`, `vgg16_bn`). `adaptive_avg_pool` is
PyTorch's AdaptiveAvgPool2d on NHWC, with its uneven bins.
"""

import math
from typing import Sequence, Union

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from colorjax.models import layers

# torchvision's cfgs['D'].
VGG16_LAYERS = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M',
                512, 512, 512, 'M', 512, 512, 512, 'M')


def _adaptive_matrix(size: int, out: int) -> np.ndarray:
  """(out, size) averaging matrix of PyTorch's adaptive_avg_pool on one axis.

  Bin i covers [floor(i * size / out), ceil((i + 1) * size / out)).
  """
  matrix = np.zeros((out, size), np.float32)
  for i in range(out):
    start = (i * size) // out
    end = math.ceil((i + 1) * size / out)
    matrix[i, start:end] = 1.0 / (end - start)
  return matrix


def adaptive_avg_pool(x, output_size=(7, 7)):
  """torch.nn.AdaptiveAvgPool2d on NHWC (bins as PyTorch computes them)."""
  out_h, out_w = output_size
  _, h, w, _ = x.shape
  if (h, w) == (out_h, out_w):
    return x
  if h % out_h == 0 and w % out_w == 0:   # equal bins: an ordinary average
    return nn.avg_pool(x, (h // out_h, w // out_w), (h // out_h, w // out_w))
  rows = jnp.asarray(_adaptive_matrix(h, out_h), x.dtype)
  cols = jnp.asarray(_adaptive_matrix(w, out_w), x.dtype)
  return jnp.einsum('ih,jw,nhwc->nijc', rows, cols, x,
                    precision='highest')


def flatten_like_torch(x):
  """[N, H, W, C] -> [N, C*H*W] in PyTorch's NCHW order, so a Linear
  layer's weight from a PyTorch file applies unpermuted."""
  return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)


class VGG(nn.Module):
  """NHWC images (torchvision's normalised input, transposed) -> logits."""
  num_classes: int = 1000
  batch_norm: bool = False
  layers: Sequence[Union[int, str]] = VGG16_LAYERS
  fc_features: Sequence[int] = (4096, 4096)

  @nn.compact
  def __call__(self, x):
    index = 0
    for layer in self.layers:
      if layer == 'M':
        x = nn.max_pool(x, (2, 2), (2, 2))
        index += 1
        continue
      x = layers.Conv(layer, (3, 3), padding=[(1, 1), (1, 1)],
                      name=f'features_{index}')(x)
      index += 1
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-5,
                         name=f'features_{index}')(x)
        index += 1
      x = nn.relu(x)
      index += 1
    x = adaptive_avg_pool(x, (7, 7))
    x = flatten_like_torch(x)
    x = nn.relu(nn.Dense(self.fc_features[0], name='classifier_0')(x))
    x = nn.relu(nn.Dense(self.fc_features[1], name='classifier_3')(x))
    return nn.Dense(self.num_classes, name='classifier_6')(x)

