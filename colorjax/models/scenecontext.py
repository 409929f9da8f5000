"""SceneContext U-Net (paper 001, section IV, Fig. 8): encoder, decoder and
the four heads (scene classification, ab regression, 313-bin distribution,
segmentation).

Stated by the paper: a VGG16 back-bone encoder of four blocks of two 3x3
convolutions with batch normalisation, the last convolution of each block
with stride 2 and the filters doubling, a middle block; four decoder blocks
of one up-sampling layer and three convolutions, filters halving; skips from
the encoder to the decoder block at the same depth; H_clas on the encoder
output = global average pooling, two dense layers, softmax over the 365
scenes; H_reg / H_soft / H_seg = 1x1 convolutions on the decoder's map (2
with tanh, 313 and the segmentation classes with softmax).

Chosen where Fig. 8 is not in the text (configs/scenecontext.py will list
them): widths 64/128/256/512 (VGG16), BatchNorm + ReLU after every
convolution (so torchvision vgg16_bn's convolutions and statistics load), a
middle block of two 1024-wide convolutions, nearest up-sampling (Keras'
UpSampling2D default), U-Net skips from each encoder block's first
(pre-stride) activation concatenated after the decoder block's up-sampling
(the stride-2 output never has the decoder block's size), H_clas hidden
width 512. The gray input enters as ImageNet-normalised gray RGB, the
input vgg16_bn was trained on.

Names follow vgg16_bn where a layer has a counterpart: encoder block k's
convolutions are `enc{k}_conv{0,1}` with `enc{k}_bn{0,1}`.
"""

from typing import Any, Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models import imagenet
from colorjax.models import layers

NUM_BINS = 313
NUM_SCENES = 365
HEADS = ('clas', 'reg', 'soft', 'seg')
# Section V-C's three models, by the heads they have.
VARIANTS = {
    'regsoft': ('reg', 'soft'),
    'clasregsoft': ('clas', 'reg', 'soft'),
    'segclasregsoft': ('clas', 'reg', 'soft', 'seg'),
}
SIZES = {
    'paper': dict(encoder_widths=(64, 128, 256, 512), middle_width=1024,
                  decoder_convs=3, clas_hidden=512),
    'demo': dict(encoder_widths=(16, 32, 64, 96), middle_width=128,
                 decoder_convs=2, clas_hidden=64),
    'tiny': dict(encoder_widths=(8, 8, 16, 16), middle_width=16,
                 decoder_convs=1, clas_hidden=16),
}


class SceneContext(nn.Module):
  """Normalised gray [N, H, W, 1] (L/50 - 1; H, W divisible by 16) ->
  {'ab': tanh regression [N, H, W, 2] (ab / ab_scale), 'ab_logits': [N, H,
  W, 313], 'segmentation': [N, H, W, C] logits, 'scene': [N, 365] logits},
  the keys of the heads this variant has (float32)."""
  encoder_widths: Sequence[int] = SIZES['paper']['encoder_widths']
  middle_width: int = SIZES['paper']['middle_width']
  decoder_convs: int = SIZES['paper']['decoder_convs']
  clas_hidden: int = SIZES['paper']['clas_hidden']
  heads: Sequence[str] = VARIANTS['segclasregsoft']
  num_classes: int = 183
  num_scenes: int = NUM_SCENES
  num_bins: int = NUM_BINS
  upsample: str = 'nearest'
  train: bool = False
  dtype: Any = jnp.float32

  def _conv_bn_relu(self, x, features, name, bn_name, stride=1):
    x = layers.Conv(features, (3, 3), (stride, stride), padding=[(1, 1)] * 2,
                    dtype=self.dtype, name=name)(x)
    x = layers.batch_norm(self.train, self.dtype, name=bn_name)(x)
    return nn.relu(x)

  @nn.compact
  def __call__(self, gray) -> Dict[str, Any]:
    unknown = set(self.heads) - set(HEADS)
    if unknown:
      raise ValueError(f'unknown heads {sorted(unknown)}; known: {HEADS}')
    lightness = (gray.astype(jnp.float32) + 1.0) / 2.0       # L / 100
    x = imagenet.imagenet_normalize(jnp.repeat(lightness, 3, -1)).astype(
        self.dtype)
    skips = []
    for k, width in enumerate(self.encoder_widths, start=1):
      x = self._conv_bn_relu(x, width, f'enc{k}_conv0', f'enc{k}_bn0')
      skips.append(x)                                  # pre-stride, H/2^(k-1)
      x = self._conv_bn_relu(x, width, f'enc{k}_conv1', f'enc{k}_bn1',
                             stride=2)
    for j in range(2):
      x = self._conv_bn_relu(x, self.middle_width, f'mid_conv{j}',
                             f'mid_bn{j}')
    encoded = x
    for k in range(len(self.encoder_widths), 0, -1):
      n, h, w, c = x.shape
      x = jax.image.resize(x, (n, 2 * h, 2 * w, c), self.upsample)
      x = jnp.concatenate([x, skips[k - 1]], -1)
      for j in range(self.decoder_convs):
        x = self._conv_bn_relu(x, self.encoder_widths[k - 1],
                               f'dec{k}_conv{j}', f'dec{k}_bn{j}')
    out = {}
    head = lambda features, name: layers.Conv(  # pylint: disable=g-long-lambda
        features, (1, 1), dtype=self.dtype, name=name)(x).astype(jnp.float32)
    if 'reg' in self.heads:
      out['ab'] = jnp.tanh(head(2, 'head_reg'))
    if 'soft' in self.heads:
      out['ab_logits'] = head(self.num_bins, 'head_soft')
    if 'seg' in self.heads:
      out['segmentation'] = head(self.num_classes, 'head_seg')
    if 'clas' in self.heads:
      pooled = jnp.mean(encoded, axis=(1, 2))
      hidden = nn.relu(nn.Dense(self.clas_hidden, dtype=self.dtype,
                                name='clas_dense0')(pooled))
      out['scene'] = nn.Dense(self.num_scenes, dtype=self.dtype,
                              name='clas_dense1')(hidden).astype(jnp.float32)
    return out
