"""Conditional PixelCNN++ over the ab map, with a cached incremental sampler.

Architecture (paper 004's generator g, after Salimans et al. 2017): two
causal streams at full resolution (no down/up-sampling, so every layer can
be cached): a vertical stream `u` (down-shifted 2x3 convolutions: sees the
rows above) and a horizontal stream `ul` (down-right-shifted 2x2
convolutions plus `u`: sees the rows above and the pixels to the left).
Each gated residual block has two shifted convolutions, a skip connection
and a sigmoid gate; the conditioning features (colour embedding, optionally
with semantics) enter every block through a 1x1 projection. The output is
the DMoL parameters of each pixel (colorjax.losses.dmol).

The model is written as pure functions over a parameter dict, so the same
per-site convolution serves the full (teacher-forced / naive) forward pass
and the cached step of `sample_cached`, which keeps, for every convolution,
its (padded) input map and computes only what a new row (vertical stream)
or a new pixel (horizontal stream) needs: a full sample costs about one
forward pass instead of n (fast-pixel-cnn, Ramachandran et al. 2017).
"""

from typing import Any, Dict, NamedTuple

import jax
import jax.numpy as jnp

from colorjax.losses import dmol

_DIMS = ('NHWC', 'HWIO', 'NHWC')
DOWN = 'down'              # rows above incl. own row, centred columns
DOWN_RIGHT = 'down_right'  # rows above incl. own row, columns to the left


class Site(NamedTuple):
  """A shifted convolution: its kernel shape and causal padding."""
  kind: str
  kh: int
  kw: int

  @property
  def pad_top(self):
    return self.kh - 1

  @property
  def pad_left(self):
    return (self.kw - 1) // 2 if self.kind == DOWN else self.kw - 1

  @property
  def pad_right(self):
    return (self.kw - 1) // 2 if self.kind == DOWN else 0


def _site_names(num_blocks):
  sites = {'u0': Site(DOWN, 2, 3), 'ul0_above': Site(DOWN, 1, 3),
           'ul0_left': Site(DOWN_RIGHT, 2, 1)}
  for k in range(num_blocks):
    sites[f'u{k + 1}_c1'] = Site(DOWN, 2, 3)
    sites[f'u{k + 1}_c2'] = Site(DOWN, 2, 3)
    sites[f'ul{k + 1}_c1'] = Site(DOWN_RIGHT, 2, 2)
    sites[f'ul{k + 1}_c2'] = Site(DOWN_RIGHT, 2, 2)
  return sites


def init_params(rng, in_channels: int, cond_channels: int, channels: int,
                num_blocks: int, num_mixtures: int) -> Dict[str, Any]:
  """Parameters of the generator (weight-normalisation-free, He init)."""
  sites = _site_names(num_blocks)
  params = {}
  keys = iter(jax.random.split(rng, 4 * len(sites) + 8 * num_blocks + 4))

  def dense(cin, cout, kh=1, kw=1, scale=1.0):
    fan_in = cin * kh * kw
    w = jax.random.normal(next(keys), (kh, kw, cin, cout)) * scale * (
        2.0 / fan_in) ** 0.5
    return {'w': w, 'b': jnp.zeros((cout,))}

  x_channels = in_channels + 1          # + a channel of ones (edge marker)
  for name, site in sites.items():
    cin = x_channels if name.startswith(('u0', 'ul0')) else channels
    cout = 2 * channels if name.endswith('c2') else channels
    params[name] = dense(cin, cout, site.kh, site.kw,
                         scale=0.1 if name.endswith('c2') else 1.0)
  for k in range(num_blocks):
    params[f'u{k + 1}_cond'] = dense(cond_channels, 2 * channels, scale=0.1)
    params[f'ul{k + 1}_cond'] = dense(cond_channels, 2 * channels, scale=0.1)
    params[f'ul{k + 1}_skip'] = dense(channels, channels)
  params['out'] = dense(channels, dmol.num_outputs(num_mixtures), scale=0.1)
  return params


def num_blocks_of(params) -> int:
  return sum(1 for k in params if k.startswith('u') and k.endswith('_c1')
             and not k.startswith('ul'))


def _conv(window, p):
  """VALID convolution of an already-padded window."""
  return jax.lax.conv_general_dilated(window, p['w'], (1, 1), 'VALID',
                                      dimension_numbers=_DIMS) + p['b']


def _conv_pixel(window, p):
  """One output pixel from its [B, kh, kw, C] window: a single matmul.

  Equal to `_conv` of the window, but one GEMM instead of a convolution
  call per step: the per-pixel work of the cached sampler is tiny, so call
  overhead, not arithmetic, decides its speed.
  """
  b = window.shape[0]
  kernel = p['w'].reshape(-1, p['w'].shape[-1])
  return (window.reshape(b, -1) @ kernel + p['b'])[:, None, None, :]


