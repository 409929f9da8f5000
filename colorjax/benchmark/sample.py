"""`benchmark sample` and `benchmark sample_scaling`: PixSem's cached
sampler against the naive one (a full generator pass per pixel), and the
cached sampler's per-pixel step against its FLOP bound, at one size or
over image sizes and samples per image.

The bound is the arithmetic of a teacher-forced generator pass over the
same samples (every pixel computed once, which the cached sampler spreads
over its loop; XLA's cost analysis) at the device's peak.
"""

import contextlib
import io
import json
import time
from typing import Iterable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import methods
from colorjax import profiling
from colorjax.benchmark import common
from colorjax.models import pixsem as models_lib


def benchmark_sample(config, config_name: str, num_samples: int, steps: int,
                     naive: bool = True, naive_pixels: int = 0):
  """PixSem: cached vs naive sampler, samples/s in the same run.

  naive_pixels: time the naive sampler on only its first N pixel steps and
  extrapolate (0: all); naive=False times the cached sampler alone.
  """
  method = methods.get_method(config)
  size = config.data.image_size
  state, _ = common.random_state(method)
  gray = jnp.asarray(np.random.default_rng(0).uniform(
      -1, 1, (1, size, size, 1)), jnp.float32)
  results, seconds_per_image = {}, {}    # the latter unrounded
  with common.CpuShare() as load:   # other processes' share while timed
    # The conditioning networks (f, h) run once per image in both samplers.
    conditioning = jax.jit(lambda s, g: method.model.apply(
        {'params': s.model_state['ema']}, g,
        method=lambda m, g: m.conditioning(g))['cond'])
    jax.block_until_ready(conditioning(state, gray))
    start = time.perf_counter()
    for _ in range(steps):
      cond = conditioning(state, gray)
    jax.block_until_ready(cond)
    conditioning_s = (time.perf_counter() - start) / steps
    chroma = size // config.data.downsample
    pixels = chroma * chroma
    partial = 0 < naive_pixels < pixels
    for sampler in ('cached', 'naive') if naive else ('cached',):
      if sampler == 'naive' and partial:
        # The first naive_pixels steps of the naive loop (conditioning
        # included once), extrapolated below: every step is the same
        # full generator pass.
        generator = method.model.generator
        module = models_lib.GENERATORS[generator]
        fn = jax.jit(lambda s, g, r: module.sample_naive(
            s.model_state['ema']['generator'],
            jnp.repeat(conditioning(s, g), num_samples, 0), r,
            method.model.num_mixtures, num_pixels=naive_pixels))
      else:
        fn = jax.jit(lambda s, g, r, sampler=sampler: method.sample(
            s, g, r, num_samples, sampler=sampler)[0])
      samples = fn(state, gray, jax.random.PRNGKey(0))     # compile + warm up
      jax.block_until_ready(samples)
      repeats = steps if sampler == 'cached' else 1
      start = time.perf_counter()
      for i in range(repeats):
        samples = fn(state, gray, jax.random.PRNGKey(i + 1))
      jax.block_until_ready(samples)
      seconds = (time.perf_counter() - start) / repeats
      if sampler == 'naive' and partial:
        seconds = conditioning_s + (seconds - conditioning_s) * (
            pixels / naive_pixels)
      seconds_per_image[sampler] = seconds
      results[sampler] = {'seconds_per_image': round(seconds, 4),
                          'samples_per_s': round(num_samples / seconds, 3)}
      if sampler == 'naive' and partial:
        results[sampler]['extrapolated_from_pixel_steps'] = (
            f'{naive_pixels} of {pixels}')
  common.warn_if_busy('sampling', load.other)
  device = jax.devices()[0]
  # The loop alone: the whole sample less the conditioning (timed apart;
  # at tiny sizes the difference is within timing noise, kept >= 0).
  results['cached'].update(sampler_bound(
      method, state, gray, num_samples, pixels,
      max(seconds_per_image['cached'] - conditioning_s, 0.0), device))
  report = {'benchmark': 'sample', 'config': config_name,
            'device': f'{jax.device_count()} x {device.device_kind}',
            'image_size': size,
            'chroma_size': size // config.data.downsample,
            'generator': dict(
                type=method.model.generator,
                channels=method.model.generator_channels,
                blocks=method.model.generator_blocks,
                scales=(method.model.generator_scales
                        if method.model.generator == 'pixelcnnpp' else 1)),
            'num_samples_per_image': num_samples,
            'conditioning_seconds_per_image': round(conditioning_s, 4),
            'other_cpu': load.other,
            **results}
  if 'naive' in results:
    # From the unrounded timings: the rounded samples/s have as few as two
    # significant digits for the naive sampler (0.018), which moved a
    # recorded speedup by 2%.
    naive_s, cached_s = seconds_per_image['naive'], seconds_per_image['cached']
    report['speedup_cached_over_naive'] = round(naive_s / cached_s, 1)
    # The autoregressive part alone (what caching changes).
    report['speedup_generator_only'] = round(
        (naive_s - conditioning_s) / max(cached_s - conditioning_s, 1e-9), 1)
  print(json.dumps(report, indent=1))
  return report


