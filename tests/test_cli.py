"""colorize and evaluate command lines on a trained tiny workdir."""

import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from colorjax import colorize
from colorjax import evaluate
from colorjax.color import rgb_to_lab_numpy
from conftest import REPO
import fixtures


def _write_inputs(folder, rng):
  os.makedirs(folder / 'nested', exist_ok=True)
  photos = {
      'wide.jpg': rng.integers(0, 256, (40, 90, 3)).astype(np.uint8),
      'nested/tall.png': rng.integers(0, 256, (70, 33, 3)).astype(np.uint8),
  }
  for name, array in photos.items():
    Image.fromarray(array).save(folder / name)
  Image.fromarray(photos['wide.jpg'][..., 0]).save(folder / 'gray.png')
  fixtures.write_odd_image(str(folder / 'cmyk.jpg'), 'cmyk', rng, 21, 17)
  fixtures.write_odd_image(str(folder / 'rgba.png'), 'rgba', rng, 25, 31)
  fixtures.write_odd_image(str(folder / 'broken.jpg'), 'truncated', rng, 30,
                           30)
  (folder / 'notes.txt').write_text('not an image')


def test_colorize_keeps_size_and_lightness(tiny_run, tmp_path, rng):
  workdir, _ = tiny_run
  inputs = tmp_path / 'in'
  _write_inputs(inputs, rng)
  written, failures = colorize.colorize(workdir, [str(inputs)],
                                        str(tmp_path / 'out'), batch_size=2,
                                        save_segmentation=True)
  assert list(failures) == [str(inputs / 'broken.jpg')]
  names = sorted(os.path.basename(p) for p in written)
  assert names == sorted(
      [f'{s}_color.png' for s in ('cmyk', 'gray', 'rgba', 'tall', 'wide')] +
      [f'{s}_segmentation.png' for s in ('cmyk', 'gray', 'rgba', 'tall',
                                         'wide')])
  source = np.asarray(Image.open(inputs / 'nested' / 'tall.png'))
  result = np.asarray(Image.open(tmp_path / 'out' / 'tall_color.png'))
  assert result.shape == source.shape
  # The output keeps the input's full-resolution lightness (up to gamut
  # clipping and 8-bit rounding).
  l_in = rgb_to_lab_numpy(source / 255.0)[..., 0]
  l_out = rgb_to_lab_numpy(result / 255.0)[..., 0]
  assert np.median(np.abs(l_in - l_out)) < 1.5


def test_colorize_cli_reports_unreadable_files(tiny_run, tmp_path, rng):
  workdir, _ = tiny_run
  inputs = tmp_path / 'in'
  _write_inputs(inputs, rng)
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.colorize', f'--workdir={workdir}',
       f'--input={inputs / "wide.jpg"}', f'--input={inputs / "broken.jpg"}',
       f'--output={tmp_path / "out"}'],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 1
  assert 'broken.jpg' in result.stderr and 'could not be read' in result.stderr
  assert os.path.exists(tmp_path / 'out' / 'wide_color.png')


def test_evaluate_cli_matches_training_eval(tiny_run, tmp_path):
  workdir, train_result = tiny_run
  output = tmp_path / 'metrics.json'
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.evaluate', f'--workdir={workdir}',
       f'--output={output}'],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads(output.read_text())
  for key in ('psnr', 'ssim', 'entropy', 'miou'):
    assert abs(metrics[key] - train_result['eval'][key]) < 1e-4, key
  assert metrics['step'] == 6 and metrics['split'] == 'validation'