def _pad(x, site: Site):
  return jnp.pad(x, [(0, 0), (site.pad_top, 0),
                     (site.pad_left, site.pad_right), (0, 0)])


def _nin(x, p):
  return jnp.einsum('...c,co->...o', x, p['w'][0, 0]) + p['b']


def _gate(x, c2):
  a, g = jnp.split(c2, 2, axis=-1)
  return x + a * jax.nn.sigmoid(g)


def _with_ones(ab):
  return jnp.concatenate([ab, jnp.ones(ab.shape[:-1] + (1,), ab.dtype)], -1)


def _down_shift(x):
  return jnp.pad(x, [(0, 0), (1, 0), (0, 0), (0, 0)])[:, :-1]


def _right_shift(x):
  return jnp.pad(x, [(0, 0), (0, 0), (1, 0), (0, 0)])[:, :, :-1]


def forward(params, ab, cond):
  """Teacher-forced DMoL parameters [B, H, W, 6K] for ab [B, H, W, 2]."""
  sites = _site_names(num_blocks_of(params))
  x = _with_ones(ab)
  conv = lambda name, inp: _conv(_pad(inp, sites[name]), params[name])
  u = _down_shift(conv('u0', x))
  ul = (_down_shift(conv('ul0_above', x))
        + _right_shift(conv('ul0_left', x)))
  for k in range(1, num_blocks_of(params) + 1):
    c1 = conv(f'u{k}_c1', jax.nn.elu(u))
    u = _gate(u, conv(f'u{k}_c2', jax.nn.elu(c1))
              + _nin(cond, params[f'u{k}_cond']))
    c1 = conv(f'ul{k}_c1', jax.nn.elu(ul)) + _nin(jax.nn.elu(u),
                                                  params[f'ul{k}_skip'])
    ul = _gate(ul, conv(f'ul{k}_c2', jax.nn.elu(c1))
               + _nin(cond, params[f'ul{k}_cond']))
  return _nin(jax.nn.elu(ul), params['out'])


# --------------------------------------------------------------- samplers
def _pixel_rng(rng, i, j, width):
  return jax.random.fold_in(rng, i * width + j)


def sample_naive(params, cond, rng, num_mixtures, temperature=1.0,
                 num_pixels=None, forward_fn=None):
  """Reference sampler: the full network (`forward_fn`, default this
  module's `forward`) is rerun for each of the n pixels (only the first
  `num_pixels` in raster order if given: for timing)."""
  forward_fn = forward_fn or forward
  batch, height, width, _ = cond.shape

  def body(position, ab):
    i, j = position // width, position % width
    outputs = forward_fn(params, ab, cond)[:, i, j]
    pixel = dmol.dmol_sample(_pixel_rng(rng, i, j, width), outputs,
                             num_mixtures, temperature)
    return ab.at[:, i, j].set(pixel)

  ab = jnp.zeros((batch, height, width, 2), jnp.float32)
  return jax.lax.fori_loop(0, num_pixels or height * width, body, ab)


def _empty_caches(params, batch, height, width, channels, x_channels):
  caches = {}
  for name, site in _site_names(num_blocks_of(params)).items():
    cin = x_channels if name.startswith(('u0', 'ul0')) else channels
    caches[name] = jnp.zeros((batch, height + site.pad_top,
                              width + site.pad_left + site.pad_right, cin))
  return caches


def _write(cache, value, site: Site, i, j):
  """Stores input rows/pixels at image position (i, j) in a padded cache."""
  return jax.lax.dynamic_update_slice(
      cache, value, (0, i + site.pad_top, j + site.pad_left, 0))


def _row_window(cache, site: Site, i):
  """Padded input rows feeding output row i (all columns)."""
  return jax.lax.dynamic_slice_in_dim(cache, i, site.kh, axis=1)


def _pixel_window(cache, site: Site, i, j):
  """Padded input window feeding output pixel (i, j)."""
  b, _, _, c = cache.shape
  return jax.lax.dynamic_slice(cache, (0, i, j, 0), (b, site.kh, site.kw, c))


