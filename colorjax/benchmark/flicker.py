"""`benchmark flicker`: how much a colorized sequence flickers, colorized
frame by frame (--temporal=none) and with the temporal filter
(--temporal=stabilize), and how far each is from the true colours, on a
sequence made here: an object moving over a static scene, with sensor
noise on every frame (the flicker a per-frame model shows where nothing
moved). Metrics by `evaluate --sequence` (color.temporal.flicker), static
pixels decided on the true frames' L.
"""

import os
import tempfile
import time
from typing import List, Optional

import numpy as np
from PIL import Image

from colorjax import colorize as colorize_lib
from colorjax import evaluate
from colorjax.color import lab_to_rgb_numpy
from colorjax.color import rgb_to_lab_numpy
from colorjax.datasets import semantic_shapes


def moving_object_sequence(frames: int = 10, height: int = 48,
                           width: int = 64, noise: float = 2.0,
                           background: Optional[np.ndarray] = None,
                           seed: int = 0) -> List[np.ndarray]:
  """uint8 RGB frames: a static background (default: a textured two-colour
  field; or the RGB given) and a red disc crossing it left to right, with
  independent Gaussian noise of `noise` 8-bit levels on every frame."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:height, :width]
  if background is None:
    lab = np.stack([55 + 12 * np.sin(xx / 3.0) * np.cos(yy / 4.0),
                    np.where(yy < height // 2, -20.0, 10.0),
                    np.where(yy < height // 2, 30.0, -35.0)], -1)
  else:
    lab = rgb_to_lab_numpy(np.asarray(background, np.float32) / 255.0)
  radius = height / 6
  step = (width - 2 * radius) / max(frames - 1, 1)
  out = []
  for t in range(frames):
    disc = (yy - height / 2) ** 2 + (xx - radius - step * t) ** 2 < radius ** 2
    frame = np.where(disc[..., None], [45.0, 55.0, 40.0], lab)
    rgb = lab_to_rgb_numpy(frame) * 255 + rng.normal(0, noise, frame.shape)
    out.append(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
  return out


def benchmark_flicker(workdir: str, frames: int, size: int,
                      num_samples: int = 1):
  """The table's rows for one workdir: a semantic_shapes scene (test split,
  `size` px) as the static background."""
  background, _ = semantic_shapes.scene(0, 'test', 1, size)
  sequence = moving_object_sequence(frames, size, size, background=background)
  colorizer = colorize_lib.Colorizer(workdir, num_samples=num_samples)
  report = {'workdir': workdir, 'method': colorizer.config.method,
            'frames': frames, 'size': size, 'num_samples': num_samples}
  with tempfile.TemporaryDirectory() as scratch:
    truth = os.path.join(scratch, 'truth')
    os.makedirs(truth)
    for t, frame in enumerate(sequence):
      Image.fromarray(frame).save(os.path.join(truth, f'{t:04d}.png'))
    print(f'flicker: {frames} frames of {size}x{size}, '
          f'{colorizer.config.method} ({workdir})')
    for mode in ('none', 'stabilize'):
      out = os.path.join(scratch, mode)
      start = time.perf_counter()
      colorize_lib.colorize(None, [truth], out, colorizer=colorizer,
                            sequence=True, temporal=mode)
      seconds = time.perf_counter() - start
      pattern = '_sample0.png' if num_samples > 1 else '_color.png'
      frames_dir = os.path.join(scratch, f'{mode}_frames')
      os.makedirs(frames_dir)
      for name in sorted(os.listdir(out)):
        if name.endswith(pattern):
          os.rename(os.path.join(out, name), os.path.join(frames_dir, name))
      result = evaluate.evaluate_sequence(frames_dir, reference=truth)
      report[mode] = {k: result[k] for k in ('flicker', 'ab_error',
                                             'static_fraction')}
      report[mode]['seconds'] = seconds
      print(f'  temporal={mode:9s} flicker {result["flicker"]:6.3f}  '
            f'ab error {result["ab_error"]:6.3f}  (static pixels '
            f'{result["static_fraction"]:.0%}, {seconds:.1f} s)')
  report['flicker_ratio'] = (report['stabilize']['flicker']
                             / report['none']['flicker'])
  return report
