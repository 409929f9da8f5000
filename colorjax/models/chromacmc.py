"""ChromaCMC generator and PatchGAN discriminator (paper 000, section IV-B).

Generator (Fig. 2), with the choices the text leaves open:
  * Trunk: the pix2pix U-Net (unet_256): 8 downsamplings (4x4 conv, stride
    2, BN, LeakyReLU 0.2; no BN on the first and the innermost) to
    1x1x512, 8 upsamplings (4x4 transposed conv, factor 2, BN, ReLU) with
    skip concatenation. Its ~54M parameters plus SE-ResNeXt50's ~27.6M give
    the paper's 328 MB of float32 parameters.
  * Branch: SE-ResNeXt50 (32x4d) on the gray image repeated to 3 channels
    and ImageNet-normalised. Its 64x64x256 feature (layer1) and its 16x16
    feature pass through a feature refining block (FRB) to 512 channels and
    are concatenated before the 7th and 5th upsampling, where the trunk has
    the same size. The paper calls the 16x16 feature "16x16x512"; at
    256x256 input SE-ResNeXt50's 16x16 feature is layer3 (1024 channels) --
    its 512-channel layer2 is 32x32 -- so layer3 is used and the FRB maps
    1024 -> 512. Its 1000-d output is fused at the 1x1 bottleneck
    (concatenate, 1x1 conv back to 512), as Iizuka et al.'s fusion layer.
  * FRB: 1x1 conv -> BN -> ReLU (to 512 channels). Figure 2's block
    content is not in the text; this choice reproduces the paper's
    parameter memory (328.7 MB here vs 328.29 MB), where a 3x3-conv pair
    would give 366.7 MB.
  * Heads on the last 256x256x64 features: ab = tanh(3x3 conv -> 2) (ab /
    110), segmentation logits = 3x3 conv -> C. `use_segmentation=False`
    drops the segmentation head (Table 2's -seg variant): the output is
    {'ab'} alone.
Discriminator: PatchGAN on concat(L, ab): four 4x4 stride-2 convs (64, 128,
256, 512; BN from the second, LeakyReLU 0.2) then a 3x3 conv to one logit
per patch: a 16x16 patch map for 256x256 input (paper: "16x16 patch").
"""

from typing import Any, Dict, Sequence

import flax.linen as nn
import jax.numpy as jnp

from colorjax.models import imagenet
from colorjax.models import layers
from colorjax.models import seresnext

# Model sizes (config.model fields): the paper's, and the CPU twins'
# (same architecture family, shrunk; see configs/chromacmc.py).
SIZES = {
    'paper': dict(trunk_channels=(64, 128, 256, 512, 512, 512, 512, 512),
                  frb_channels=512, branch_width=64,
                  branch_blocks=seresnext.STAGE_BLOCKS,
                  discriminator_channels=(64, 128, 256, 512)),
    'demo': dict(trunk_channels=(32, 64, 128, 128, 128, 128),
                 frb_channels=64, branch_width=16, branch_blocks=(1, 1, 1, 1),
                 discriminator_channels=(32, 64, 128)),
    'tiny': dict(trunk_channels=(16, 32, 32, 32, 32), frb_channels=32,
                 branch_width=16, branch_blocks=(1, 1, 1, 1),
                 discriminator_channels=(16, 32)),
}


class FeatureRefiningBlock(nn.Module):
  features: int = 512
  train: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = layers.Conv(self.features, (1, 1), use_bias=False, dtype=self.dtype,
                    name='conv')(x)
    return nn.relu(layers.batch_norm(self.train, self.dtype, 'bn')(x))


