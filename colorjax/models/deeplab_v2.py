"""DeepLab-v2 ResNet-101 (Chen et al., TPAMI 2018) in Flax: paper 004's
reference segmenter, named like the PyTorch port of the authors' Caffe
release (kazuto1011/deeplab-pytorch, `DeepLabV2_ResNet101_MSC`).

Paper 004 (section 4.4, Fig. 9, Table 3) scores colorizations with
"the Deeplab-ResNet101 model (Chen et al. 2018) without conditional random
field as post-processing, trained on the Pascal VOC2012 training set". The
authors' VOC model (`train2_iter_20000.caffemodel`) exists as a PyTorch
file, `deeplabv2_resnet101_msc-vocaug-20000.pth`, whose layout this is:

* `layer1` = `conv1` (7x7 stride-2 conv, no bias, + `bn` + ReLU) and a 3x3
  stride-2 max pool with padding 1 and `ceil_mode=True` (Caffe's rounding;
  not torchvision's ResNet stem).
* `layer2`..`layer5`: bottleneck blocks `blockK` = `reduce` (1x1, carries
  the stride: MSRA's ResNet, not torchvision's), `conv3x3` (dilated),
  `increase` (1x1), each a conv without bias + `bn` (eps 1e-5), ReLU after
  reduce and conv3x3; `shortcut` (1x1 conv + bn) in each layer's first
  block; ReLU after the sum. Widths 256/512/1024/2048 (`width` x 4, 8, 16,
  32), strides 1, 2, 1, 1, dilations 1, 1, 2, 4: output stride 8.
* `aspp` = four 3x3 convs `c0`..`c3` (with bias) of dilation and padding
  6, 12, 18, 24 straight to the classes, summed (ASPP-L).
* MSC (the file is trained with it; `scales`): the base network on the
  input and on the input resized by 0.5 and 0.75 (`F.interpolate(x,
  scale_factor=p, mode='bilinear', align_corners=False)`), the smaller
  logits resized to the full-scale logits' size, then the element-wise
  maximum. `scales=()` is the base network alone.

`DeepLabV2.__call__(x)` returns the PyTorch module's eval output, NHWC
logits at 1/8 of the input (513 -> 65), for x its input transposed to NHWC:
Caffe's BGR image in 0-255 minus the mean (B 104.008, G 116.669, R 122.675;
`caffe_bgr`). Resize them to the image with bilinear interpolation (the
port's evaluation does). BatchNorm uses the running statistics. Module
names follow the state dict (`base/layer2_block1_reduce_conv` holds
`base.layer2.block1.reduce.conv`), so `colorjax.pretrained` fills it one
tensor to one parameter (registry name `deeplabv2_resnet101`).
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

BLOCKS = (3, 4, 23, 3)            # ResNet-101
ATROUS_RATES = (6, 12, 18, 24)    # ASPP-L
MSC_SCALES = (0.5, 0.75)
# The Caffe release's mean pixel, BGR order, on 0-255 images.
MEAN_BGR = (104.008, 116.669, 122.675)


def caffe_bgr(rgb):
  """RGB in [0, 1], NHWC -> the network's input: BGR in 0-255 minus the
  mean pixel (no scaling by a standard deviation, as in Caffe)."""
  return rgb[..., ::-1] * 255.0 - jnp.asarray(MEAN_BGR, rgb.dtype)


def max_pool_ceil(x, window: int = 3, stride: int = 2, pad: int = 1):
  """torch.nn.MaxPool2d(window, stride, pad, ceil_mode=True) on NHWC: the
  output size rounds up, and the extra window may hang over the bottom and
  right edge (its outside is -inf), unless it would start in the padding."""
  pads = []
  for size in x.shape[1:3]:
    out = -(-(size + 2 * pad - window) // stride) + 1
    if (out - 1) * stride >= size + pad:     # PyTorch drops such a window
      out -= 1
    pads.append((pad, (out - 1) * stride + window - size - pad))
  return jax.lax.reduce_window(
      x, -jnp.inf, jax.lax.max, (1, window, window, 1),
      (1, stride, stride, 1), [(0, 0)] + pads + [(0, 0)])


def _resize_by(x, p: float):
  """F.interpolate(x, scale_factor=p, mode='bilinear', align_corners=False):
  size floor(n * p), sample positions from p itself (not the size ratio)."""
  n, h, w, c = x.shape
  shape = (n, int(h * p), int(w * p), c)
  scale = jnp.asarray([p, p], jnp.float32)
  return jax.image.scale_and_translate(
      x, shape, (1, 2), scale, jnp.zeros(2, jnp.float32), 'linear',
      antialias=False)


class DeepLabV2Base(nn.Module):
  """The network without MSC (the state dict's `base.*`)."""
  num_classes: int = 21
  blocks: Sequence[int] = BLOCKS
  width: int = 64                     # the stem; layers are 4x..32x it
  atrous_rates: Sequence[int] = ATROUS_RATES

  def _conv_bn(self, x, features, kernel, name, stride=1, dilation=1,
               relu=True):
    pad = (kernel // 2) * dilation
    x = nn.Conv(features, (kernel, kernel), (stride, stride),
                padding=[(pad, pad)] * 2, kernel_dilation=dilation,
                use_bias=False, name=f'{name}_conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-5,
                     name=f'{name}_bn')(x)
    return nn.relu(x) if relu else x

  @nn.compact
  def __call__(self, x):
    x = self._conv_bn(x, self.width, 7, 'layer1_conv1', stride=2)
    x = max_pool_ceil(x)
    strides, dilations = (1, 2, 1, 1), (1, 1, 2, 4)
    for layer, count in enumerate(self.blocks):
      out = self.width * 4 * 2 ** layer
      for i in range(count):
        name = f'layer{layer + 2}_block{i + 1}'
        stride = strides[layer] if i == 0 else 1
        h = self._conv_bn(x, out // 4, 1, f'{name}_reduce', stride=stride)
        h = self._conv_bn(h, out // 4, 3, f'{name}_conv3x3',
                          dilation=dilations[layer])
        h = self._conv_bn(h, out, 1, f'{name}_increase', relu=False)
        if i == 0:
          x = self._conv_bn(x, out, 1, f'{name}_shortcut', stride=stride,
                            relu=False)
        x = nn.relu(h + x)
    return sum(nn.Conv(self.num_classes, (3, 3), padding=[(r, r)] * 2,
                       kernel_dilation=r, name=f'aspp_c{i}')(x)
               for i, r in enumerate(self.atrous_rates))


class DeepLabV2(nn.Module):
  """Caffe-normalised BGR NHWC (`caffe_bgr`) -> logits [N, ~H/8, ~W/8, C]:
  `base` (one set of weights) at every MSC scale, the maximum."""
  num_classes: int = 21
  blocks: Sequence[int] = BLOCKS
  width: int = 64
  atrous_rates: Sequence[int] = ATROUS_RATES
  scales: Sequence[float] = MSC_SCALES

  @nn.compact
  def __call__(self, x):
    base = DeepLabV2Base(self.num_classes, tuple(self.blocks), self.width,
                         tuple(self.atrous_rates), name='base')
    logits = base(x)
    if not self.scales:
      return logits
    pyramid = [logits] + [
        jax.image.resize(base(_resize_by(x, p)), logits.shape, 'bilinear')
        for p in self.scales]
    return jnp.max(jnp.stack(pyramid), axis=0)
