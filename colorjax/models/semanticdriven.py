"""SemanticDriven (paper 002, section 2.2-2.3, Fig. 3-4): GridNet
segmentation of the gray image, then a two-stream U-Net colorizer that reads
the gray image and a semantic map through one shared encoder.

GridNet (section 2.2; Fourure et al. 2017): `rows` streams at resolutions
H / 2^i with depths [16, 32, 64, 128, 256], `columns` = 6 columns; the
first half of the columns carries down-sampling blocks from each row to the
next, the second half up-sampling blocks from each row to the one above;
residual units along every row; nodes sum their inputs. All convolutions are
3x3, padding 1, stride 1 except sampling: a stride-2 convolution down, a
stride-2 transposed convolution up (3x3, output padding 1). Chosen from
Fourure et al. where paper 002 is silent: pre-activation units
(BatchNorm-ReLU-conv, twice) with an identity shortcut along rows,
BatchNorm-ReLU-conv(stride 2)-BatchNorm-ReLU-conv for sampling blocks, a
3x3 stem to the first row and BatchNorm-ReLU-3x3 conv to the classes at the
end; no "total dropout" (paper 002 does not use it).

Colorizer (section 2.3, Fig. 3-4): encoder layers CL of widths [32, 64,
128, 256, 512], each two 3x3 convolutions + LeakyReLU(0.01), the first with
stride 2 except in the first and the last layer (so H, H/2, H/4, H/8, H/8);
the same weights run on the gray stream and on the map stream; at every
level the two streams are concatenated (gray features instance-normalised
first), which doubles the widths to [64, 128, 256, 512, 1024]. The decoder
layers DL have widths [1024, 512, 256, 128, 64]: DL_k takes the previous
layer's output concatenated with the level's two-stream features (DL_1 the
deepest level's alone), its first convolution a stride-2 transposed
convolution except in the first and the last layer (H/8 -> H/4 -> H/2 -> H
-> H), its second a 3x3 convolution. A 3x3 convolution to the 2 ab
channels (tanh: ab / ab_scale lies in [-1, 1]) ends it.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax import choices
from colorjax.models import layers

MAP_INPUTS = ('index', 'embedding')
INSTANCE_NORMS = ('all', 'bottleneck', 'none')

SIZES = {
    'paper': dict(grid_depths=(16, 32, 64, 128, 256), grid_columns=6,
                  encoder_widths=(32, 64, 128, 256, 512)),
    'demo': dict(grid_depths=(8, 16, 24, 32), grid_columns=4,
                 encoder_widths=(16, 24, 32, 48, 64)),
    'tiny': dict(grid_depths=(4, 8, 8), grid_columns=2,
                 encoder_widths=(4, 8, 8, 8, 8)),
}


def _conv(features, name, stride=1, dtype=jnp.float32):
  return layers.Conv(features, (3, 3), (stride, stride), padding=[(1, 1)] * 2,
                     dtype=dtype, name=name)


def _up(features, name, dtype=jnp.float32):
  """Stride-2 3x3 transposed convolution, exactly 2x (PyTorch's
  ConvTranspose2d(3, stride=2, padding=1, output_padding=1))."""
  return layers.UpConv(features, kernel_size=3, stride=2, padding=1,
                       output_padding=1, dtype=dtype, name=name)


class _PreActivation(nn.Module):
  """BatchNorm-ReLU-conv twice; kind 'lateral' adds the identity
  (residual unit along a row), 'down' / 'up' change the resolution and the
  depth in the first convolution (Fourure et al.'s sampling blocks)."""
  features: int
  kind: str = 'lateral'
  train: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    y = nn.relu(layers.batch_norm(self.train, self.dtype, name='bn0')(x))
    if self.kind == 'down':
      y = _conv(self.features, 'conv0', 2, self.dtype)(y)
    elif self.kind == 'up':
      y = _up(self.features, 'conv0', self.dtype)(y)
    else:
      y = _conv(self.features, 'conv0', 1, self.dtype)(y)
    y = nn.relu(layers.batch_norm(self.train, self.dtype, name='bn1')(y))
    y = _conv(self.features, 'conv1', 1, self.dtype)(y)
    return x + y if self.kind == 'lateral' else y


class GridNet(nn.Module):
  """Normalised gray [N, H, W, 1] (H, W divisible by 2^(rows-1)) ->
  segmentation logits [N, H, W, num_classes] (float32).

  Node (i, j) (row i, column j) = lateral unit of (i, j-1) [j > 0] + down
  block of (i-1, j) [first half, i > 0] or up block of (i+1, j) [second
  half, i < rows-1]; (0, 0) is the stem. Modules are named `lat{i}_{j}`,
  `down{i}_{j}` (into row i), `up{i}_{j}` (into row i).
  """
  depths: Sequence[int] = SIZES['paper']['grid_depths']
  columns: int = SIZES['paper']['grid_columns']
  num_classes: int = 60
  train: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, gray):
    if self.columns < 2 or self.columns % 2:
      raise ValueError(f'GridNet needs an even number of columns >= 2, got '
                       f'{self.columns}')
    rows, half = len(self.depths), self.columns // 2
    unit = lambda kind, i, name: _PreActivation(  # pylint: disable=g-long-lambda
        self.depths[i], kind, self.train, self.dtype, name=name)
    nodes = [[None] * self.columns for _ in range(rows)]
    x = gray.astype(self.dtype)
    nodes[0][0] = _conv(self.depths[0], 'stem', 1, self.dtype)(x)
    for j in range(self.columns):
      order = range(rows) if j < half else range(rows - 1, -1, -1)
      for i in order:
        if i == 0 and j == 0:
          continue
        terms = []
        if j > 0:
          terms.append(unit('lateral', i, f'lat{i}_{j}')(nodes[i][j - 1]))
        if j < half and i > 0:
          terms.append(unit('down', i, f'down{i}_{j}')(nodes[i - 1][j]))
        if j >= half and i < rows - 1:
          terms.append(unit('up', i, f'up{i}_{j}')(nodes[i + 1][j]))
        nodes[i][j] = sum(terms)
    y = nn.relu(layers.batch_norm(self.train, self.dtype, name='head_bn')(
        nodes[0][-1]))
    return _conv(self.num_classes, 'head', 1, self.dtype)(y).astype(
        jnp.float32)


