"""PixSem (paper 004): colour embedding f, segmentation branch h, generator g.

  f (Table 1): 3x3 convs and gated residual blocks on the 128x128 gray
    image, strided to 32x32, dilations 2 then 4, 160 output channels.
  h (Table 2): shares f's bottom layers (up to the first dilated stage),
    then its own 512-channel dilated stage and an ASPP head: three 3x3
    convolutions with dilations 6, 12, 18 to #classes, summed.
  g: a conditional PixelCNN++ over the 32x32 ab map (`generator`:
    'pixelcnnpp', the multi-scale network of colorjax.models.pixelcnnpp,
    the paper preset; or 'small', colorjax.models.pixelcnn's single-scale
    stack), conditioned per pixel on
      'embedding'          f(X)                          (purple flow)
      'semantic_embedding' f(X) trained jointly with h   (purple + blue)
      'semantic_generator' concat(f(X), softmax h(X))    (+ green, final)
      'feature_transform'  f(X) * (1 + gamma) + beta, (gamma, beta) = convs
                           of softmax h(X) (section 3.2.2's alternative).
  A 1x1 head on f gives per-pixel DMoL parameters for L_emb (eq. 6): the
  embedding alone must already predict colour distributions.
"""

from typing import Any, Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax import choices
from colorjax.losses import dmol
from colorjax.models import layers
from colorjax.models import pixelcnn
from colorjax.models import pixelcnnpp

# Model sizes (config.model fields): Tables 1-2 of the paper, and the CPU
# twins' (same architecture, shrunk; see configs/pixsem.py).
# generator_blocks: gated blocks per scale (PixelCNN++'s nr_resnet) for
# 'pixelcnnpp', blocks in all for 'small'.
SIZES = {
    'paper': dict(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 3, 3),
                  embedding_channels=160, generator='pixelcnnpp',
                  generator_channels=160, generator_blocks=5,
                  generator_scales=3, generator_dropout=0.5,
                  num_mixtures=10),
    'small': dict(generator='small', generator_channels=160,
                  generator_blocks=5, generator_dropout=0.0),
    'demo': dict(widths=(16, 32, 48, 64), blocks=(1, 1, 1, 1, 1),
                 embedding_channels=32, generator='pixelcnnpp',
                 generator_channels=32, generator_blocks=1,
                 generator_scales=3, generator_dropout=0.0, num_mixtures=5),
    'tiny': dict(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1, 1),
                 embedding_channels=8, generator='pixelcnnpp',
                 generator_channels=8, generator_blocks=1,
                 generator_scales=2, generator_dropout=0.0, num_mixtures=2),
}

GENERATORS = {'pixelcnnpp': pixelcnnpp, 'small': pixelcnn}

VARIANTS = ('embedding', 'semantic_embedding', 'semantic_generator',
            'feature_transform')


class GatedResidualBlock(nn.Module):
  """Two 3x3 convolutions, a skip connection and a sigmoid gate."""
  channels: int
  dilation: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    conv = lambda f, name: layers.Conv(f, (3, 3), padding='SAME',
                                       kernel_dilation=self.dilation,
                                       dtype=self.dtype, name=name)
    c = conv(self.channels, 'conv1')(nn.elu(x))
    a, g = jnp.split(conv(2 * self.channels, 'conv2')(nn.elu(c)), 2, -1)
    return x + a * nn.sigmoid(g)


def _stage(x, channels, blocks, stride, dilation, dtype, name):
  x = layers.Conv(channels, (3, 3), (stride, stride), padding='SAME',
                  dtype=dtype, name=f'{name}_conv')(x)
  for i in range(blocks):
    x = GatedResidualBlock(channels, dilation, dtype,
                           name=f'{name}_block{i}')(x)
  return x


