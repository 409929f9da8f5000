"""Layers shared by the models.

`UpConv` is a stride-s transposed convolution written as the adjoint of a
strided convolution with a custom VJP. XLA:CPU computes the weight gradient
of `nn.ConvTranspose` (a convolution with lhs dilation) about 30x slower than
PyTorch; as the adjoint, both backward passes are ordinary strided
convolutions (a U-Net step went from 14.4 s to 1.35 s). The math is the
definition PyTorch uses for ConvTranspose2d, so weights map one to one.
"""

import functools
from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

_DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')


def _strided_conv(x, kernel, stride, padding):
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), [(padding, padding)] * 2,
      dimension_numbers=_DIMENSIONS)


def _upsampled_shape(u, kernel, stride, padding):
  n, h, w, _ = u.shape
  kh, kw, c_out, _ = kernel.shape
  # Inverse of floor((H + 2p - k) / s) + 1 = h, taking the largest H.
  return (n, (h - 1) * stride + kh - 2 * padding,
          (w - 1) * stride + kw - 2 * padding, c_out)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose(u, kernel, stride: int, padding: int):
  """Transposed conv: the adjoint of `_strided_conv(., kernel)` applied to u.

  kernel is HWIO of the *strided* conv: [kh, kw, C_out_of_this, C_in_of_u].
  """
  shape = _upsampled_shape(u, kernel, stride, padding)
  _, adjoint = jax.vjp(
      lambda x: _strided_conv(x, kernel, stride, padding),
      jnp.zeros(shape, u.dtype))
  return adjoint(u)[0]


def _conv_transpose_fwd(u, kernel, stride, padding):
  return conv_transpose(u, kernel, stride, padding), (u, kernel)


def _conv_transpose_bwd(stride, padding, residuals, g):
  u, kernel = residuals
  # <A^T u, g> = <u, A g>: d/du = A g; d/dkernel = vjp of A(g) in the kernel.
  grad_u = _strided_conv(g, kernel, stride, padding)
  _, kernel_vjp = jax.vjp(lambda k: _strided_conv(g, k, stride, padding),
                          kernel)
  return grad_u, kernel_vjp(u)[0]


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


class UpConv(nn.Module):
  """Upsampling transposed convolution (default: 4x4, stride 2, padding 1)."""
  features: int
  kernel_size: int = 4
  stride: int = 2
  padding: int = 1
  use_bias: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (k, k, self.features, x.shape[-1]), self.param_dtype)
    y = conv_transpose(x.astype(self.dtype), kernel.astype(self.dtype),
                       self.stride, self.padding)
    if self.use_bias:
      bias = self.param('bias', nn.initializers.zeros, (self.features,),
                        self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y


def batch_norm(train: bool, dtype=jnp.float32, name: Optional[str] = None,
               momentum: float = 0.9, epsilon: float = 1e-5):
  """BatchNorm with PyTorch's defaults (eps 1e-5, momentum 0.1 == 0.9 here).

  Statistics are reduced over the global batch: under jit with the batch
  sharded on the data axis, XLA inserts the cross-device reductions.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=momentum,
                      epsilon=epsilon, dtype=dtype, name=name)


def pair(v) -> Tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)
