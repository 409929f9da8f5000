"""Layers shared by the models.

`Conv` is nn.Conv (same parameters) whose padded convolutions, inside
`padded_weight_grads` (the train step on CPU with XLA's own kernels), take
their weight gradient on the padded input (`conv_padded_weight_grad`).

`UpConv` is a stride-s transposed convolution written as the adjoint of a
strided convolution with a custom VJP. XLA:CPU computes the weight gradient
of `nn.ConvTranspose` (a convolution with lhs dilation) about 30x slower than
PyTorch; as the adjoint, both backward passes are ordinary strided
convolutions (a U-Net step went from 14.4 s to 1.35 s). The math is the
definition PyTorch uses for ConvTranspose2d, so weights map one to one.
"""

import functools
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

_DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')


# Whether `conv_general_dilated` (the models' `Conv`, blockdiag grouped
# convs) and UpConv's adjoint take weight gradients on the padded input.
# Set while a train step traces (`padded_weight_grads`, from
# methods.base.jit_train_step): on CPU where the step compiles with XLA's
# own convolution kernels; with YNNPACK's it was slower.
_PADDED_WEIGHT_GRADS = [False]


class padded_weight_grads:  # pylint: disable=invalid-name
  """Context manager: the convolutions traced inside it take their weight
  gradients on the padded input (`conv_padded_weight_grad`)."""

  def __init__(self, enabled: bool = True):
    self.enabled = enabled

  def __enter__(self):
    _PADDED_WEIGHT_GRADS.append(self.enabled)

  def __exit__(self, *exc):
    _PADDED_WEIGHT_GRADS.pop()


def _strided_conv(x, kernel, stride, padding):
  return _conv(x, kernel, (stride, stride), ((padding, padding),) * 2,
               (1, 1))


def _upsampled_shape(u, kernel, stride, padding, output_padding=0):
  n, h, w, _ = u.shape
  kh, kw, c_out, _ = kernel.shape
  # Inverse of floor((H + 2p - k) / s) + 1 = h: the smallest H, plus
  # output_padding (< stride) to pick another of the s sizes that map to h,
  # as PyTorch's ConvTranspose2d(output_padding=...) does.
  return (n, (h - 1) * stride + kh - 2 * padding + output_padding,
          (w - 1) * stride + kw - 2 * padding + output_padding, c_out)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv_transpose(u, kernel, stride: int, padding: int,
                   output_padding: int = 0):
  """Transposed conv: the adjoint of `_strided_conv(., kernel)` applied to u.

  kernel is HWIO of the *strided* conv: [kh, kw, C_out_of_this, C_in_of_u].
  output_padding: PyTorch's (e.g. 3x3, stride 2, padding 1, output_padding
  1 doubles the size exactly).
  """
  shape = _upsampled_shape(u, kernel, stride, padding, output_padding)
  _, adjoint = jax.vjp(
      lambda x: _strided_conv(x, kernel, stride, padding),
      jnp.zeros(shape, u.dtype))
  return adjoint(u)[0]


def _conv_transpose_fwd(u, kernel, stride, padding, output_padding):
  return (conv_transpose(u, kernel, stride, padding, output_padding),
          (u, kernel))


def _conv_transpose_bwd(stride, padding, output_padding, residuals, g):
  del output_padding     # g already has the padded shape
  u, kernel = residuals
  # <A^T u, g> = <u, A g>: d/du = A g; d/dkernel = vjp of A(g) in the kernel.
  grad_u = _strided_conv(g, kernel, stride, padding)
  if _PADDED_WEIGHT_GRADS[-1]:
    return grad_u, _padded_weight_grad(g, kernel, (stride, stride),
                                       ((padding, padding),) * 2, u)
  _, kernel_vjp = jax.vjp(lambda k: _strided_conv(g, k, stride, padding),
                          kernel)
  return grad_u, kernel_vjp(u)[0]


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv_padded_weight_grad(x, kernel, strides, padding, dilation=(1, 1)):
  """A zero-padded NHWC/HWIO convolution whose weight gradient is taken on
  the padded input with no padding (the same sums).

  Values and the input gradient are XLA's. The weight gradient of a padded
  convolution is, to XLA:CPU's own kernels, a convolution with the padding
  on its large "kernel" (the output gradient); on the explicitly padded
  input it has none and runs up to 2x faster (3x3, batch 2, one core:
  88x88x64 33.8 -> 15.6 ms, 176x176x32 44.7 -> 21.1 ms; BENCHMARKS.md).
  strides, dilation: (h, w) of the window and of the kernel; padding:
  ((top, bottom), (left, right)).
  """
  return _conv(x, kernel, strides, padding, dilation)