class Conditioning(nn.Module):
  """f, h and the conditioning of g: everything computed once per image."""
  num_classes: int
  variant: str
  widths: Sequence[int]
  blocks: Sequence[int]
  embedding_channels: int
  num_mixtures: int
  dtype: Any = jnp.float32

  @property
  def uses_segmentation(self):
    return self.variant != 'embedding'

  @nn.compact
  def __call__(self, gray) -> Dict[str, jnp.ndarray]:
    w, b, dt = self.widths, self.blocks, self.dtype
    x = gray.astype(dt)
    x = _stage(x, w[0], b[0], 1, 1, dt, 'f0')
    x = _stage(x, w[1], b[1], 2, 1, dt, 'f1')
    x = _stage(x, w[2], b[2], 2, 1, dt, 'f2')
    shared = _stage(x, w[3], b[3], 1, 2, dt, 'f3')        # shared with h
    embedding = _stage(shared, w[3], b[4], 1, 4, dt, 'f4')
    embedding = layers.Conv(self.embedding_channels, (3, 3), padding='SAME',
                            dtype=dt, name='embedding')(embedding)
    out = {'embedding_dmol': layers.Conv(
        dmol.num_outputs(self.num_mixtures), (1, 1), dtype=dt,
        name='embedding_head')(nn.elu(embedding)).astype(jnp.float32)}
    cond = embedding
    if self.uses_segmentation:
      s = _stage(shared, w[3], b[4], 1, 2, dt, 'h4')
      logits = sum(layers.Conv(self.num_classes, (3, 3), padding='SAME',
                               kernel_dilation=d, dtype=dt, name=f'aspp{d}')(s)
                   for d in (6, 12, 18))
      out['segmentation'] = logits.astype(jnp.float32)
      probs = jax.nn.softmax(logits.astype(jnp.float32), -1).astype(dt)
      if self.variant == 'semantic_generator':
        cond = jnp.concatenate([embedding, probs], -1)
      elif self.variant == 'feature_transform':
        hidden = nn.relu(layers.Conv(self.embedding_channels, (3, 3),
                                     padding='SAME', dtype=dt,
                                     name='ft_hidden')(probs))
        gamma = layers.Conv(self.embedding_channels, (3, 3), padding='SAME',
                            dtype=dt, name='ft_gamma')(hidden)
        beta = layers.Conv(self.embedding_channels, (3, 3), padding='SAME',
                           dtype=dt, name='ft_beta')(hidden)
        cond = embedding * (1.0 + gamma) + beta
    out['cond'] = cond.astype(jnp.float32)
    return out


class PixSem(nn.Module):
  """gray [N, 4h, 4w, 1] in [-1, 1] (+ ab [N, h, w, 2] in [-1, 1])."""
  num_classes: int
  variant: str = 'semantic_generator'
  widths: Sequence[int] = (64, 128, 256, 512)
  blocks: Sequence[int] = (2, 2, 2, 3, 3)
  embedding_channels: int = 160
  generator: str = 'pixelcnnpp'
  generator_channels: int = 160
  generator_blocks: int = 5
  generator_scales: int = 3
  generator_dropout: float = 0.0
  num_mixtures: int = 10
  dtype: Any = jnp.float32

  def setup(self):
    choices.check('model.variant', self.variant, VARIANTS)
    choices.check('model.generator', self.generator, tuple(GENERATORS))
    if self.generator == 'small' and self.generator_dropout:
      raise ValueError("the 'small' generator has no dropout; set "
                       'model.generator_dropout=0')
    self._g = GENERATORS[self.generator]
    self.conditioning = Conditioning(
        self.num_classes, self.variant, tuple(self.widths),
        tuple(self.blocks), self.embedding_channels, self.num_mixtures,
        self.dtype)
    cond_channels = self.embedding_channels + (
        self.num_classes if self.variant == 'semantic_generator' else 0)
    extra = ({'num_scales': self.generator_scales}
             if self.generator == 'pixelcnnpp' else {})
    self.generator_params = self.param(
        'generator',
        lambda rng: self._g.init_params(rng, 2, cond_channels,
                                        self.generator_channels,
                                        self.generator_blocks,
                                        self.num_mixtures, **extra))

  def __call__(self, gray, ab, train: bool = False
               ) -> Dict[str, jnp.ndarray]:
    """Teacher-forced outputs for training (eq. 6); `train` turns on the
    generator's dropout (rng collection 'dropout')."""
    out = self.conditioning(gray)
    if train and self.generator_dropout:
      out['generator_dmol'] = self._g.forward(
          self.generator_params, ab, out['cond'], self.generator_dropout,
          self.make_rng('dropout'))
    else:
      out['generator_dmol'] = self._g.forward(self.generator_params, ab,
                                              out['cond'])
    return out

  def sample(self, gray, rng, num_samples: int = 1, temperature: float = 1.0,
             sampler: str = 'cached'):
    """ab samples [N, num_samples, h, w, 2]; the conditioning runs once."""
    out = self.conditioning(gray)
    cond = jnp.repeat(out['cond'], num_samples, axis=0)
    params = self.generator_params
    if sampler == 'cached':
      ab, _ = self._g.sample_cached(params, cond, rng, self.num_mixtures,
                                    temperature)
    elif sampler == 'naive':
      ab = self._g.sample_naive(params, cond, rng, self.num_mixtures,
                                temperature)
    else:
      raise ValueError(f'sampler {sampler!r} not in (cached, naive)')
    n = gray.shape[0]
    return ab.reshape((n, num_samples) + ab.shape[1:]), out
