"""PixSem: cached sampling equals naive sampling; all variants train."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.color import gamut
from colorjax.data import inference
from colorjax.losses import dmol
from colorjax.models import pixelcnn
from colorjax.models import pixelcnnpp
from colorjax.models import pixsem
from colorjax import workdir as workdir_lib

K = 3
GENERATORS = ('small', 'pixelcnnpp')


@pytest.fixture(scope='module', params=GENERATORS)
def generator(request):
  """(module, params, cond) of each generator, small but not degenerate:
  PixelCNN++ with 3 scales (8, 4, 2) and 2 blocks per scale."""
  if request.param == 'small':
    module = pixelcnn
    params = pixelcnn.init_params(jax.random.PRNGKey(0), 2, 6, 12, 2, K)
    shape = (3, 7, 6, 6)
  else:
    module = pixelcnnpp
    params = pixelcnnpp.init_params(jax.random.PRNGKey(0), 2, 6, 8, 2, K,
                                    num_scales=3)
    shape = (3, 8, 8, 6)
  # Larger output weights than at init, so the distributions are not flat
  # and a wrong cache would change samples.
  params['out']['w'] = params['out']['w'] * 20.0
  cond = jax.random.normal(jax.random.PRNGKey(1), shape)
  return module, params, cond


def test_cached_step_outputs_equal_teacher_forced_outputs(generator):
  module, params, cond = generator
  ab = jax.random.uniform(jax.random.PRNGKey(2), cond.shape[:3] + (2,),
                          minval=-1.0, maxval=1.0)
  expected = module.forward(params, ab, cond)
  _, cached = jax.jit(lambda p, c, a: module.sample_cached(
      p, c, jax.random.PRNGKey(0), K, teacher_ab=a))(params, cond, ab)
  np.testing.assert_allclose(np.asarray(cached), np.asarray(expected),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('position', [(3, 2), (2, 3), (4, 4), (0, 5),
                                      (5, 0)])
def test_generator_is_causal_in_raster_order(generator, position):
  """Changing pixel p changes no output at or before p (raster order) and
  the outputs right after it; even and odd rows and columns, since the
  strided layers pair them up."""
  module, params, cond = generator
  ab = jax.random.uniform(jax.random.PRNGKey(3), cond.shape[:3] + (2,),
                          minval=-1.0, maxval=1.0)
  changed = ab.at[:, position[0], position[1]].set(0.5)
  diff = np.asarray(jnp.abs(module.forward(params, changed, cond)
                            - module.forward(params, ab, cond)).max((0, 3)))
  height, width = diff.shape
  order = np.arange(height * width).reshape(height, width)
  here = order[position]
  assert np.all(diff[order <= here] == 0.0)   # itself and before
  i, j = position
  assert diff.flat[here + 1] > 0.0 and diff[i + 1:].min() > 0.0


@pytest.mark.parametrize('temperature', [1.0, 0.6])
def test_cached_and_naive_samplers_give_identical_samples(generator,
                                                          temperature):
  module, params, cond = generator
  rng = jax.random.PRNGKey(7)
  naive = jax.jit(lambda p, c: module.sample_naive(
      p, c, rng, K, temperature))(params, cond)
  cached, _ = jax.jit(lambda p, c: module.sample_cached(
      p, c, rng, K, temperature))(params, cond)
  np.testing.assert_array_equal(np.asarray(naive), np.asarray(cached))
  # Samples differ between images and are on the 256-level grid.
  assert len(np.unique(np.asarray(cached).reshape(-1, 2), axis=0)) > 20
  grid = (np.asarray(cached) + 1.0) * 127.5
  np.testing.assert_allclose(grid, np.round(grid), atol=1e-4)


@pytest.mark.parametrize('kind', ['down', 'down_right'])
def test_pixelcnnpp_deconv_is_pixelcnn_pps_cropped_transposed_conv(kind):
  """The einsum form equals `conv_transpose` (VALID, stride 2, output
  height 2h+1 and width 2w+kw-1 as PixelCNN++'s deconv2d) cropped as
  down_shifted_deconv2d / down_right_shifted_deconv2d, values and
  gradients."""
  kw = 3 if kind == 'down' else 2
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4, 5))
  p = {'w': jax.random.normal(jax.random.PRNGKey(1), (2, kw, 5, 6)),
       'b': jax.random.normal(jax.random.PRNGKey(2), (6,))}

  def reference(x, p):
    # TF's conv2d_transpose (conv2d's input gradient) does not flip the
    # kernel; lax.conv_transpose does, so it gets the flipped one.
    y = jax.lax.conv_transpose(x, p['w'][::-1, ::-1], (2, 2), 'VALID',
                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    y = jnp.pad(y, [(0, 0), (0, 1), (0, 1), (0, 0)])  # TF's target shape
    h, w = y.shape[1], y.shape[2]              # 2h+1, 2w+kw-1
    cols = slice(1, w - 1) if kw == 3 else slice(0, w - 1)
    return y[:, :h - 1, cols] + p['b']

  ours = pixelcnnpp.deconv(x, p, kind)
  np.testing.assert_allclose(ours, reference(x, p), rtol=1e-5, atol=1e-5)
  g_ours = jax.grad(lambda p: jnp.sum(jnp.sin(pixelcnnpp.deconv(x, p, kind))))(p)
  g_ref = jax.grad(lambda p: jnp.sum(jnp.sin(reference(x, p))))(p)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_pixelcnnpp_parameter_count_written_out():
  """Salimans et al.'s layout counted by hand: 3 input convolutions, per
  extra scale 2 strided + 2 transposed convolutions, 5 blocks per scale on
  the way down and 5 + 6 + 6 on the way up, each with two shifted
  convolutions on concat_elu inputs, the conditioning projection and `a`."""
  c, cond, k, s, r = 16, 7, 4, 3, 2
  params = pixelcnnpp.init_params(jax.random.PRNGKey(0), 2, cond, c, r, k,
                                  num_scales=s)
  conv = lambda kh, kw, cin, cout: kh * kw * cin * cout + cout
  def block(kh, kw, a):
    return (conv(kh, kw, 2 * c, c) + conv(kh, kw, 2 * c, 2 * c)
            + conv(1, 1, cond, 2 * c) + (conv(1, 1, a, c) if a else 0))
  inputs = conv(2, 3, 3, c) + conv(1, 3, 3, c) + conv(2, 1, 3, c)
  resample = (s - 1) * 2 * (conv(2, 3, c, c) + conv(2, 2, c, c))
  down = s * r * (block(2, 3, 0) + block(2, 2, 2 * c))
  up_blocks = r + (s - 1) * (r + 1)
  up = up_blocks * (block(2, 3, 2 * c) + block(2, 2, 4 * c))
  out = conv(1, 1, c, dmol.num_outputs(k))
  total = sum(x.size for x in jax.tree.leaves(params))
  assert total == inputs + resample + down + up + out


def test_pixelcnnpp_dropout_only_in_training_and_by_its_rate():
  params = pixelcnnpp.init_params(jax.random.PRNGKey(0), 2, 4, 8, 1, 2,
                                  num_scales=2)
  cond = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 4))
  ab = jax.random.uniform(jax.random.PRNGKey(2), (2, 4, 4, 2), minval=-1.0,
                          maxval=1.0)
  plain = pixelcnnpp.forward(params, ab, cond)
  np.testing.assert_array_equal(
      pixelcnnpp.forward(params, ab, cond, 0.5), plain)   # no rng: off
  a = pixelcnnpp.forward(params, ab, cond, 0.5, jax.random.PRNGKey(3))
  b = pixelcnnpp.forward(params, ab, cond, 0.5, jax.random.PRNGKey(4))
  assert not np.allclose(a, plain) and not np.allclose(a, b)
  np.testing.assert_array_equal(
      a, pixelcnnpp.forward(params, ab, cond, 0.5, jax.random.PRNGKey(3)))
  np.testing.assert_allclose(
      pixelcnnpp.forward(params, ab, cond, 1e-9, jax.random.PRNGKey(3)),
      plain, rtol=1e-5, atol=1e-6)


def test_pixelcnnpp_needs_sizes_its_scales_divide():
  params = pixelcnnpp.init_params(jax.random.PRNGKey(0), 2, 4, 8, 1, 2,
                                  num_scales=3)
  with pytest.raises(ValueError, match='divisible by 4'):
    pixelcnnpp.forward(params, jnp.zeros((1, 6, 8, 2)), jnp.zeros((1, 6, 8, 4)))


@pytest.mark.parametrize('variant', pixsem.VARIANTS)
def test_every_variant_samples_and_keeps_the_conditioning_once(variant):
  model = pixsem.PixSem(num_classes=5, variant=variant, widths=(8, 8, 8, 8),
                        blocks=(1, 1, 1, 1, 1), embedding_channels=8,
                        generator_channels=8, generator_blocks=1,
                        num_mixtures=2)
  gray = jnp.zeros((2, 16, 16, 1))
  variables = model.init(jax.random.PRNGKey(0), gray, jnp.zeros((2, 4, 4, 2)))
  samples, out = model.apply(variables, gray, jax.random.PRNGKey(1), 3,
                             method=pixsem.PixSem.sample)
  assert samples.shape == (2, 3, 4, 4, 2)
  assert out['cond'].shape[0] == 2          # not repeated per sample
  assert ('segmentation' in out) == (variant != 'embedding')


def test_tiny_pixsem_trains_end_to_end(tiny_pixsem_run):
  workdir, result = tiny_pixsem_run
  for key in ('bits_per_dim_embedding', 'bits_per_dim_generator',
              'loss_segmentation'):
    assert np.isfinite(result['train'][key])
  assert np.isfinite(result['eval']['psnr'])
  _, state = workdir_lib.restore_for_inference(workdir)
  ema = jax.tree.leaves(state.model_state['ema'])
  params = jax.tree.leaves(state.params['model'])
  assert any(not np.array_equal(e, p) for e, p in zip(ema, params))
  from colorjax import evaluate  # pylint: disable=g-import-not-at-top
  metrics = evaluate.evaluate_workdir(workdir, diversity_samples=3)
  assert -1.0 <= metrics['diversity_ssim'] < 0.999   # samples differ
  assert metrics['diversity_num_samples'] == 3


def test_colorize_writes_diverse_samples_at_full_resolution(
    tiny_pixsem_run, tmp_path, rng):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from colorjax import colorize  # pylint: disable=g-import-not-at-top
  workdir, _ = tiny_pixsem_run
  photo = rng.integers(0, 256, (45, 70, 3)).astype(np.uint8)
  Image.fromarray(photo).save(tmp_path / 'photo.png')
  outputs = {}
  for sampler in ('cached', 'naive'):
    written, failures = colorize.colorize(
        workdir, [str(tmp_path / 'photo.png')], str(tmp_path / sampler),
        num_samples=3, temperature=1.0, seed=4, sampler=sampler)
    assert not failures
    names = sorted(p.split('/')[-1] for p in written)
    assert names == ['photo_grid.png', 'photo_sample0.png',
                     'photo_sample1.png', 'photo_sample2.png']
    outputs[sampler] = [np.asarray(Image.open(
        tmp_path / sampler / f'photo_sample{k}.png')) for k in range(3)]
  assert outputs['cached'][0].shape == (45, 70, 3)
  grid = np.asarray(Image.open(tmp_path / 'cached' / 'photo_grid.png'))
  assert grid.shape == (45, 210, 3)
  # Same seed: both samplers draw the same colorizations; samples differ.
  for a, b in zip(outputs['cached'], outputs['naive']):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(outputs['cached'][0], outputs['cached'][1])
  # The colours written are the method's own samples (seed 4, first batch),
  # recombined apart from colorize: ab * 128 upsampled to the photo guided
  # by its L (color.upsample, tested in test_upsample.py), with the
  # photo's L, brought into the gamut at constant L and hue (color.gamut,
  # tested in test_gamut.py), through scikit-image's Lab -> sRGB.
  from skimage import color as skcolor  # pylint: disable=g-import-not-at-top
  from colorjax.data import preprocess  # pylint: disable=g-import-not-at-top
  from colorjax.color import upsample  # pylint: disable=g-import-not-at-top
  # The network saw the photo at its aspect: short side at the model size,
  # the long side in proportion, padded to the stride multiple; the
  # padding's colours are cropped away at the photo's resolution.
  method, state = workdir_lib.restore_for_inference(workdir)
  size, multiple = method.config.data.image_size, method.input_multiple()
  where = inference.placement(45, 70, size, multiple)
  assert (where.height, where.width) == (size, round(70 * size / 45))
  assert where.padded_width % multiple == 0 and where.padded_width > size
  example = preprocess.apply(inference.inference_ops(method.config, where),
                             {'image': photo})
  assert example['gray'].shape[:2] == where.padded
  ab, _ = method.sample(state, jnp.asarray(example['gray'][None]),
                        jax.random.fold_in(jax.random.PRNGKey(4), 0), 3, 1.0)
  lightness = skcolor.rgb2lab(photo / 255.0)[..., :1]
  for k in range(3):
    # The photo's share of the ab (its columns of the padded input),
    # upsampled onto the photo.
    small = np.asarray(ab[0, k]) * method.config.data.ab_scale
    ab_full = upsample.upsample_ab(
        lightness.astype(np.float32), small, 'guided',
        inference.photo_box(where, *small.shape[:2]))
    expected = skcolor.lab2rgb(gamut.into_gamut(
        np.concatenate([lightness, ab_full], -1)))
    error = np.abs(outputs['cached'][k] / 255.0 - expected)
    assert np.percentile(error, 95) < 6 / 255, k
  chroma = np.hypot(*np.moveaxis(skcolor.rgb2lab(
      outputs['cached'][0] / 255.0)[..., 1:], -1, 0))
  assert chroma.mean() > 3.0            # coloured, not gray
  # The editor's sample mode is the same code path: same seed, same
  # samples; another temperature (traced: no recompilation) other samples.
  from colorjax.editor import engine as engine_lib  # pylint: disable=g-import-not-at-top
  engine = engine_lib.WorkdirEngine(workdir)
  assert engine.mode == 'sample'
  samples = engine.sample(photo, 3, temperature=1.0, seed=4)
  for a, b in zip(samples, outputs['cached']):
    np.testing.assert_array_equal(a, b)
  colder = engine.sample(photo, 3, temperature=0.5, seed=4)
  assert not np.array_equal(colder[0], samples[0])
