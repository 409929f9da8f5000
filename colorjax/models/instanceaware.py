"""InstanceAware network (paper 003, section 2, Fig. 2) and Zhang et al.'s
ECCV16 colorization network it is built on.

Trunk = Zhang et al. 2016 (richzhang/colorization `eccv16`), named like its
PyTorch state dict so the published weights map key by key (`model1_0` holds
`model1.0`): blocks model1..model8 of 3x3 convolutions + ReLU, each of
model1..model7 closed by BatchNorm; model1-3 end with a stride-2
convolution; model5-6 are dilated by 2; model8 = 4x4 stride-2 transposed
convolution + two 3x3 convolutions + the 1x1 convolution to 313 ab-bin
logits (`model8_6`). Output at 1/4 of the input size. The paper calls the
blocks conv1..conv8 and the 313-way layer conv9.

Classification branch (section 2.1) at conv5's output: "down-sample ... by
50%" (2x2 max pool), three fully connected layers fc1-fc3, a classifier over
the image classes. Fusion: fc3 replicated over conv5's grid and concatenated
with it, as Iizuka et al. 2016 (which the paper cites for it), then a 1x1
fusion convolution (Iizuka's fusion layer) back to conv5's width so conv6's
pretrained weights keep their shape. `fusion='identity'` (default) makes it
linear and initialises it to pass conv5 through unchanged (zero weights on
the fc3 channels): with Zhang's weights loaded, the network starts as
Zhang's network exactly, and the branch's contribution grows from zero;
`fusion='relu'` is Iizuka's form (random init, ReLU), which starts conv6-9
on features they were not trained on. Open choices (configs/instanceaware.py):
`branch_reduce='vgg16'` (the paper preset) makes the branch VGG16's head,
so ImageNet weights fit it: the 2x2 pool is VGG's pool5, then torchvision's
adaptive average pool to 7x7 and flatten in PyTorch's order, fc1-fc3 =
fc6-fc8 (4096, 4096, 1000); it takes any input size. 'flatten' is fc1 on the
flattened pooled map (fixes the input size), 'mean' pools it globally
(fc widths then free, e.g. Iizuka's 1024/512/256). `num_classes=0` removes
the branch: Zhang's network.
"""

from typing import Any, Dict, Sequence

import flax.linen as nn
import jax.numpy as jnp

from colorjax.models import layers
from colorjax.models import vgg

NUM_BINS = 313

# (widths of model1..model8, convolutions per block), fc widths.
SIZES = {
    'paper': dict(widths=(64, 128, 256, 512, 512, 512, 512, 256),
                  depths=(2, 2, 3, 3, 3, 3, 3, 3),
                  fc_features=(4096, 4096, 1000)),   # VGG16's fc6-fc8
    'demo': dict(widths=(32, 48, 64, 96, 96, 96, 96, 64),
                 depths=(1, 1, 2, 2, 2, 2, 2, 2),
                 fc_features=(128, 96, 64)),
    'tiny': dict(widths=(8, 8, 16, 16, 16, 16, 16, 16),
                 depths=(1, 1, 1, 1, 1, 1, 1, 2),
                 fc_features=(16, 16, 16)),
}

_STRIDED = (0, 1, 2)      # blocks whose last convolution has stride 2
_DILATED = (4, 5)         # blocks with dilation 2


def _pass_through(width: int):
  """1x1 kernel [1, 1, width + extra, width]: identity on the first `width`
  input channels, zero on the rest."""
  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.eye(shape[2], shape[3], dtype=dtype).reshape(shape)
  return init


