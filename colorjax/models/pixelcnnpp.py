"""The multi-scale conditional PixelCNN++ (Salimans et al. 2017) over ab.

Paper 004's generator g "follows PixelCNN++": this is its layout, as in
the reference `pixel_cnn_pp/model.py`, with the conditioning features as
a spatial `h` (pooled to each scale):

  down pass  scale 0: `blocks` gated residual blocks on the vertical stream
             u and the horizontal stream ul (ul also sees u, as `a`);
             scales 1..S-1: a stride-2 shifted convolution, then `blocks`
             blocks. Every u and ul is kept for the up pass.
  up pass    scale S-1: `blocks` blocks; scales S-2..0: a stride-2 shifted
             transposed convolution, then `blocks + 1` blocks; each block
             takes the matching down-pass u (u stream) and concat(u, ul)
             (ul stream) through its `a` input. Output: 1x1 to DMoL.
  block      c1 = conv(concat_elu(x)) + nin(concat_elu(a)); dropout of
             concat_elu(c1); c2 = conv(.) + nin(h); x + c2_a * sigmoid(c2_b).

`sample_cached` extends fast-pixel-cnn's caching (Ramachandran et al.
2017) to the strided and transposed layers: every shifted convolution
keeps its padded input map at its own resolution. At fine row i the
vertical stream runs (whole rows) at scale 0, and at scale s only where a
2^s-row block starts; at fine pixel (i, j) the horizontal stream runs at
scale 0, and at scale s only where a 2^s x 2^s block starts (`lax.cond`).
By causality everything such a position depends on is final then; the
block's later steps read its rows / up-pass output back from per-scale
caches (`urow.*`, `upval*`). A sample costs about one forward pass's arithmetic
instead of n (`colorjax.benchmark sample` measures it).
"""

from typing import Any, Callable, Dict, Optional

import jax
import jax.numpy as jnp

from colorjax.losses import dmol
from colorjax.models import pixelcnn
from colorjax.models.pixelcnn import DOWN, DOWN_RIGHT, Site
# Shared with the single-scale generator: the same per-pixel GEMM, causal
# padding, 1x1 projection, input edge channel, shifts and per-pixel RNG.
# pylint: disable=protected-access
_conv_pixel, _pad, _nin = pixelcnn._conv_pixel, pixelcnn._pad, pixelcnn._nin
_with_ones, _pixel_rng = pixelcnn._with_ones, pixelcnn._pixel_rng
_down_shift, _right_shift = pixelcnn._down_shift, pixelcnn._right_shift
# pylint: enable=protected-access

_DIMS = ('NHWC', 'HWIO', 'NHWC')
U_SITE = Site(DOWN, 2, 3)          # vertical stream: rows above
UL_SITE = Site(DOWN_RIGHT, 2, 2)   # horizontal stream: above and left
_INPUT_SITES = {'in_u': Site(DOWN, 2, 3), 'in_ul_above': Site(DOWN, 1, 3),
                'in_ul_left': Site(DOWN_RIGHT, 2, 1)}


def blocks_per_scale(scale: int, scales: int, blocks: int, down: bool):
  return blocks if down or scale == scales - 1 else blocks + 1


def _block_names(scales: int, blocks: int):
  """(name, stream, down pass?, scale) of every gated block, in order."""
  names = []
  for s in range(scales):
    for k in range(blocks):
      names += [(f'd{s}_{k}_u', 'u', True, s), (f'd{s}_{k}_ul', 'ul', True, s)]
  for s in reversed(range(scales)):
    for k in range(blocks_per_scale(s, scales, blocks, down=False)):
      names += [(f'u{s}_{k}_u', 'u', False, s),
                (f'u{s}_{k}_ul', 'ul', False, s)]
  return names


