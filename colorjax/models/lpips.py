"""LPIPS v0.1 with AlexNet features (Zhang et al., CVPR 2018) in Flax.

Follows `lpips.LPIPS(net='alex', version='0.1')` of the `lpips` package
(richzhang/PerceptualSimilarity) with lpips=True and spatial=False, and is
named like its state dict:

* `scaling_layer.shift` / `.scale` (buffers, [1, 3, 1, 1]): x -> (x - shift)
  / scale, with the package's fixed constants (kept as constants here; when
  the file holds them they must equal these).
* `net.sliceK.I`: torchvision's `alexnet().features[I]` for the convs
  I = 0, 3, 6, 8, 10 (slice1 = features[0:2], slice2 = [2:5], slice3 = [5:8],
  slice4 = [8:10], slice5 = [10:12]); the five ReLU outputs are the
  features.
* `linK.model.1.weight` (K = 0..4): a 1x1 conv without bias to one channel,
  after a Dropout (identity at inference). `LPIPS` also keeps the same five
  layers in a ModuleList, so its state dict repeats them as
  `lins.K.model.1.weight`; those must equal `linK...` and are then dropped.

Distance: for each layer, unit-normalise the features over channels
(x / (||x|| + 1e-10)), square the difference, apply the 1x1 conv, average
over space; sum over the five layers.

Module names follow the state dict (`net/slice1_0` holds `net.slice1.0`,
`lin0_model_1` holds `lin0.model.1`), so `colorjax.pretrained` fills
`LPIPSAlex` from a state dict of `lpips.LPIPS(net='alex')` one tensor to
one parameter (registry name `lpips_alex`); the evaluators score
colourisations with it.
"""

import flax.linen as nn
import jax.numpy as jnp

SHIFT = (-.030, -.088, -.188)
SCALE = (.458, .448, .450)
EPS = 1e-10

# (torchvision features index, slice, out channels, kernel, stride, padding);
# max pools (3x3, stride 2) precede features 3 and 6.
ALEXNET_CONVS = (
    (0, 1, 64, 11, 4, 2),
    (3, 2, 192, 5, 1, 2),
    (6, 3, 384, 3, 1, 1),
    (8, 4, 256, 3, 1, 1),
    (10, 5, 256, 3, 1, 1),
)


def normalize_tensor(x):
  """x / (sqrt(sum over channels of x^2) + 1e-10), NHWC.

  Where the sum is 0 the norm is 0 (as in the reference) but written so
  that the gradient there is finite.
  """
  squares = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
  positive = squares > 0
  norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, squares, 1.0)), 0.0)
  return x / (norm + EPS)


class AlexNetFeatures(nn.Module):
  """NHWC -> the five ReLU outputs of torchvision's AlexNet features."""

  @nn.compact
  def __call__(self, x):
    outputs = []
    for index, slice_index, channels, kernel, stride, pad in ALEXNET_CONVS:
      if index in (3, 6):
        x = nn.max_pool(x, (3, 3), (2, 2), padding='VALID')
      x = nn.Conv(channels, (kernel, kernel), (stride, stride),
                  padding=[(pad, pad), (pad, pad)],
                  name=f'slice{slice_index}_{index}')(x)
      x = nn.relu(x)
      outputs.append(x)
    return outputs


class LPIPSAlex(nn.Module):
  """(x, y) NHWC images in [-1, 1] -> LPIPS distance per image, shape [N]."""

  @nn.compact
  def __call__(self, x, y):
    shift = jnp.asarray(SHIFT, jnp.float32)
    scale = jnp.asarray(SCALE, jnp.float32)
    x = (jnp.asarray(x) - shift) / scale
    y = (jnp.asarray(y) - shift) / scale
    # Two calls of one module (shared weights). Eagerly d(x, x) is exactly
    # 0; under jit XLA:CPU may round the two branches differently (~1e-17).
    net = AlexNetFeatures(name='net')
    total = 0.
    for k, (fx, fy) in enumerate(zip(net(x), net(y))):
      diff = jnp.square(normalize_tensor(fx) - normalize_tensor(fy))
      layer = nn.Conv(1, (1, 1), use_bias=False, name=f'lin{k}_model_1')(diff)
      total = total + jnp.mean(layer, axis=(1, 2, 3))
    return total
