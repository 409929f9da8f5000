"""The FID Inception v3 of pytorch-fid in Flax, named like its state dict.

pytorch-fid (github.com/mseitzer/pytorch-fid, src/pytorch_fid/inception.py)
computes FID features with `InceptionV3(output_blocks=[3],
resize_input=True, normalize_input=True)` around `fid_inception_v3()`: a
torchvision `Inception3(num_classes=1008, aux_logits=False,
init_weights=False)` whose Mixed_5b/5c/5d are `FIDInceptionA`, Mixed_6b..6e
`FIDInceptionC`, Mixed_7b `FIDInceptionE_1` and Mixed_7c `FIDInceptionE_2`,
filled from `pt_inception-2015-12-05-6726825d.pth` (the TensorFlow FID
graph's weights). `FIDInception.__call__` does what that module's forward
does for block 3:

* resize to 299x299 as `F.interpolate(x, (299, 299), mode='bilinear',
  align_corners=False)` (no antialiasing, also when downsampling;
  `resize_bilinear`), then x -> 2x - 1;
* block 0: Conv2d_1a_3x3 (stride 2), Conv2d_2a_3x3, Conv2d_2b_3x3
  (padding 1), max pool 3x3 stride 2; block 1: Conv2d_3b_1x1, Conv2d_4a_3x3,
  max pool 3x3 stride 2; block 2: Mixed_5b..5d, Mixed_6a, Mixed_6b..6e;
  block 3: Mixed_7a, Mixed_7b, Mixed_7c, global average pool -> [N, 2048]
  (pytorch-fid returns it as [N, 2048, 1, 1] in a list).

Every `BasicConv2d` is a conv without bias + BatchNorm2d(eps=0.001) + ReLU.
The FID blocks differ from torchvision's only in the pool branch: the 3x3
stride-1 average pool (padding 1) does not count the padding
(count_include_pad=False) in A, C and E_1, and E_2 takes a 3x3 stride-1
max pool (padding 1) instead.

Module names are torchvision's (`Mixed_7c/branch3x3dbl_3a/bn`), so
`colorjax.pretrained` fills `FIDInception` from pytorch-fid's file one
tensor to one parameter (registry name `inception_v3_fid`).
`resize_bilinear` (torch's bilinear resize, no antialiasing) is also the
final upsampling of `colorjax.models.deeplab`.
"""

from typing import Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

FID_SIZE = 299
FEATURES = 2048          # per image, the output of FIDInception


def bilinear_matrix(size: int, out: int) -> np.ndarray:
  """(out, size) weights of torch's bilinear interpolation on one axis.

  `F.interpolate(..., size=out, mode='bilinear', align_corners=False)`
  without a scale factor: scale = float32(size / out), source coordinate
  src = max(scale * (i + 0.5) - 0.5, 0) (computed exactly, then rounded
  once to float32, as torch's float32 CPU kernel does with a fused
  multiply-add: the weights equal torch's bit for bit on the sizes in the
  tests), i0 = floor(src), i1 = min(i0 + 1, size - 1), weights (1 - l, l)
  with l = src - i0. Only two taps per output, whatever the ratio: no
  antialiasing (unlike `jax.image.resize`'s default).
  """
  scale = np.float32(size) / np.float32(out)
  src = np.float64(scale) * (np.arange(out, dtype=np.float64) + 0.5) - 0.5
  src = np.maximum(src, 0.0).astype(np.float32)
  lower = np.minimum(src.astype(np.int64), size - 1)
  upper = np.minimum(lower + 1, size - 1)
  weight = src - lower.astype(np.float32)
  matrix = np.zeros((out, size), np.float32)
  rows = np.arange(out)
  np.add.at(matrix, (rows, lower), np.float32(1) - weight)
  np.add.at(matrix, (rows, upper), weight)
  return matrix


def resize_bilinear(x, size: Tuple[int, int]):
  """`F.interpolate(mode='bilinear', align_corners=False)` on NHWC."""
  out_h, out_w = size
  _, h, w, _ = x.shape
  if (h, w) == (out_h, out_w):
    return x
  rows = jnp.asarray(bilinear_matrix(h, out_h), x.dtype)
  cols = jnp.asarray(bilinear_matrix(w, out_w), x.dtype)
  return jnp.einsum('ih,jw,nhwc->nijc', rows, cols, x, precision='highest')


def _pair(value):
  return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv2d(nn.Module):
  """torchvision's BasicConv2d: `conv` (no bias), `bn` (eps 0.001), ReLU."""
  features: int
  kernel: Sequence[int] = (1, 1)
  stride: int = 1
  padding: Sequence[int] = (0, 0)     # torch's (rows, columns)

  @nn.compact
  def __call__(self, x):
    pad_h, pad_w = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel), _pair(self.stride),
                padding=[(pad_h, pad_h), (pad_w, pad_w)], use_bias=False,
                name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  """F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)."""
  return nn.avg_pool(x, (3, 3), (1, 1), padding=[(1, 1), (1, 1)],
                     count_include_pad=False)


def _max_pool_3x3(x):
  """F.max_pool2d(x, 3, stride=1, padding=1) (padding never wins)."""
  return nn.max_pool(x, (3, 3), (1, 1), padding=[(1, 1), (1, 1)])


def _max_pool_3x3_s2(x):
  """nn.MaxPool2d(kernel_size=3, stride=2): no padding, floor."""
  return nn.max_pool(x, (3, 3), (2, 2), padding='VALID')


class FIDInceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    branch1x1 = BasicConv2d(64, 1, name='branch1x1')(x)
    branch5x5 = BasicConv2d(48, 1, name='branch5x5_1')(x)
    branch5x5 = BasicConv2d(64, 5, padding=2, name='branch5x5_2')(branch5x5)
    dbl = BasicConv2d(64, 1, name='branch3x3dbl_1')(x)
    dbl = BasicConv2d(96, 3, padding=1, name='branch3x3dbl_2')(dbl)
    dbl = BasicConv2d(96, 3, padding=1, name='branch3x3dbl_3')(dbl)
    pool = BasicConv2d(self.pool_features, 1, name='branch_pool')(
        _avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch5x5, dbl, pool], axis=-1)


class InceptionB(nn.Module):
  """torchvision's InceptionB (Mixed_6a), unchanged in the FID model."""

  @nn.compact
  def __call__(self, x):
    branch3x3 = BasicConv2d(384, 3, stride=2, name='branch3x3')(x)
    dbl = BasicConv2d(64, 1, name='branch3x3dbl_1')(x)
    dbl = BasicConv2d(96, 3, padding=1, name='branch3x3dbl_2')(dbl)
    dbl = BasicConv2d(96, 3, stride=2, name='branch3x3dbl_3')(dbl)
    return jnp.concatenate([branch3x3, dbl, _max_pool_3x3_s2(x)], axis=-1)


class FIDInceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    branch1x1 = BasicConv2d(192, 1, name='branch1x1')(x)
    b7 = BasicConv2d(c7, 1, name='branch7x7_1')(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    dbl = BasicConv2d(c7, 1, name='branch7x7dbl_1')(x)
    dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(dbl)
    dbl = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(dbl)
    dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(dbl)
    dbl = BasicConv2d(192, (1, 7), padding=(0, 3),
                      name='branch7x7dbl_5')(dbl)
    pool = BasicConv2d(192, 1, name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, b7, dbl, pool], axis=-1)


class InceptionD(nn.Module):
  """torchvision's InceptionD (Mixed_7a), unchanged in the FID model."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, 1, name='branch3x3_1')(x)
    b3 = BasicConv2d(320, 3, stride=2, name='branch3x3_2')(b3)
    b7 = BasicConv2d(192, 1, name='branch7x7x3_1')(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = BasicConv2d(192, 3, stride=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class FIDInceptionE(nn.Module):
  """FIDInceptionE_1 (pool='avg', count_include_pad=False) or
  FIDInceptionE_2 (pool='max')."""
  pool: str = 'avg'

  @nn.compact
  def __call__(self, x):
    branch1x1 = BasicConv2d(320, 1, name='branch1x1')(x)
    b3 = BasicConv2d(384, 1, name='branch3x3_1')(x)
    b3 = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3),
    ], axis=-1)
    dbl = BasicConv2d(448, 1, name='branch3x3dbl_1')(x)
    dbl = BasicConv2d(384, 3, padding=1, name='branch3x3dbl_2')(dbl)
    dbl = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(dbl),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(dbl),
    ], axis=-1)
    if self.pool == 'avg':
      pooled = _avg_pool_3x3(x)
    elif self.pool == 'max':
      pooled = _max_pool_3x3(x)
    else:
      raise ValueError(f'pool must be avg or max, got {self.pool!r}')
    pool = BasicConv2d(192, 1, name='branch_pool')(pooled)
    return jnp.concatenate([branch1x1, b3, dbl, pool], axis=-1)


class FIDInception(nn.Module):
  """NHWC images in [0, 1], any size -> FID features [N, 2048].

  `resize_input` / `normalize_input` as in pytorch-fid's InceptionV3 (both
  on for FID): resize to 299x299 (torch bilinear, align_corners=False) and
  map [0, 1] -> [-1, 1].
  """
  resize_input: bool = True
  normalize_input: bool = True

  @nn.compact
  def __call__(self, x):
    x = jnp.asarray(x)
    if self.resize_input:
      x = resize_bilinear(x, (FID_SIZE, FID_SIZE))
    if self.normalize_input:
      x = 2 * x - 1
    # Block 0.
    x = BasicConv2d(32, 3, stride=2, name='Conv2d_1a_3x3')(x)
    x = BasicConv2d(32, 3, name='Conv2d_2a_3x3')(x)
    x = BasicConv2d(64, 3, padding=1, name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3_s2(x)
    # Block 1.
    x = BasicConv2d(80, 1, name='Conv2d_3b_1x1')(x)
    x = BasicConv2d(192, 3, name='Conv2d_4a_3x3')(x)
    x = _max_pool_3x3_s2(x)
    # Block 2.
    x = FIDInceptionA(32, name='Mixed_5b')(x)
    x = FIDInceptionA(64, name='Mixed_5c')(x)
    x = FIDInceptionA(64, name='Mixed_5d')(x)
    x = InceptionB(name='Mixed_6a')(x)
    x = FIDInceptionC(128, name='Mixed_6b')(x)
    x = FIDInceptionC(160, name='Mixed_6c')(x)
    x = FIDInceptionC(160, name='Mixed_6d')(x)
    x = FIDInceptionC(192, name='Mixed_6e')(x)
    # Block 3.
    x = InceptionD(name='Mixed_7a')(x)
    x = FIDInceptionE('avg', name='Mixed_7b')(x)
    x = FIDInceptionE('max', name='Mixed_7c')(x)
    return jnp.mean(x, axis=(1, 2))
