"""colorize and evaluate command lines on a trained tiny workdir."""

import json
import os
import struct
import subprocess
import sys
import warnings
import zlib

import jax
import numpy as np
from PIL import Image
from skimage import color as skcolor
import tensorflow_datasets as tfds

from colorjax import colorize
from colorjax import results
from colorjax import workdir as workdir_lib
from colorjax.color import palette
from colorjax.color import rgb_to_lab_numpy
from colorjax.data import preprocess
from conftest import REPO
import fixtures

# Largest change of a or b that rounding an in-gamut colour (L >= 25) to
# 8-bit sRGB causes, measured on 200,000 random Lab colours: 0.60 ab units.
# The scenes' L lies in [33, 77], so 1.0 leaves room for float32 arithmetic.
AB_8BIT_TOLERANCE = 1.0


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


def _lab(rgb_uint8):
  """skimage's Lab of 8-bit sRGB (independent of colorjax.color)."""
  return skcolor.rgb2lab(np.asarray(rgb_uint8, np.float64) / 255.0)


def test_colorize_writes_predicted_colours_and_segmentation(
    tiny_run, shapes_data_dir, tmp_path):
  """The written PNG carries predict's ab on a validation scene at model size
  (no resampling; undisplayable colours at their L and hue with less
  chroma), and the segmentation PNG is PALETTE[argmax]."""
  workdir, _ = tiny_run
  config = workdir_lib.load_config(workdir)
  scene = tfds.data_source('semantic_shapes/test', split='validation',
                           data_dir=shapes_data_dir)[0]['image']
  assert scene.shape[:2] == (config.data.image_size,) * 2
  # Reference: the evaluation transforms and the method's predict, directly.
  method, state = workdir_lib.restore_for_inference(workdir, config)
  example = preprocess.apply(preprocess.parse(config.data.preprocess_eval),
                             {'image': scene})
  outputs = jax.device_get(
      jax.jit(method.predict)(state, {'gray': example['gray'][None]}))
  ab_pred = np.asarray(outputs['ab'][0], np.float64) * config.data.ab_scale
  labels = np.argmax(np.asarray(outputs['segmentation'][0]), -1)
  # Non-trivial content, or a grey / swapped / negated output could pass.
  assert np.abs(ab_pred).mean() > 5.0 and np.abs(ab_pred[..., 0] -
                                                 ab_pred[..., 1]).mean() > 5.0
  assert len(np.unique(labels)) >= 2

  Image.fromarray(scene).save(tmp_path / 'scene.png')
  written, failures = colorize.colorize(workdir, [str(tmp_path / 'scene.png')],
                                        str(tmp_path / 'out'),
                                        save_segmentation=True)
  assert not failures and len(written) == 2
  result = np.asarray(Image.open(tmp_path / 'out' / 'scene_color.png'))
  assert result.shape == scene.shape and result.dtype == np.uint8
  lab_out = _lab(result)
  ab_out = lab_out[..., 1:]
  # What the PNG should hold, rounded to 8 bits: input L + predicted ab
  # where sRGB can show it (scikit-image's round trip decides, not our
  # code); elsewhere the same L and hue with less chroma.
  lab_pred = np.concatenate([_lab(scene)[..., :1], ab_pred], -1)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')   # skimage warns about clipped pixels
    clipped = skcolor.rgb2lab(skcolor.lab2rgb(lab_pred))
  in_gamut = np.abs(clipped - lab_pred).max(-1) < 1e-3
  assert 0.5 < in_gamut.mean() < 1.0      # both kinds of pixel are tested
  np.testing.assert_allclose(ab_out[in_gamut], ab_pred[in_gamut],
                             atol=AB_8BIT_TOLERANCE)
  out = ~in_gamut
  chroma_out = np.hypot(ab_out[out][:, 0], ab_out[out][:, 1])
  chroma_pred = np.hypot(ab_pred[out][:, 0], ab_pred[out][:, 1])
  assert np.all(chroma_out <= chroma_pred + AB_8BIT_TOLERANCE)
  vivid = chroma_out > 10
  hue_shift = np.angle(np.exp(1j * (
      np.arctan2(ab_out[out][:, 1], ab_out[out][:, 0])
      - np.arctan2(ab_pred[out][:, 1], ab_pred[out][:, 0]))))
  assert np.degrees(np.abs(hue_shift[vivid])).max() < 5
  np.testing.assert_allclose(lab_out[out][:, 0], lab_pred[out][:, 0],
                             atol=1.0)
  segmentation = np.asarray(
      Image.open(tmp_path / 'out' / 'scene_segmentation.png').convert('RGB'))
  np.testing.assert_array_equal(segmentation, palette.PALETTE[labels])