class Generator(nn.Module):
  """Gray L in [-1, 1] [N, H, W, 1] -> {'ab': [N,H,W,2], 'segmentation': ...}."""
  num_classes: int
  trunk_channels: Sequence[int] = (64, 128, 256, 512, 512, 512, 512, 512)
  frb_channels: int = 512
  branch_width: int = 64
  branch_blocks: Sequence[int] = seresnext.STAGE_BLOCKS
  use_branch: bool = True
  # False: Table 2's -seg variant, without the segmentation output.
  use_segmentation: bool = True
  dropout: float = 0.0
  # CPU workarounds or XLA's ops (layers.UpConv / layers.GroupedConv).
  upconv: str = 'auto'
  grouped_conv: str = 'auto'
  train: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, gray) -> Dict[str, jnp.ndarray]:
    depth = len(self.trunk_channels)
    x = gray.astype(self.dtype)
    bn = lambda name: layers.batch_norm(self.train, self.dtype, name)

    # Local features: the U-Net encoder.
    skips = []
    for i, channels in enumerate(self.trunk_channels):
      if i > 0:
        x = nn.leaky_relu(x, 0.2)
      x = layers.Conv(channels, (4, 4), (2, 2), padding=[(1, 1)] * 2,
                      use_bias=i in (0, depth - 1), dtype=self.dtype,
                      name=f'down{i + 1}')(x)
      if 0 < i < depth - 1:
        x = bn(f'down{i + 1}_bn')(x)
      skips.append(x)

    fused = {}
    if self.use_branch:
      # Global features: SE-ResNeXt50 on the gray image as RGB.
      rgb = imagenet.imagenet_normalize(
          jnp.repeat((gray + 1.0) / 2.0, 3, axis=-1))
      branch = seresnext.SEResNeXt50(
          train=self.train, dtype=self.dtype, width=self.branch_width,
          blocks=self.branch_blocks, grouped_conv=self.grouped_conv,
          name='branch')(rgb.astype(self.dtype))
      for name, feature in (('frb_high', branch['layer3']),
                            ('frb_low', branch['layer1'])):
        fused[feature.shape[1]] = FeatureRefiningBlock(
            self.frb_channels, self.train, self.dtype, name=name)(feature)
      # Global 1000-d vector fused at the 1x1 bottleneck.
      bottleneck = skips[-1]
      global_feature = jnp.broadcast_to(
          branch['logits'][:, None, None, :],
          bottleneck.shape[:3] + (branch['logits'].shape[-1],))
      skips[-1] = layers.Conv(bottleneck.shape[-1], (1, 1), dtype=self.dtype,
                              name='global_fusion')(
                              jnp.concatenate([nn.relu(bottleneck),
                                               global_feature], -1))

    # Reconstruction: 8 upsamplings with skip connections.
    x = skips[-1]
    decoder_channels = list(self.trunk_channels[:-1])[::-1] + [
        self.trunk_channels[0]]
    for i, channels in enumerate(decoder_channels):
      if i > 0:
        x = jnp.concatenate([x, skips[depth - 1 - i]], axis=-1)
      # FRB features join where the decoder has their size (1/16 and 1/4 of
      # the input): before the 5th and the 7th upsampling at 256x256.
      if x.shape[1] in fused:
        x = jnp.concatenate([x, fused[x.shape[1]].astype(x.dtype)], -1)
      x = nn.relu(x)
      x = layers.UpConv(channels, use_bias=False,
                        implementation=self.upconv, dtype=self.dtype,
                        name=f'up{i + 1}')(x)
      x = bn(f'up{i + 1}_bn')(x)
      if self.dropout > 0 and i < 3:
        x = nn.Dropout(self.dropout, deterministic=not self.train)(x)
    x = nn.relu(x)

    ab = jnp.tanh(layers.Conv(2, (3, 3), padding='SAME', dtype=self.dtype,
                              name='ab_head')(x))
    outputs = {'ab': ab.astype(jnp.float32)}
    if self.use_segmentation:
      outputs['segmentation'] = layers.Conv(
          self.num_classes, (3, 3), padding='SAME', dtype=self.dtype,
          name='segmentation_head')(x).astype(jnp.float32)
    return outputs


class PatchDiscriminator(nn.Module):
  """concat(L, ab) -> patch logits [N, H/16, W/16, 1]."""
  channels: Sequence[int] = (64, 128, 256, 512)
  train: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, gray, ab):
    x = jnp.concatenate([gray, ab], axis=-1).astype(self.dtype)
    for i, channels in enumerate(self.channels):
      x = layers.Conv(channels, (4, 4), (2, 2), padding=[(1, 1)] * 2,
                      use_bias=i == 0, dtype=self.dtype, name=f'conv{i + 1}')(x)
      if i > 0:
        x = layers.batch_norm(self.train, self.dtype, f'bn{i + 1}')(x)
      x = nn.leaky_relu(x, 0.2)
    logits = layers.Conv(1, (3, 3), padding='SAME', dtype=self.dtype,
                         name='patch_logits')(x)
    return logits.astype(jnp.float32)