def init_params(rng, in_channels: int, cond_channels: int, channels: int,
                num_blocks: int, num_mixtures: int,
                num_scales: int = 3) -> Dict[str, Any]:
  """Parameters (He init; the gates' second convolutions scaled by 0.1)."""
  keys = iter(jax.random.split(rng, 1000))
  c = channels

  def dense(cin, cout, kh=1, kw=1, scale=1.0):
    w = jax.random.normal(next(keys), (kh, kw, cin, cout)) * scale * (
        2.0 / (cin * kh * kw)) ** 0.5
    return {'w': w, 'b': jnp.zeros((cout,))}

  x_channels = in_channels + 1        # + a channel of ones (edge marker)
  params = {name: dense(x_channels, c, site.kh, site.kw)
            for name, site in _INPUT_SITES.items()}
  for s in range(1, num_scales):
    params[f'down{s}_u'] = dense(c, c, 2, 3)
    params[f'down{s}_ul'] = dense(c, c, 2, 2)
    params[f'up{s - 1}_u'] = dense(c, c, 2, 3)
    params[f'up{s - 1}_ul'] = dense(c, c, 2, 2)
  for name, stream, down, _ in _block_names(num_scales, num_blocks):
    site = U_SITE if stream == 'u' else UL_SITE
    block = {'c1': dense(2 * c, c, site.kh, site.kw),
             'c2': dense(2 * c, 2 * c, site.kh, site.kw, scale=0.1),
             'cond': dense(cond_channels, 2 * c, scale=0.1)}
    # `a`: u for the down pass's ul; the down-pass u (u stream) and
    # concat(u, down-pass ul) (ul stream) for the up pass; concat_elu
    # doubles each.
    a_channels = {('u', True): 0, ('ul', True): 2 * c,
                  ('u', False): 2 * c, ('ul', False): 4 * c}[stream, down]
    if a_channels:
      block['a'] = dense(a_channels, c)
    params[name] = block
  params['out'] = dense(c, dmol.num_outputs(num_mixtures), scale=0.1)
  return params


def num_scales_of(params) -> int:
  return 1 + sum(1 for k in params if k.startswith('down')
                 and k.endswith('_u'))


def num_blocks_of(params) -> int:
  return sum(1 for k in params if k.startswith('d0_') and k.endswith('_u'))


def concat_elu(x):
  return jax.nn.elu(jnp.concatenate([x, -x], -1))


def _conv(window, p, stride=1):
  """VALID convolution of an already-padded window."""
  return jax.lax.conv_general_dilated(window, p['w'], (stride, stride),
                                      'VALID', dimension_numbers=_DIMS) + p['b']


def shifted_conv(x, p, site: Site, stride: int = 1):
  return _conv(_pad(x, site), p, stride)


def deconv(x, p, kind: str):
  """Stride-2 shifted transposed convolution [B, h, w, C] -> [B, 2h, 2w, C].

  PixelCNN++'s `down_shifted_deconv2d` (2x3 kernel; the centred 2w
  columns kept) or `down_right_shifted_deconv2d` (2x2). Fine pixel
  (2I + a, c) only gets coarse row I, so one coarse row (or pixel, for
  2x2) gives its fine rows (pixels) exactly, which the cached sampler
  relies on. Written as an einsum rather than `conv_transpose`, whose
  weight gradient is slow on XLA:CPU.
  """
  n, h, w, _ = x.shape
  z = jnp.einsum('nhwc,abco->nhawbo', x, p['w'])   # [n, h, 2, w, kw, C]
  if kind == DOWN_RIGHT:
    out = z                                         # (2h+a, 2w+b)
  else:  # 2x3: full column 2J + b; kept columns are full ones 1 .. 2w.
    even = z[:, :, :, :, 1]
    odd = z[:, :, :, :, 2] + jnp.pad(z[:, :, :, 1:, 0],
                                     [(0, 0)] * 3 + [(0, 1), (0, 0)])
    out = jnp.stack([even, odd], axis=4)
  return out.reshape(n, 2 * h, 2 * w, -1) + p['b']