class InstanceAware(nn.Module):
  """Normalised gray [N, H, W, 1] (L/50 - 1) -> {'logits': [N, H/4, W/4,
  313] (float32), 'classification': [N, C] logits when num_classes > 0}."""
  widths: Sequence[int] = SIZES['paper']['widths']
  depths: Sequence[int] = SIZES['paper']['depths']
  fc_features: Sequence[int] = SIZES['paper']['fc_features']
  num_classes: int = 20
  branch_reduce: str = 'flatten'     # 'flatten' | 'mean' | 'vgg16'
  fusion: str = 'identity'           # 'identity' | 'relu'
  num_bins: int = NUM_BINS
  upconv: str = 'auto'
  train: bool = False
  dtype: Any = jnp.float32

  def _conv(self, features, name, stride=1, dilation=1, kernel=3):
    pad = dilation * (kernel // 2)
    return layers.Conv(features, (kernel, kernel), (stride, stride),
                       padding=[(pad, pad)] * 2, kernel_dilation=dilation,
                       dtype=self.dtype, name=name)

  def _block(self, x, index):
    """model{index+1}: convolutions + ReLU, closing BatchNorm (not model8)."""
    block = f'model{index + 1}'
    width, depth = self.widths[index], self.depths[index]
    position = 0
    if index == 7:                 # 4x4 stride-2 transposed conv first
      x = nn.relu(layers.UpConv(width, implementation=self.upconv,
                                dtype=self.dtype,
                                name=f'{block}_0')(x))
      position, depth = 2, depth - 1
    for i in range(depth):
      stride = 2 if index in _STRIDED and i == depth - 1 else 1
      dilation = 2 if index in _DILATED else 1
      x = nn.relu(self._conv(width, f'{block}_{position}', stride,
                             dilation)(x))
      position += 2
    if index < 7:
      x = layers.batch_norm(self.train, self.dtype,
                            name=f'{block}_{position}')(x)
    return x, position

  @nn.compact
  def __call__(self, gray) -> Dict[str, Any]:
    # Zhang's input normalisation (L - 50) / 100 of L = 50 (gray + 1).
    x = gray.astype(self.dtype) * 0.5
    for index in range(5):
      x, _ = self._block(x, index)
    out = {}
    if self.num_classes:
      conv5 = x
      h = nn.max_pool(conv5, (2, 2), (2, 2))
      if self.branch_reduce == 'flatten':   # fc1 fixes the input size
        h = h.reshape(h.shape[0], -1)
      elif self.branch_reduce == 'mean':
        h = jnp.mean(h, axis=(1, 2))
      elif self.branch_reduce == 'vgg16':   # VGG16's pool5 -> fc6 input
        h = vgg.flatten_like_torch(vgg.adaptive_avg_pool(h, (7, 7)))
      else:
        raise ValueError(f'branch_reduce must be flatten, mean or vgg16, '
                         f'not {self.branch_reduce!r}')
      for i, features in enumerate(self.fc_features):
        h = nn.relu(nn.Dense(features, dtype=self.dtype, name=f'fc{i + 1}')(h))
      out['classification'] = nn.Dense(
          self.num_classes, dtype=self.dtype,
          name='classifier')(h).astype(jnp.float32)
      tiled = jnp.broadcast_to(h[:, None, None, :],
                               conv5.shape[:3] + (h.shape[-1],))
      x = jnp.concatenate([conv5, tiled.astype(conv5.dtype)], axis=-1)
      width = conv5.shape[-1]
      if self.fusion == 'identity':
        x = layers.Conv(width, (1, 1), dtype=self.dtype, name='fusion',
                        kernel_init=_pass_through(width))(x)
      elif self.fusion == 'relu':
        x = nn.relu(layers.Conv(width, (1, 1), dtype=self.dtype,
                                name='fusion')(x))
      else:
        raise ValueError(f"fusion must be 'identity' or 'relu', not "
                         f'{self.fusion!r}')
    for index in range(5, 8):
      x, position = self._block(x, index)
    logits = layers.Conv(self.num_bins, (1, 1), dtype=self.dtype,
                         name=f'model8_{position}')(x)
    out['logits'] = logits.astype(jnp.float32)
    return out