def sample_cached(params, cond, rng, num_mixtures, temperature=1.0,
                  teacher_ab=None):
  """Incremental sampler: lax.scan over rows, then over pixels of a row.

  The vertical stream of a whole row is computed once the rows above are
  known; the horizontal stream is computed one pixel at a time, reading
  each convolution's cached input window. Same per-pixel RNG as
  `sample_naive`, so with the same key both return the same samples.
  With `teacher_ab` the given pixels are fed instead of samples, and the
  per-pixel DMoL parameters are returned too (to test against `forward`).
  Returns (ab [B, H, W, 2], outputs [B, H, W, 6K] or None).
  """
  sites = _site_names(num_blocks_of(params))
  blocks = num_blocks_of(params)
  batch, height, width, _ = cond.shape
  channels = params['u1_c1']['w'].shape[-1] if blocks else params[
      'u0']['w'].shape[-1]
  x_channels = params['u0']['w'].shape[2]
  caches = _empty_caches(params, batch, height, width, channels, x_channels)
  num_out = dmol.num_outputs(num_mixtures)

  def row_step(carry, i):
    caches, ab = carry
    # --- vertical stream for row i, every layer (rows above are final).
    # u0 = down_shift(conv(x)): row i is conv(x) at row i - 1.
    u0_prev = _conv(_row_window(caches['u0'], sites['u0'], jnp.maximum(
        i - 1, 0)), params['u0'])
    u = jnp.where(i > 0, u0_prev, jnp.zeros_like(u0_prev))
    cond_row = jax.lax.dynamic_slice_in_dim(cond, i, 1, 1)
    u_rows = [u]
    for k in range(1, blocks + 1):
      caches[f'u{k}_c1'] = _write(caches[f'u{k}_c1'], jax.nn.elu(u),
                                  sites[f'u{k}_c1'], i, 0)
      c1 = _conv(_row_window(caches[f'u{k}_c1'], sites[f'u{k}_c1'], i),
                 params[f'u{k}_c1'])
      caches[f'u{k}_c2'] = _write(caches[f'u{k}_c2'], jax.nn.elu(c1),
                                  sites[f'u{k}_c2'], i, 0)
      c2 = _conv(_row_window(caches[f'u{k}_c2'], sites[f'u{k}_c2'], i),
                 params[f'u{k}_c2'])
      u = _gate(u, c2 + _nin(cond_row, params[f'u{k}_cond']))
      u_rows.append(u)
    # ul0's "above" part for row i: conv_1x3 of x at row i - 1.
    above_prev = _conv(_row_window(caches['ul0_above'], sites['ul0_above'],
                                   jnp.maximum(i - 1, 0)),
                       params['ul0_above'])
    above = jnp.where(i > 0, above_prev, jnp.zeros_like(above_prev))

    def pixel_step(carry, j):
      caches, ab = carry
      # ul0 = down_shift(conv_1x3(x)) + right_shift(conv_2x1(x)).
      left_prev = _conv_pixel(_pixel_window(
          caches['ul0_left'], sites['ul0_left'], i, jnp.maximum(j - 1, 0)),
                              params['ul0_left'])
      left = jnp.where(j > 0, left_prev, jnp.zeros_like(left_prev))
      ul = jax.lax.dynamic_slice_in_dim(above, j, 1, 2) + left
      cond_px = jax.lax.dynamic_slice_in_dim(cond_row, j, 1, 2)
      for k in range(1, blocks + 1):
        caches[f'ul{k}_c1'] = _write(caches[f'ul{k}_c1'], jax.nn.elu(ul),
                                     sites[f'ul{k}_c1'], i, j)
        u_px = jax.lax.dynamic_slice_in_dim(u_rows[k], j, 1, 2)
        c1 = (_conv_pixel(_pixel_window(caches[f'ul{k}_c1'],
                                        sites[f'ul{k}_c1'], i, j),
                          params[f'ul{k}_c1'])
              + _nin(jax.nn.elu(u_px), params[f'ul{k}_skip']))
        caches[f'ul{k}_c2'] = _write(caches[f'ul{k}_c2'], jax.nn.elu(c1),
                                     sites[f'ul{k}_c2'], i, j)
        c2 = _conv_pixel(_pixel_window(caches[f'ul{k}_c2'],
                                       sites[f'ul{k}_c2'], i, j),
                         params[f'ul{k}_c2'])
        ul = _gate(ul, c2 + _nin(cond_px, params[f'ul{k}_cond']))
      outputs = _nin(jax.nn.elu(ul), params['out'])[:, 0, 0]
      if teacher_ab is None:
        pixel = dmol.dmol_sample(_pixel_rng(rng, i, j, width), outputs,
                                 num_mixtures, temperature)
      else:
        pixel = teacher_ab[:, i, j]
      ab = jax.lax.dynamic_update_slice(ab, pixel[:, None, None], (0, i, j, 0))
      x_px = _with_ones(pixel[:, None, None])
      for name in ('u0', 'ul0_above', 'ul0_left'):
        caches[name] = _write(caches[name], x_px, sites[name], i, j)
      return (caches, ab), outputs

    (caches, ab), row_outputs = jax.lax.scan(pixel_step, (caches, ab),
                                             jnp.arange(width))
    return (caches, ab), row_outputs

  ab = jnp.zeros((batch, height, width, 2), jnp.float32)
  (_, ab), outputs = jax.lax.scan(row_step, (caches, ab), jnp.arange(height))
  # outputs: [H, W, B, 6K] -> [B, H, W, 6K]
  outputs = jnp.transpose(outputs, (2, 0, 1, 3)).reshape(
      batch, height, width, num_out)
  return ab, (outputs if teacher_ab is not None else None)