def _gated(p, x, a, h, conv: Callable, dropout: Callable):
  """Gated residual block; `conv(which, input)` does c1's and c2's conv."""
  c1 = conv('c1', concat_elu(x))
  if a is not None:
    c1 = c1 + _nin(concat_elu(a), p['a'])
  c2 = conv('c2', dropout(concat_elu(c1))) + _nin(h, p['cond'])
  gate_a, gate_b = jnp.split(c2, 2, axis=-1)
  return x + gate_a * jax.nn.sigmoid(gate_b)


def pooled_conditioning(cond, num_scales: int):
  """h at each scale: the conditioning map average-pooled by 2^s."""
  n, height, width, c = cond.shape
  factor = 2 ** (num_scales - 1)
  if height % factor or width % factor:
    raise ValueError(f'a {num_scales}-scale PixelCNN++ needs the ab map\'s '
                     f'height and width divisible by {factor}; got '
                     f'{height}x{width}')
  return [cond.reshape(n, height >> s, 1 << s, width >> s, 1 << s, c).mean(
      (2, 4)) for s in range(num_scales)]


def forward(params, ab, cond, dropout: float = 0.0,
            rng: Optional[jax.Array] = None):
  """Teacher-forced DMoL parameters [B, H, W, 6K] for ab [B, H, W, 2].

  `dropout` (with `rng`) is the blocks' dropout rate in training.
  """
  scales, blocks = num_scales_of(params), num_blocks_of(params)
  h = pooled_conditioning(cond, scales)
  counter = iter(range(10 ** 6))

  def drop(x):
    if not dropout or rng is None:
      return x
    keep = jax.random.bernoulli(jax.random.fold_in(rng, next(counter)),
                                1.0 - dropout, x.shape)
    return jnp.where(keep, x / (1.0 - dropout), 0.0)

  def block(name, x, a, s, site):
    p = params[name]
    return _gated(p, x, a, h[s],
                  lambda which, inp: shifted_conv(inp, p[which], site), drop)

  x = _with_ones(ab)
  conv_in = lambda name: shifted_conv(x, params[name], _INPUT_SITES[name])
  u = _down_shift(conv_in('in_u'))
  ul = _down_shift(conv_in('in_ul_above')) + _right_shift(
      conv_in('in_ul_left'))
  us, uls = [u], [ul]
  for s in range(scales):
    if s:
      u = shifted_conv(u, params[f'down{s}_u'], U_SITE, stride=2)
      ul = shifted_conv(ul, params[f'down{s}_ul'], UL_SITE, stride=2)
      us.append(u)
      uls.append(ul)
    for k in range(blocks):
      u = block(f'd{s}_{k}_u', u, None, s, U_SITE)
      ul = block(f'd{s}_{k}_ul', ul, u, s, UL_SITE)
      us.append(u)
      uls.append(ul)
  u, ul = us.pop(), uls.pop()
  for s in reversed(range(scales)):
    if s < scales - 1:
      u = deconv(u, params[f'up{s}_u'], DOWN)
      ul = deconv(ul, params[f'up{s}_ul'], DOWN_RIGHT)
    for k in range(blocks_per_scale(s, scales, blocks, down=False)):
      u = block(f'u{s}_{k}_u', u, us.pop(), s, U_SITE)
      ul = block(f'u{s}_{k}_ul', ul, jnp.concatenate([u, uls.pop()], -1), s,
                 UL_SITE)
  return _nin(jax.nn.elu(ul), params['out'])


# --------------------------------------------------------------- samplers
def sample_naive(params, cond, rng, num_mixtures, temperature=1.0,
                 num_pixels=None):
  """Reference sampler: the full network is rerun for each of the n pixels
  (only the first `num_pixels` in raster order if given: for timing)."""
  return pixelcnn.sample_naive(params, cond, rng, num_mixtures, temperature,
                               num_pixels, forward_fn=forward)


