"""PixSem: cached sampling equals naive sampling; all variants train."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.models import pixelcnn
from colorjax.models import pixsem
from colorjax import train
from colorjax import workdir as workdir_lib
from conftest import tiny_config

K = 3


@pytest.fixture(scope='module')
def generator():
  params = pixelcnn.init_params(jax.random.PRNGKey(0), 2, 6, 12, 2, K)
  # Larger output weights than at init, so the distributions are not flat
  # and a wrong cache would change samples.
  params['out']['w'] = params['out']['w'] * 20.0
  cond = jax.random.normal(jax.random.PRNGKey(1), (3, 7, 6, 6))
  return params, cond


def test_cached_step_outputs_equal_teacher_forced_outputs(generator):
  params, cond = generator
  ab = jax.random.uniform(jax.random.PRNGKey(2), cond.shape[:3] + (2,),
                          minval=-1.0, maxval=1.0)
  expected = pixelcnn.forward(params, ab, cond)
  _, cached = jax.jit(lambda p, c, a: pixelcnn.sample_cached(
      p, c, jax.random.PRNGKey(0), K, teacher_ab=a))(params, cond, ab)
  np.testing.assert_allclose(np.asarray(cached), np.asarray(expected),
                             rtol=1e-5, atol=1e-5)


def test_generator_is_causal_in_raster_order(generator):
  params, cond = generator
  ab = jax.random.uniform(jax.random.PRNGKey(3), cond.shape[:3] + (2,),
                          minval=-1.0, maxval=1.0)
  changed = ab.at[:, 3, 2].set(0.5)
  diff = np.asarray(jnp.abs(pixelcnn.forward(params, changed, cond)
                            - pixelcnn.forward(params, ab, cond)).max((0, 3)))
  height, width = diff.shape
  order = np.arange(height * width).reshape(height, width)
  position = order[3, 2]
  assert np.all(diff[order <= position] == 0.0)   # itself and before
  assert diff[3, 3] > 0.0 and diff[4:].min() > 0.0  # later pixels see it


@pytest.mark.parametrize('temperature', [1.0, 0.6])
def test_cached_and_naive_samplers_give_identical_samples(generator,
                                                          temperature):
  params, cond = generator
  rng = jax.random.PRNGKey(7)
  naive = jax.jit(lambda p, c: pixelcnn.sample_naive(
      p, c, rng, K, temperature))(params, cond)
  cached, _ = jax.jit(lambda p, c: pixelcnn.sample_cached(
      p, c, rng, K, temperature))(params, cond)
  np.testing.assert_array_equal(np.asarray(naive), np.asarray(cached))
  # Samples differ between images and are on the 256-level grid.
  assert len(np.unique(np.asarray(cached).reshape(-1, 2), axis=0)) > 20
  grid = (np.asarray(cached) + 1.0) * 127.5
  np.testing.assert_allclose(grid, np.round(grid), atol=1e-4)


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


def test_tiny_pixsem_trains_end_to_end(shapes_data_dir, tmp_path):
  workdir = str(tmp_path / 'pixsem')
  result = train.train_and_evaluate(
      tiny_config(shapes_data_dir, name='pixsem'), workdir)
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
    shapes_data_dir, tmp_path, rng):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from colorjax import colorize  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'pixsem')
  train.train_and_evaluate(tiny_config(shapes_data_dir, name='pixsem',
                                       num_train_steps=2), workdir)
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