def _conv(x, kernel, strides, padding, dilation):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                      rhs_dilation=dilation,
                                      dimension_numbers=_DIMENSIONS)


def _conv_padded_fwd(x, kernel, strides, padding, dilation):
  return (conv_padded_weight_grad(x, kernel, strides, padding, dilation),
          (x, kernel))


def _conv_padded_bwd(strides, padding, dilation, residuals, g):
  x, kernel = residuals
  _, x_vjp = jax.vjp(lambda v: _conv(v, kernel, strides, padding, dilation),
                     x)
  return x_vjp(g)[0], _padded_weight_grad(x, kernel, strides, padding, g,
                                          dilation)


def _padded_weight_grad(x, kernel, strides, padding, g, dilation=(1, 1)):
  """d<conv(x, kernel), g>/d kernel, taken on the padded x unpadded.

  Behind an optimization barrier, added when XLA:CPU fused the gradient
  convolutions of a kernel used twice (the discriminator on real and on
  fake images) into YNNPACK's fusion of their sum, which ran them at
  3 GFLOP/s (ChromaCMC's discriminator conv2: 176 ms per step; 3.82 ->
  3.71 s per step with the barrier). Its effect is in doubt: a barrier on
  a forward convolution later left the compiled step unchanged, with no
  barrier left in it, and steps vary 5-10% from run to run (BENCHMARKS.md,
  2026-12-07 late night)."""
  padded = jnp.pad(x, ((0, 0),) + tuple(padding) + ((0, 0),))
  _, kernel_vjp = jax.vjp(
      lambda k: _conv(padded, k, strides, 'VALID', dilation), kernel)
  return jax.lax.optimization_barrier(kernel_vjp(g)[0])


conv_padded_weight_grad.defvjp(_conv_padded_fwd, _conv_padded_bwd)


def conv_general_dilated(lhs, rhs, window_strides, padding,
                         lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1,
                         precision=None, **kwargs):
  """`lax.conv_general_dilated` for nn.Conv(conv_general_dilated=...):
  inside `padded_weight_grads`, a plain padded 2-D NHWC convolution goes
  through `conv_padded_weight_grad`; everything else (and everything
  outside it) is lax's own op. The parameters are nn.Conv's either way."""
  plain = (_PADDED_WEIGHT_GRADS[-1] and lhs.ndim == 4 and not kwargs
           and feature_group_count == 1 and precision is None
           and all(d == 1 for d in (lhs_dilation or (1, 1)))
           and jax.lax.conv_dimension_numbers(
               lhs.shape, rhs.shape, dimension_numbers) ==
           jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                          _DIMENSIONS))
  if plain:
    dilation = tuple(rhs_dilation or (1, 1))
    window = [(k - 1) * d + 1 for k, d in zip(rhs.shape[:2], dilation)]
    pads = (jax.lax.padtype_to_pads(lhs.shape[1:3], window, window_strides,
                                    padding)
            if isinstance(padding, str) else padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    if any(p != (0, 0) for p in pads) and all(
        p >= 0 for pair in pads for p in pair):
      return conv_padded_weight_grad(lhs, rhs, tuple(window_strides), pads,
                                     dilation)
  return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
      rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
      feature_group_count=feature_group_count, precision=precision,
      **kwargs)


class Conv(nn.Conv):
  """nn.Conv (same parameters and names) through `conv_general_dilated`."""
  conv_general_dilated: Any = conv_general_dilated


def resolve_implementation(implementation: str, cpu: str, other: str) -> str:
  """'auto' picks the CPU workaround on CPU and XLA's own op elsewhere."""
  if implementation != 'auto':
    return implementation
  return cpu if jax.default_backend() == 'cpu' else other