def sampler_bound(method, state, gray, num_samples, pixels, loop_s, device):
  """The cached sampler's autoregressive part against its FLOP bound.

  Bound: a teacher-forced generator pass over the same samples (XLA's
  cost analysis of the model on gray + a chroma map, minus the
  conditioning networks, times the samples) at the device's peak. The
  cached sampler must do at least that arithmetic (each pixel's generator
  outputs computed once), spread over `pixels` sequential steps.
  """
  model, params = method.model, state.model_state['ema']
  chroma = int(round(pixels ** 0.5))
  ab = jnp.zeros((1, chroma, chroma, 2), jnp.float32)
  full = profiling.compiled_flops(jax.jit(
      lambda p, g, ab: model.apply({'params': p}, g, ab)).lower(
          params, gray, ab).compile())
  conditioning = profiling.compiled_flops(jax.jit(
      lambda p, g: model.apply({'params': p}, g,
                               method=lambda m, g: m.conditioning(g))).lower(
                                   params, gray).compile())
  flops = (full - conditioning) * num_samples
  out = {'pixel_steps': pixels,
         'seconds_per_pixel_step': round(loop_s / pixels, 6),
         'generator_flops_teacher_forced': int(flops)}
  peak = profiling.device_peak(device)
  if peak:
    out['flop_bound_seconds'] = float(f'{flops / peak:.4g}')
    out['times_flop_bound'] = round(loop_s / (flops / peak), 2)
  return out


def benchmark_sample_scaling(config_spec: str, sizes: Iterable[int | str],
                             sample_counts: Iterable[int | str],
                             num_samples: int, steps: int,
                             dtype: Optional[str] = None,
                             overrides: Iterable[str] = ()):
  """The cached sampler at several image sizes (`num_samples` each) and
  sample counts (the config's size): seconds, per-pixel step, bound (no
  naive sampler).

  config_spec, dtype and overrides are loaded as `common.load_config`
  does, once per point with `data.image_size` set to the point's size.
  """
  size = common.load_config(config_spec, dtype, overrides).data.image_size
  sizes = [int(s) for s in sizes]
  sample_counts = [int(n) for n in sample_counts]
  overrides = [a for a in overrides if not a.startswith('data.image_size=')]
  points = [(s, num_samples) for s in sizes] + [
      (size, n) for n in sample_counts
      if (size, n) not in [(s, num_samples) for s in sizes]]
  rows = []
  for image_size, point_samples in points:
    config = common.load_config(config_spec, dtype, overrides + [
        f'data.image_size={image_size}'])
    print(f'sample_scaling: {image_size}x{image_size}, {point_samples} '
          'samples per image...', flush=True)
    with contextlib.redirect_stdout(io.StringIO()):
      report = benchmark_sample(config, config_spec, point_samples, steps,
                                naive=False)
    cached = report['cached']
    rows.append({'image_size': image_size,
                 'chroma_size': report['chroma_size'],
                 'num_samples': point_samples,
                 'conditioning_seconds': report[
                     'conditioning_seconds_per_image'],
                 'other_cpu': report['other_cpu'], **cached})
  first = rows[0]
  for row in rows:      # per pixel step and sample, relative to the first
    row['per_pixel_and_sample_vs_first'] = round(
        (row['seconds_per_pixel_step'] / row['num_samples']) /
        (first['seconds_per_pixel_step'] / first['num_samples']), 2)
  report = {'benchmark': 'sample_scaling', 'config': config_spec,
            'rows': rows}
  print(json.dumps(report, indent=1))
  return report