def _cache_specs(params, height, width):
  """Every shifted convolution's padded input cache: (site, scale, channels)."""
  scales, blocks = num_scales_of(params), num_blocks_of(params)
  channels = params['out']['w'].shape[2]
  x_channels = params['in_u']['w'].shape[2]
  specs = {name: (site, 0, x_channels) for name, site in _INPUT_SITES.items()}
  for s in range(1, scales):
    specs[f'down{s}_u'] = (U_SITE, s - 1, channels)
    specs[f'down{s}_ul'] = (UL_SITE, s - 1, channels)
  for name, stream, _, s in _block_names(scales, blocks):
    site = U_SITE if stream == 'u' else UL_SITE
    specs[f'{name}.c1'] = (site, s, 2 * channels)
    specs[f'{name}.c2'] = (site, s, 2 * channels)
  return {name: (site, s, c, (height >> s) + site.pad_top,
                 (width >> s) + site.pad_left + site.pad_right)
          for name, (site, s, c) in specs.items()}


def _write(cache, value, site: Site, i, j):
  """Stores input rows/pixels at position (i, j) of a padded cache."""
  return jax.lax.dynamic_update_slice(
      cache, value.astype(cache.dtype),
      (0, i + site.pad_top, j + site.pad_left, 0))


def _rows(cache, row, kh):
  return jax.lax.dynamic_slice_in_dim(cache, row, kh, axis=1)


def _window(cache, i, j, kh, kw):
  b, _, _, c = cache.shape
  return jax.lax.dynamic_slice(cache, (0, i, j, 0), (b, kh, kw, c))


def _col(row, j):
  return jax.lax.dynamic_slice_in_dim(row, j, 1, axis=2)


