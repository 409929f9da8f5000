"""`benchmark editor`: the stroke-to-update latency of `python -m
colorjax.editor` (the page's /api/colorize round trip after a stroke: map
PNG in, colorize, result PNG out, JSON) against the model call alone
(engine.colorize with the same photo and maps), in the same run: what the
web layer adds to a stroke.
"""

import base64
import io
import json
import time

import jax
import numpy as np
from PIL import Image

from colorjax import errors
from colorjax import methods
from colorjax.benchmark import common
from colorjax.datasets import imaging
from colorjax.editor import engine as engine_lib
from colorjax.editor import server


def _editor_photo(width=640, height=480) -> np.ndarray:
  """A synthetic scene of flat regions with some texture."""
  rng = np.random.default_rng(0)
  photo = np.zeros((height, width, 3), np.uint8)
  photo[:] = (110, 150, 210)
  photo[height // 2:] = (80, 140, 60)
  for _ in range(6):
    y, x = rng.integers(0, height - 100), rng.integers(0, width - 100)
    photo[y:y + 90, x:x + 90] = rng.integers(30, 240, 3)
  noise = rng.integers(-8, 9, photo.shape)
  return np.clip(photo.astype(np.int32) + noise, 0, 255).astype(np.uint8)


def benchmark_editor(workdir, config, config_name, photo, steps: int):
  """The editor's engine for `workdir`, or (workdir None) for `config`'s
  model randomly initialised; `photo` a path, or None for a synthetic
  640x480 scene. Median latencies over `steps` strokes (after two)."""
  if workdir:
    engine = engine_lib.WorkdirEngine(workdir)
    what = workdir
  else:
    method = methods.get_method(config)
    state, _ = common.random_state(method)
    engine = engine_lib.WorkdirEngine(None, restored=(config, method, state))
    what = f'{config_name} (random init)'
  if engine.mode != 'edit':
    raise errors.ConfigError(f'editor: {engine.method} takes no semantic map')
  rgb = (imaging.decode_image(photo).array if photo else _editor_photo())
  client = server.create_app(engine).test_client()
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, format='PNG')
  start = time.perf_counter()
  body = client.post('/api/image', data={'file': (io.BytesIO(
      buffer.getvalue()), 'photo.png')},
                     content_type='multipart/form-data').get_json()
  upload_s = time.perf_counter() - start     # includes compilation
  labels = imaging.decode_label_map(base64.b64decode(
      body['labels'].split(',', 1)[1]))
  rng = np.random.default_rng(0)
  height, width = labels.shape
  yy, xx = np.mgrid[:height, :width]
  maps = []
  for i in range(steps + 2):        # a disc of another class each
    y, x = rng.integers(0, height), rng.integers(0, width)
    edited = labels.copy()
    edited[(yy - y) ** 2 + (xx - x) ** 2 < 20 ** 2] = i % len(
        engine.class_names)
    maps.append(edited)
  urls = []
  for edited in maps:
    out = io.BytesIO()
    Image.fromarray(edited).save(out, format='PNG')
    urls.append('data:image/png;base64,' + base64.b64encode(
        out.getvalue()).decode())

  def timed(fn):
    times = []
    for i, _ in enumerate(maps):
      start = time.perf_counter()
      fn(i)
      times.append(time.perf_counter() - start)
    return float(np.median(times[2:]))     # two warm-up calls

  with common.CpuShare() as load:
    model_s = timed(lambda i: engine.colorize(rgb, maps[i]))
    round_trip_s = timed(lambda i: client.post('/api/colorize', json={
        'id': body['id'], 'map': urls[i]}).get_json()['result'])
  common.warn_if_busy('the editor', load.other)
  device = jax.devices()[0]
  report = {'benchmark': 'editor', 'model': what,
            'device': f'{jax.device_count()} x {device.device_kind}',
            'photo': f'{width}x{height}',
            'model_input': engine._colorizer.config.data.image_size,  # pylint: disable=protected-access
            'first_upload_s_with_compilation': round(upload_s, 2),
            'stroke_to_update_ms': round(1000 * round_trip_s, 1),
            'model_call_ms': round(1000 * model_s, 1),
            'ratio_round_trip_over_model_call': round(round_trip_s / model_s,
                                                      2),
            'other_cpu': load.other}
  print(json.dumps(report, indent=1))
  return report