def conv_transpose_xla(u, kernel, stride: int, padding: int,
                       output_padding: int = 0):
  """The same transposed conv as `conv_transpose`, as XLA's lhs-dilated
  convolution (`lax.conv_transpose`): cuDNN / TPU handle it natively."""
  k = kernel.shape[0]
  pad = (k - 1 - padding, k - 1 - padding + output_padding)
  return jax.lax.conv_transpose(
      u, kernel, (stride, stride), [pad] * 2,
      dimension_numbers=_DIMENSIONS, transpose_kernel=True)


def _phase_taps(phase: int, stride: int, padding: int, taps: int):
  """Phase `phase` of a stride-s transposed convolution as a correlation
  over u: (offset of its first u tap, the kernel rows it uses as a slice,
  first tap first). With o = s*m + a and t = o + p - s*i:
  y[s*m + a] = sum_j u[m + q - j] K[s*j + r], r, q = (a + p) mod s, div s,
  j = 0..taps-1; as a correlation the taps run j = taps-1 .. 0."""
  q, r = divmod(phase + padding, stride)
  last = stride * (taps - 1) + r
  return q - taps + 1, slice(last, r - 1 if r else None, -stride)


def conv_transpose_subpixel(u, kernel, stride: int, padding: int,
                            output_padding: int = 0):
  """The same transposed conv as `conv_transpose`, as s*s ordinary
  stride-1 convolutions with ceil(k/s)^2 taps, one per output phase,
  interleaved (depth-to-space). Exact (a kernel that is not a multiple of
  s gets zero taps). Its backward is ordinary convolutions' (no lhs
  dilation, no flips of the adjoint form)."""
  n, h, w, _ = u.shape
  _, out_h, out_w, c_out = _upsampled_shape(u, kernel, stride, padding,
                                            output_padding)
  kh, kw, _, _ = kernel.shape
  if kh != kw:
    raise ValueError(f'subpixel needs a square kernel, not {kh}x{kw}')
  taps = -(-kh // stride)         # zero taps past k: the same sums
  kernel = jnp.pad(kernel, ((0, taps * stride - kh),) * 2 + ((0, 0),) * 2)
  rows = -(-out_h // stride)          # outputs per phase (before the crop)
  cols = -(-out_w // stride)
  phases = [_phase_taps(a, stride, padding, taps) for a in range(stride)]
  low = max(0, -min(offset for offset, _ in phases))
  high_h = max(0, max(o for o, _ in phases) + rows + taps - 1 - h)
  high_w = max(0, max(o for o, _ in phases) + cols + taps - 1 - w)
  padded = jnp.pad(u, ((0, 0), (low, high_h), (low, high_w), (0, 0)))
  kernel = jnp.swapaxes(kernel, 2, 3)      # HWIO of the correlation over u
  outputs = []
  for a_offset, a_rows in phases:
    row = []
    for b_offset, b_cols in phases:
      top, left = a_offset + low, b_offset + low
      window = padded[:, top:top + rows + taps - 1,
                      left:left + cols + taps - 1]
      sub = kernel[a_rows, b_cols]
      row.append(jax.lax.conv_general_dilated(
          window, sub, (1, 1), 'VALID', dimension_numbers=_DIMENSIONS))
    outputs.append(jnp.stack(row, axis=3))       # [N, rows, cols, s, C]
  y = jnp.stack(outputs, axis=2)                 # [N, rows, s, cols, s, C]
  y = y.reshape(n, rows * stride, cols * stride, c_out)
  return y[:, :out_h, :out_w]


def conv_transpose_matmul(u, kernel, stride: int, padding: int,
                          output_padding: int = 0):
  """The same transposed conv as `conv_transpose`, as one matmul and an
  overlap-add: every input pixel times every kernel tap,
  [N*h*w, C_in] x [C_in, k*k*C_out] (the transposed conv's own FLOPs, no
  zeros), then the k*k per-tap images summed at their stride-s offsets
  (phase by phase: pads, adds and one depth-to-space). Its gradients are
  the two matmuls' and slices: no dilated or flipped convolutions."""
  n, h, w, _ = u.shape
  kh, kw, c_out, _ = kernel.shape
  _, out_h, out_w, _ = _upsampled_shape(u, kernel, stride, padding,
                                        output_padding)
  s = stride
  taps = -(-max(kh, kw) // s)              # taps per phase, zero past k
  kernel = jnp.pad(kernel, ((0, taps * s - kh), (0, taps * s - kw),
                            (0, 0), (0, 0)))
  per_tap = jnp.einsum('nhwc,ijoc->nhwijo', u, kernel).reshape(
      n, h, w, taps, s, taps, s, c_out)
  full = None                     # [N, h+taps-1, w+taps-1, s, s, C_out]
  for a in range(taps):
    for b in range(taps):
      term = jnp.pad(per_tap[:, :, :, a, :, b], (
          (0, 0), (a, taps - 1 - a), (b, taps - 1 - b), (0, 0), (0, 0),
          (0, 0)))
      full = term if full is None else full + term
  full = full.transpose(0, 1, 3, 2, 4, 5).reshape(
      n, (h + taps - 1) * s, (w + taps - 1) * s, c_out)
  return full[:, padding:padding + out_h, padding:padding + out_w]


# On CPU, inputs of up to 32x32 pixels take the matmul form: there XLA's
# convolutions of a few pixels and 512-1024 channels (kernels larger than
# the activations) and the adjoint form's kernel flips cost more than the
# arithmetic. ChromaCMC's paper step without its branch, batch 2, 2-core
# Zen 3 (2026-12-07): all adjoint 2.52 s; matmul up to 32x32 2.27 s, up to
# 64x64 2.29 s, everywhere 2.33 s (BENCHMARKS.md).
MATMUL_MAX_PIXELS = 32 * 32
CPU_UPCONV = 'matmul|adjoint'        # as reports name 'auto' on CPU


def cpu_upconv(pixels: int) -> str:
  """UpConv's CPU form for an input of `pixels` (height x width)."""
  return 'matmul' if pixels <= MATMUL_MAX_PIXELS else 'adjoint'


class UpConv(nn.Module):
  """Upsampling transposed convolution (default: 4x4, stride 2, padding 1;
  3x3 needs output_padding=1 for an exact 2x, as in PyTorch).

  implementation: 'adjoint' (`conv_transpose`, custom VJP: fast on CPU),
  'matmul' (`conv_transpose_matmul`: one matmul and an overlap-add),
  'subpixel' (`conv_transpose_subpixel`: per-phase ordinary convolutions),
  'xla' (`conv_transpose_xla`), or 'auto' = on CPU matmul for small
  inputs and adjoint above (`cpu_upconv`), xla elsewhere.
  All compute the same function with the same parameters.
  """
  features: int
  kernel_size: int = 4
  stride: int = 2
  padding: int = 1
  output_padding: int = 0
  use_bias: bool = True
  implementation: str = 'auto'
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (k, k, self.features, x.shape[-1]), self.param_dtype)
    implementation = resolve_implementation(
        self.implementation, cpu_upconv(x.shape[1] * x.shape[2]), 'xla')
    transpose = {'adjoint': conv_transpose,
                 'matmul': conv_transpose_matmul,
                 'subpixel': conv_transpose_subpixel,
                 'xla': conv_transpose_xla}[implementation]
    y = transpose(x.astype(self.dtype), kernel.astype(self.dtype),
                  self.stride, self.padding, self.output_padding)
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



def grouped_conv_matmul(x, kernel, stride: int, padding: int, groups: int):
  """Grouped convolution as shifted slices + one batched matmul per group.

  Same result as lax.conv_general_dilated(..., feature_group_count=groups)
  with an HWIO kernel [kh, kw, C_in / groups, C_out]. XLA:CPU runs grouped
  convolutions (and their gradients) about 100x slower than a dense
  convolution with 32x the FLOPs; slices and a batched matmul are fast on
  every backend and differentiate into the same cheap operations.
  """
  kh, kw, cin_group, cout = kernel.shape
  n, h, w, _ = x.shape
  out_h = (h + 2 * padding - kh) // stride + 1
  out_w = (w + 2 * padding - kw) // stride + 1
  padded = jnp.pad(x, [(0, 0), (padding, padding), (padding, padding),
                       (0, 0)])
  patches = jnp.stack([
      jax.lax.slice(padded, (0, i, j, 0),
                    (n, i + stride * (out_h - 1) + 1,
                     j + stride * (out_w - 1) + 1, x.shape[-1]),
                    (1, stride, stride, 1))
      for i in range(kh) for j in range(kw)], axis=3)
  patches = patches.reshape(n, out_h, out_w, kh * kw, groups, cin_group)
  weights = kernel.reshape(kh * kw, cin_group, groups, cout // groups)
  out = jnp.einsum('nhwkgc,kcgo->nhwgo', patches, weights)
  return out.reshape(n, out_h, out_w, cout)


def grouped_conv_blockdiag(x, kernel, stride: int, padding: int,
                           groups: int, block_channels: int = 32):
  """Grouped convolution as dense convolutions over blocks of groups.

  Same result as lax.conv_general_dilated(..., feature_group_count=groups)
  with an HWIO kernel [kh, kw, C_in / groups, C_out]. The groups are taken
  `block_channels` input channels at a time; each block is one ordinary
  convolution whose kernel is block-diagonal (zeros between its groups).
  That multiplies the FLOPs by the groups per block (8 for SE-ResNeXt50's
  first stage), but XLA:CPU's dense convolutions and their gradients run
  so much faster than its grouped ones, or than the patches + batched
  matmul of `grouped_conv_matmul`, that the grouped convs of SE-ResNeXt50
  take 2.7x less time than in the matmul form (forward + backward, batch
  2, 256x256: 209 vs 562 ms; BENCHMARKS.md).
  """
  kh, kw, cin_group, cout = kernel.shape
  cout_group = cout // groups
  per_block = max(1, min(groups, block_channels // max(cin_group, 1)))
  while groups % per_block:
    per_block -= 1
  blocks = groups // per_block
  # [kh, kw, cin_g, blocks, per_block, cout_g] -> block-diagonal dense
  # kernels [blocks, kh, kw, per_block * cin_g, per_block * cout_g].
  weights = kernel.reshape(kh, kw, cin_group, blocks, per_block, cout_group)
  eye = jnp.eye(per_block, dtype=kernel.dtype)
  dense = jnp.einsum('hwcbgo,ge->bhwgceo', weights, eye).reshape(
      blocks, kh, kw, per_block * cin_group, per_block * cout_group)
  width = per_block * cin_group
  outputs = [conv_general_dilated(
      x[..., b * width:(b + 1) * width], dense[b], (stride, stride),
      [(padding, padding)] * 2, dimension_numbers=_DIMENSIONS)
             for b in range(blocks)]
  return outputs[0] if blocks == 1 else jnp.concatenate(outputs, axis=-1)


# What GroupedConv's 'auto' picks on CPU (benchmark reports it too):
# blockdiag where a block of 32 channels holds at most 8 groups (at least 4
# input channels per group), else matmul. With fewer channels per group the
# block-diagonal kernels are mostly zeros (16-32x the FLOPs), and the matmul
# form was measured quicker (ChromaCMC's demo branch, 1-2 channels per group
# in its first stages: 0.251 s per step all matmul, 0.278 s all blockdiag).
CPU_GROUPED_CONV = 'blockdiag|matmul'
MIN_BLOCKDIAG_CHANNELS_PER_GROUP = 4


class GroupedConv(nn.Module):
  """A bias-free grouped convolution with nn.Conv's parameter layout.

  implementation: 'xla' (feature_group_count; best with cuDNN / TPU),
  'blockdiag' (`grouped_conv_blockdiag`), 'matmul' (`grouped_conv_matmul`),
  or 'auto' = on CPU blockdiag or matmul by channels per group
  (CPU_GROUPED_CONV), xla elsewhere. All share one parameter.
  """
  features: int
  kernel_size: int = 3
  stride: int = 1
  groups: int = 32
  implementation: str = 'auto'
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (k, k, x.shape[-1] // self.groups, self.features),
                        self.param_dtype)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    implementation = resolve_implementation(self.implementation,
                                            CPU_GROUPED_CONV, 'xla')
    if implementation == CPU_GROUPED_CONV:
      implementation = ('blockdiag' if kernel.shape[2] >=
                        MIN_BLOCKDIAG_CHANNELS_PER_GROUP else 'matmul')
    if implementation == 'matmul':
      return grouped_conv_matmul(x, kernel, self.stride, k // 2, self.groups)
    if implementation == 'blockdiag':
      return grouped_conv_blockdiag(x, kernel, self.stride, k // 2,
                                    self.groups)
    return jax.lax.conv_general_dilated(
        x, kernel, (self.stride, self.stride), [(k // 2, k // 2)] * 2,
        dimension_numbers=_DIMENSIONS, feature_group_count=self.groups)