def sample_cached(params, cond, rng, num_mixtures, temperature=1.0,
                  teacher_ab=None):
  """Incremental sampler: lax.scan over fine rows, then over their pixels.

  Same per-pixel RNG as `sample_naive`, so with the same key both return
  the same samples. With `teacher_ab` the given pixels are fed instead of
  samples and the per-pixel DMoL parameters are returned too (to test
  against `forward`). Returns (ab [B, H, W, 2], outputs [B, H, W, 6K] or
  None).
  """
  scales, blocks = num_scales_of(params), num_blocks_of(params)
  batch, height, width, _ = cond.shape
  h = pooled_conditioning(cond, scales)
  specs = _cache_specs(params, height, width)
  caches = {name: jnp.zeros((batch, hh, ww, c), jnp.float32)
            for name, (_, _, c, hh, ww) in specs.items()}
  channels = params['out']['w'].shape[2]
  for scale in range(1, scales):   # the up pass's output at each scale
    caches[f'upval{scale}'] = jnp.zeros(
        (batch, height >> scale, width >> scale, channels), jnp.float32)
  # The vertical stream's rows of each coarse scale's blocks and output,
  # kept between the fine rows of its row pair.
  row_scale = {}
  for scale in range(1, scales):
    names = [f'urow.up{scale}'] + [f'urow.d{scale}_{k}'
                                   for k in range(blocks)] + [
        f'urow.u{scale}_{k}' for k in range(
            blocks_per_scale(scale, scales, blocks, down=False))]
    for name in names:
      caches[name] = jnp.zeros((batch, 1, width >> scale, channels),
                               jnp.float32)
      row_scale[name] = scale
  # What scale s's conditional row step reads and writes.
  coarse_rows = {
      s: [n for n, spec in specs.items() if spec[0] == U_SITE and (
          spec[1] >= s or n == f'down{s}_u')]
      + [n for n, scale in row_scale.items() if scale >= s]
      for s in range(1, scales)}
  # The horizontal stream's caches of scales >= s (what scale s's
  # conditional step reads and writes).
  coarse_caches = {
      s: [n for n, spec in specs.items() if spec[0] == UL_SITE and (
          spec[1] >= s or n == f'down{s}_ul')]
      + [f'upval{t}' for t in range(s, scales)] for s in range(1, scales)}
  no_dropout = lambda x: x

  def row_step(carry, i):
    caches, ab = carry
    # ---- vertical stream: row i >> s of every scale, every layer.
    def row_block(caches, name, x, a, s):
      p, row = params[name], i >> s
      h_row = jax.lax.dynamic_slice_in_dim(h[s], row, 1, 1)

      def conv(which, inp):
        key = f'{name}.{which}'
        caches[key] = _write(caches[key], inp, U_SITE, row, 0)
        return _conv(_rows(caches[key], row, U_SITE.kh), p[which])
      return _gated(p, x, a, h_row, conv, no_dropout)

    def run_row_scale(caches, s, u=None):
      """Scale s's vertical stream at row i >> s: down pass (from `u` at
      scale 0, else the strided convolution), the coarser scales where
      their row pair starts here, up pass. Returns (caches, the rows of
      every block at this scale (down, up), the up pass's output)."""
      caches = dict(caches)
      row = i >> s
      if s:
        u = _conv(_rows(caches[f'down{s}_u'], 2 * row, 2),
                  params[f'down{s}_u'], stride=2)
      us, rows = [u], {}
      for k in range(blocks):
        u = row_block(caches, f'd{s}_{k}_u', u, None, s)
        rows['d', k] = u
        us.append(u)
      if s == scales - 1:
        u = us.pop()
      else:
        key = f'down{s + 1}_u'
        caches[key] = _write(caches[key], u, U_SITE, row, 0)
        size = 1 << (s + 1)
        coarse = {n: caches[n] for n in coarse_rows[s + 1]}
        coarse = jax.lax.cond((i % size) == 0,
                              lambda c: store_rows(run_row_scale(c, s + 1)),
                              lambda c: c, coarse)
        caches.update(coarse)
        u = jax.lax.dynamic_index_in_dim(
            deconv(caches[f'urow.up{s + 1}'], params[f'up{s}_u'], DOWN),
            row & 1, 1)
      for k in range(blocks_per_scale(s, scales, blocks, down=False)):
        u = row_block(caches, f'u{s}_{k}_u', u, us.pop(), s)
        rows['u', k] = u
      return caches, rows, u, s

    def store_rows(result):
      """A coarse scale's rows kept for the fine rows of its row pair."""
      caches, rows, u, s = result
      for (kind, k), value in rows.items():
        caches[f'urow.{kind}{s}_{k}'] = value
      caches[f'urow.up{s}'] = u
      return caches

    # in_u: u = down_shift(conv(x)): fine row i is conv(x) at row i - 1.
    previous = _conv(_rows(caches['in_u'], jnp.maximum(i - 1, 0), 2),
                     params['in_u'])
    caches, rows0, _, _ = run_row_scale(caches, 0,
                                        jnp.where(i > 0, previous, 0.0))
    down_u = {(0, k): rows0['d', k] for k in range(blocks)}
    up_u = {(0, k): rows0['u', k]
            for k in range(blocks_per_scale(0, scales, blocks, False))}
    for sc in range(1, scales):
      for k in range(blocks):
        down_u[sc, k] = caches[f'urow.d{sc}_{k}']
      for k in range(blocks_per_scale(sc, scales, blocks, down=False)):
        up_u[sc, k] = caches[f'urow.u{sc}_{k}']
    # ul's "above" part for row i: conv_1x3 of x at row i - 1.
    previous = _conv(_rows(caches['in_ul_above'], jnp.maximum(i - 1, 0), 1),
                     params['in_ul_above'])
    above = jnp.where(i > 0, previous, 0.0)

    def pixel_step(carry, j):
      caches, ab = carry

      def pixel_block(caches, name, x, a, s):
        p, pi, pj = params[name], i >> s, j >> s
        h_px = jax.lax.dynamic_slice(h[s], (0, pi, pj, 0),
                                     (batch, 1, 1, h[s].shape[-1]))

        def conv(which, inp):
          key = f'{name}.{which}'
          caches[key] = _write(caches[key], inp, UL_SITE, pi, pj)
          return _conv_pixel(_window(caches[key], pi, pj, 2, 2), p[which])
        return _gated(p, x, a, h_px, conv, no_dropout)

      def run_scale(caches, s, ul=None):
        """Scale s's horizontal stream at (i >> s, j >> s): its down pass
        (from `ul` at scale 0, else from the strided convolution), the
        coarser scales where their 2x2 block starts here, its up pass.
        Returns (caches, the up pass's output there)."""
        caches = dict(caches)
        pi, pj = i >> s, j >> s
        if s:
          key = f'down{s}_ul'
          ul = _conv_pixel(_window(caches[key], 2 * pi, 2 * pj, 2, 2),
                           params[key])
        uls = [ul]
        for k in range(blocks):
          ul = pixel_block(caches, f'd{s}_{k}_ul', ul,
                           _col(down_u[s, k], pj), s)
          uls.append(ul)
        if s == scales - 1:
          ul = uls.pop()
        else:
          key = f'down{s + 1}_ul'
          caches[key] = _write(caches[key], ul, UL_SITE, pi, pj)
          # Scale s + 1's position is computed once, at the first fine
          # step of its block (then all it depends on is final); later
          # steps read its output back from upval.
          size = 1 << (s + 1)
          starts = ((i % size) == 0) & ((j % size) == 0)
          coarse = {n: caches[n] for n in coarse_caches[s + 1]}
          coarse = jax.lax.cond(
              starts, lambda c: run_scale(c, s + 1)[0], lambda c: c, coarse)
          caches.update(coarse)
          below = _window(caches[f'upval{s + 1}'], pi >> 1, pj >> 1, 1, 1)
          fine = deconv(below, params[f'up{s}_ul'], DOWN_RIGHT)
          ul = jax.lax.dynamic_slice(fine, (0, pi & 1, pj & 1, 0),
                                     (batch, 1, 1, fine.shape[-1]))
        for k in range(blocks_per_scale(s, scales, blocks, down=False)):
          a = jnp.concatenate([_col(up_u[s, k], pj), uls.pop()], -1)
          ul = pixel_block(caches, f'u{s}_{k}_ul', ul, a, s)
        if s:
          caches[f'upval{s}'] = jax.lax.dynamic_update_slice(
              caches[f'upval{s}'], ul, (0, pi, pj, 0))
        return caches, ul

      # ul = down_shift(conv_1x3(x)) + right_shift(conv_2x1(x)).
      previous = _conv_pixel(_window(caches['in_ul_left'], i,
                                     jnp.maximum(j - 1, 0), 2, 1),
                             params['in_ul_left'])
      ul = _col(above, j) + jnp.where(j > 0, previous, 0.0)
      caches, ul = run_scale(caches, 0, ul)
      outputs = _nin(jax.nn.elu(ul), params['out'])[:, 0, 0]
      if teacher_ab is None:
        pixel = dmol.dmol_sample(_pixel_rng(rng, i, j, width), outputs,
                                 num_mixtures, temperature)
      else:
        pixel = teacher_ab[:, i, j]
      ab = jax.lax.dynamic_update_slice(ab, pixel[:, None, None], (0, i, j, 0))
      x_px = _with_ones(pixel[:, None, None])
      for name, site in _INPUT_SITES.items():
        caches[name] = _write(caches[name], x_px, site, i, j)
      return (caches, ab), outputs

    (caches, ab), row_outputs = jax.lax.scan(pixel_step, (caches, ab),
                                             jnp.arange(width))
    return (caches, ab), row_outputs

  ab = jnp.zeros((batch, height, width, 2), jnp.float32)
  (_, ab), outputs = jax.lax.scan(row_step, (caches, ab), jnp.arange(height))
  outputs = jnp.transpose(outputs, (2, 0, 1, 3))     # [H, W, B, .] -> [B, ...]
  return ab, (outputs if teacher_ab is not None else None)