def instance_norm(x, epsilon: float = 1e-5):
  """Per image and channel over H, W, no affine parameters (PyTorch's
  InstanceNorm2d default), in float32."""
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
  var = jnp.var(x32, axis=(1, 2), keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + epsilon)).astype(x.dtype)


def map_as_channel(labels, num_classes: int):
  """Paper 002's S in R^{HxWx1}: class index c -> 2c / (C - 1) - 1, the
  same [-1, 1] range as the normalised gray input."""
  labels = labels.astype(jnp.float32)
  return 2.0 * labels / max(num_classes - 1, 1) - 1.0


class TwoStreamUNet(nn.Module):
  """(normalised gray [N, H, W, 1], class labels [N, H, W, 1] int) ->
  ab / ab_scale [N, H, W, 2] (float32, tanh). H, W divisible by 8.

  map_input: 'index' (the paper's one-channel map, `map_as_channel`) or
  'embedding' (deviation: a learned scalar per class, still one channel so
  the encoder stays shared). instance_norm: where the gray features are
  instance-normalised before a concatenation: 'all' levels, only the
  'bottleneck', or 'none' (section 4.1's ablation).
  """
  encoder_widths: Sequence[int] = SIZES['paper']['encoder_widths']
  num_classes: int = 60
  map_input: str = 'index'
  instance_norm: str = 'all'
  negative_slope: float = 0.01
  dtype: Any = jnp.float32

  def _layer(self, x, features, name, stride):
    act = lambda y: nn.leaky_relu(y, self.negative_slope)  # pylint: disable=unnecessary-lambda-assignment
    x = act(_conv(features, f'{name}_conv0', stride, self.dtype)(x))
    return act(_conv(features, f'{name}_conv1', 1, self.dtype)(x))

  @nn.compact
  def __call__(self, gray, labels):
    choices.check('map_input', self.map_input, MAP_INPUTS)
    choices.check('instance_norm', self.instance_norm, INSTANCE_NORMS)
    if labels.ndim == 3:
      labels = labels[..., None]
    labels = jnp.clip(labels.astype(jnp.int32), 0, self.num_classes - 1)
    if self.map_input == 'index':
      semantic = map_as_channel(labels, self.num_classes)
    else:
      table = self.param(
          'map_embedding',
          lambda _, n: 2.0 * jnp.arange(n, dtype=jnp.float32)[:, None]
          / max(n - 1, 1) - 1.0, self.num_classes)
      semantic = jnp.take(table, labels[..., 0], axis=0)
    # Shared encoder: the two streams as one batch of 2N (same weights).
    x = jnp.concatenate([gray.astype(jnp.float32), semantic], 0).astype(
        self.dtype)
    n, levels = gray.shape[0], len(self.encoder_widths)
    features = []
    for k, width in enumerate(self.encoder_widths):
      stride = 1 if k in (0, levels - 1) else 2
      x = self._layer(x, width, f'enc{k + 1}', stride)
      gray_part, map_part = x[:n], x[n:]
      if self.instance_norm == 'all' or (self.instance_norm == 'bottleneck'
                                         and k == levels - 1):
        gray_part = instance_norm(gray_part)
      features.append(jnp.concatenate([gray_part, map_part], -1))
    widths = [2 * w for w in reversed(self.encoder_widths)]
    y = None
    for k, width in enumerate(widths):
      skip = features[levels - 1 - k]
      y = skip if y is None else jnp.concatenate([y, skip], -1)
      name = f'dec{k + 1}'
      if k in (0, len(widths) - 1):
        y = nn.leaky_relu(_conv(width, f'{name}_conv0', 1, self.dtype)(y),
                          self.negative_slope)
      else:
        y = nn.leaky_relu(_up(width, f'{name}_conv0', self.dtype)(y),
                          self.negative_slope)
      y = nn.leaky_relu(_conv(width, f'{name}_conv1', 1, self.dtype)(y),
                        self.negative_slope)
    return jnp.tanh(_conv(2, 'head', 1, self.dtype)(y).astype(jnp.float32))