def test_colorize_outputs_have_their_inputs_sizes(tiny_run, tmp_path, rng):
  """Every photo keeps its size, however odd. The folder streams (threads
  decode ahead and write behind) and writes exactly what the single-
  threaded path writes, skipping the unreadable file with
  its reason; the network compiles once per input size (a size's last,
  partial batch padded to the batch), not per photo."""
  workdir, _ = tiny_run
  inputs = tmp_path / 'in'
  inputs.mkdir()
  sizes = {'one': (1, 1), 'row': (1, 7), 'column': (9, 1), 'small': (2, 3),
           'odd': (33, 17), 'wide': (17, 65), 'square': (31, 31),
           'square2': (30, 33)}
  for name, (height, width) in sizes.items():
    Image.fromarray(rng.integers(0, 256, (height, width, 3)).astype(
        np.uint8)).save(inputs / f'{name}.png')
  fixtures.write_odd_image(str(inputs / 'broken.jpg'), 'truncated', rng, 30,
                           30)
  colorizer = colorize.Colorizer(workdir)
  outputs = {}
  for workers in (2, 0):
    written, failures = colorize.colorize(
        None, [str(inputs)], str(tmp_path / f'out{workers}'), batch_size=3,
        save_segmentation=True, workers=workers, colorizer=colorizer)
    assert list(failures) == [str(inputs / 'broken.jpg')]
    assert sorted(os.path.basename(p) for p in written) == sorted(
        f'{name}_{suffix}.png' for name in sizes
        for suffix in ('color', 'segmentation'))
    outputs[workers] = [np.asarray(Image.open(p)) for p in written]
  for name, (height, width) in sizes.items():
    for suffix in ('color', 'segmentation'):
      image = Image.open(tmp_path / 'out2' / f'{name}_{suffix}.png')
      assert (image.height, image.width) == (height, width), (name, suffix)
  for threaded, alone in zip(outputs[2], outputs[0]):
    np.testing.assert_array_equal(threaded, alone)
  network_sizes = {colorizer.photo(np.zeros(s + (3,), np.uint8))
                   .placement.padded for s in sizes.values()}
  assert 2 <= len(network_sizes) < len(sizes)
  assert colorizer._predict._cache_size() == len(network_sizes)  # pylint: disable=protected-access


def _png_rgb16(path, array):
  """A 48-bit RGB PNG (PIL writes 16-bit PNGs only in greyscale)."""
  height, width, _ = array.shape
  raw = b''.join(b'\x00' + array[y].astype('>u2').tobytes()
                 for y in range(height))
  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
  with open(path, 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 16, 2, 0, 0,
                                       0)) +
            chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def _blocks(rng, height, width, low, high, dtype, block=8):
  """Flat colour blocks (8x8, as JPEG's), so lossy coding barely moves them."""
  colours = rng.integers(low, high, (-(-height // block), -(-width // block),
                                     3))
  image = np.repeat(np.repeat(colours, block, 0), block, 1)
  return image[:height, :width].astype(dtype)


def test_colorize_cli_odd_inputs_and_unreadable_files(tiny_run, tmp_path,
                                                      rng):
  """16-bit PNGs (grey and RGB) and a CMYK JPEG through the command line keep
  their size and their lightness; an unreadable file is reported (exit 1)."""
  workdir, _ = tiny_run
  inputs = tmp_path / 'in'
  _write_inputs(inputs, rng)
  # Sources in [0, 1] sRGB, the colours each file was written from.
  ramp = np.linspace(0.15, 0.85, 41)[None, :] + rng.uniform(
      -0.05, 0.05, (23, 41))
  gray16 = np.rint(ramp * 65535).astype(np.uint16)
  Image.fromarray(gray16).save(inputs / 'gray16.png')
  rgb48 = _blocks(rng, 19, 26, 8000, 60000, np.uint16)
  _png_rgb16(inputs / 'rgb48.png', rgb48)
  cmyk = _blocks(rng, 24, 40, 30, 230, np.uint8)
  Image.fromarray(cmyk).convert('CMYK').save(inputs / 'cmyk_blocks.jpg',
                                             quality=95)
  sources = {'gray16': np.repeat(gray16[..., None], 3, -1) / 65535.0,
             'rgb48': rgb48 / 65535.0, 'cmyk_blocks': cmyk / 255.0}
  assert Image.open(inputs / 'gray16.png').mode == 'I;16'
  assert Image.open(inputs / 'cmyk_blocks.jpg').mode == 'CMYK'
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.colorize', f'--workdir={workdir}',
       f'--input={inputs / "wide.jpg"}', f'--input={inputs / "broken.jpg"}',
       f'--input={inputs / "gray16.png"}', f'--input={inputs / "rgb48.png"}',
       f'--input={inputs / "cmyk_blocks.jpg"}',
       f'--output={tmp_path / "out"}'],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  # The readable files are written; the unreadable one is listed, status 2.
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'broken.jpg' in result.stderr and 'could not be read' in result.stderr
  assert 'Traceback' not in result.stderr
  assert os.path.exists(tmp_path / 'out' / 'wide_color.png')
  for name, source in sources.items():
    output = np.asarray(Image.open(tmp_path / 'out' / f'{name}_color.png'))
    assert output.shape == source.shape, name
    # The output's lightness is the source's (16-bit values scaled, not
    # clipped; CMYK converted back), up to 8-bit rounding, JPEG coding and
    # gamut clipping of some predicted colours.
    l_error = np.abs(_lab(output)[..., 0] - skcolor.rgb2lab(source)[..., 0])
    assert np.median(l_error) < 0.5, (name, np.median(l_error))


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
  # Without --preset the results also go under the workdir, where compare
  # finds them with no preset named (README: evaluate -> compare).
  written = os.path.join(workdir, 'eval', 'default', 'metrics.json')
  assert json.loads(open(written).read()) == metrics
  assert os.path.isfile(os.path.join(workdir, 'eval', 'default',
                                     'metrics.md'))
  runs = results.compare([workdir, workdir + '/'])
  table, csv_text = results.tables(runs)
  assert f'{metrics["psnr"]:.4g}' in table
  # The tiny twin's branch (which the paper pretrains) started from random
  # init: the results and both tables say so.
  assert metrics['random_init'] == ['generator/branch']
  assert table.count('chromacmc (random init: generator/branch)') == 2
  assert csv_text.splitlines()[1].split(',')[2] == 'generator/branch'
