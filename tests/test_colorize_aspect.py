"""colorize at the photo's aspect (issue 30 item 1): each method's declared
input multiple, the placement of a photo in the network input, a 2:1 photo
run at 2:1 (not squashed), and the geometry (resize, pad, crop, upsample)
commuting with a rotation of the photo."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from colorjax import colorize
from colorjax import methods
from colorjax.data import inference



@pytest.mark.parametrize('name', ['chromacmc', 'scenecontext',
                                  'semanticdriven', 'instanceaware',
                                  'pixsem'])
def test_each_method_takes_non_square_multiples_of_its_stride(name):
  """predict (PixSem: its sampler) on an input of 2m x 3m, m the method's
  `input_multiple`, gives ab over the same 2:3 grid (traced only)."""
  config = importlib.import_module(name).get_config(
      'colorization_tiny' if name == 'semanticdriven' else 'tiny')
  if name == 'instanceaware':
    config.model.branch_reduce = 'mean'   # 'flatten' fixes the size: below
  method = methods.get_method(config)
  multiple = method.input_multiple()
  assert multiple and multiple & (multiple - 1) == 0, multiple
  spec = method.batch_spec(1)
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), spec)
  gray = jax.ShapeDtypeStruct((1, 2 * multiple, 3 * multiple, 1),
                              jnp.float32)
  if method.samples:
    ab, _ = jax.eval_shape(
        lambda s, g: method.sample(s, g, jax.random.PRNGKey(0), 1, 1.0),
        state, gray)
    height, width = ab.shape[2:4]         # [N, samples, h, w, 2]
  else:
    ab = jax.eval_shape(method.predict, state, {'gray': gray})['ab']
    height, width = ab.shape[1:3]
  assert height * 3 == width * 2, (name, ab.shape)


def test_a_fixed_size_network_gets_the_square_input():
  """InstanceAware's paper network (fc1 on the flattened pooled conv5)
  takes only data.image_size squared: a 2:1 photo is resized to it."""
  config = importlib.import_module('instanceaware').get_config('tiny')
  config.model.branch_reduce = 'flatten'
  config.model.use_classifier = True
  assert methods.get_method(config).input_multiple() is None
  where = inference.placement(100, 200, 32, None)
  assert (where.height, where.width) == (32, 32) and where.padded == (32, 32)
  config.model.use_classifier = False       # Zhang's network: any size
  assert methods.get_method(config).input_multiple() == 8


def test_placement_keeps_the_aspect_and_pads_to_the_multiple():
  where = inference.placement(480, 640, 256, 32)
  assert (where.height, where.width) == (256, 341)
  assert where.padded == (256, 352)
  where = inference.placement(1000, 500, 64, 16)      # portrait 1:2
  assert (where.height, where.width) == (128, 64) and where.padded == (128,
                                                                        64)
  # The photo's share of an output at 1/4 of the input (64 x 88): 341 of
  # 352 columns, all 64 rows.
  assert inference.photo_box(inference.placement(480, 640, 256, 32),
                             64, 88) == (0.0, 0.0, 88 * 341 / 352, 64.0)


def _photo(height, width, seed=0):
  """A smooth random photo (a few blobs of colour)."""
  rng = np.random.default_rng(seed)
  small = rng.integers(0, 256, (4, 8, 3), np.uint8)
  return np.asarray(Image.fromarray(small).resize((width, height),
                                                  Image.BICUBIC))


def test_a_two_to_one_photo_runs_at_two_to_one(tiny_run, tmp_path):
  """The tiny ChromaCMC workdir (model size 32, multiple 32): a 40 x 80
  photo goes in as 32 x 64, and its colours are not the squashed 32 x 32
  input's; the file has the photo's size."""
  workdir, _ = tiny_run
  photo = _photo(40, 80)
  colorizer = colorize.Colorizer(workdir)
  placed = colorizer.photo(photo)
  assert colorizer.model_input(placed)['gray'].shape == (32, 64, 1)
  ab, _ = colorizer.predict([placed])
  assert ab.shape[2:4] == (32, 64)
  ours = colorizer.to_rgb(placed, ab[0, 0]).astype(np.int32)
  squashing = colorize.Colorizer(workdir)
  squashing.multiple = None                     # the old square resize
  square = squashing.photo(photo)
  assert squashing.model_input(square)['gray'].shape == (32, 32, 1)
  ab_square, _ = squashing.predict([square])
  squashed = squashing.to_rgb(square, ab_square[0, 0]).astype(np.int32)
  assert ours.shape == squashed.shape == (40, 80, 3)
  assert np.abs(ours - squashed).mean() > 0.5
  Image.fromarray(photo).save(tmp_path / 'wide.png')
  written, failures = colorize.colorize(workdir, [str(tmp_path / 'wide.png')],
                                        str(tmp_path / 'out'))
  assert not failures
  np.testing.assert_allclose(np.asarray(Image.open(written[0]), np.int32),
                             ours, atol=1)


def _per_pixel(colorizer):
  """The colorizer with a per-pixel stand-in for its network (ab a fixed
  function of each input pixel's normalised L)."""
  colorizer._predict = jax.jit(lambda state, batch: {  # pylint: disable=protected-access
      'ab': jnp.concatenate([0.6 * batch['gray'], -0.4 * batch['gray'] ** 2],
                            -1)})
  return colorizer


def _colorized(colorizer, image):
  placed = colorizer.photo(image)
  ab, _ = colorizer.predict([placed])
  return colorizer.to_rgb(placed, ab[0, 0]).astype(np.int32)


def test_geometry_commutes_with_a_rotation(tiny_run):
  """With a per-pixel stand-in for the network, colorizing a photo rotated
  by 90 degrees gives the rotated colorization, and padding the input to
  the stride multiple (here 67 -> 96 columns) changes nothing: resize,
  image-wide ops (equalisation sees the photo, not its padding), crop and
  upsampling put every output where its pixel is."""
  workdir, _ = tiny_run
  colorizer = _per_pixel(colorize.Colorizer(workdir))
  photo = _photo(48, 100, seed=3)
  assert colorizer.photo(photo).placement == inference.Placement(32, 67, 32,
                                                                 96)
  wide, tall = (_colorized(colorizer, image)
                for image in (photo, np.rot90(photo).copy()))
  assert tall.shape == (100, 48, 3)
  difference = np.abs(np.rot90(wide) - tall)
  assert np.percentile(difference, 99) <= 2, np.percentile(difference, 99)
  unpadded = _per_pixel(colorize.Colorizer(workdir))
  unpadded.multiple = 1
  assert unpadded.photo(photo).placement.padded == (32, 67)
  error = np.abs(wide - _colorized(unpadded, photo))
  assert np.max(error) <= 1, np.max(error)
