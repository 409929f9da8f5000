"""Preprocessing ops and the grain loader."""

import os
import subprocess
import sys
import textwrap

import grain
import jax
import numpy as np
import pytest
from skimage import color as skcolor
from skimage import exposure

from colorjax import data
from colorjax.color import quantize
from colorjax import color
from colorjax.data import preprocess
from colorjax.data import prior as prior_lib

TRAIN_SPEC = ('resize_short(40)|random_crop(32)|flip|to_lab|'
              'soft_encode(stride=4)|equalize_l|normalize_lab|'
              'keep(("gray", "ab", "segmentation", "ab_bins", "ab_weights"))')


def _aligned_example(rng, height=36, width=48):
  """Labels are a function of the pixel colour, so misalignment shows."""
  labels = rng.integers(0, 5, (height // 6, width // 6)).repeat(6, 0).repeat(
      6, 1).astype(np.uint8)
  palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0],
                      [0, 255, 255]], np.uint8)
  return {'image': palette[labels], 'segmentation': labels[..., None],
          'labels': np.unique(labels)}, palette


def test_crop_and_flip_keep_labels_exactly_aligned(rng):
  ops = preprocess.parse('random_crop(30)|flip(p=1.0)')
  for seed in range(5):
    example, palette = _aligned_example(rng)
    out = preprocess.apply(ops, example, np.random.default_rng(seed))
    assert out['image'].shape == (30, 30, 3)
    np.testing.assert_array_equal(out['image'],
                                  palette[out['segmentation'][..., 0]])


def test_resize_keeps_labels_aligned(rng):
  """Per class, the centroid of its colour and of its label coincide."""
  ops = preprocess.parse('resize_short(60)|random_crop(56)')
  for seed in range(5):
    example, palette = _aligned_example(rng)
    out = preprocess.apply(ops, example, np.random.default_rng(seed))
    assert out['segmentation'].shape == (56, 56, 1)
    assert set(np.unique(out['segmentation'])) <= set(range(5))  # nearest
    yy, xx = np.mgrid[:56, :56]
    for label in np.unique(out['segmentation']):
      in_label = out['segmentation'][..., 0] == label
      in_colour = np.all(np.abs(out['image'].astype(int) - palette[label])
                         < 60, -1)
      for grid in (yy, xx):
        assert abs(grid[in_label].mean() - grid[in_colour].mean()) < 0.5


def test_resize_short_preserves_aspect():
  example = {'image': np.zeros((30, 60, 3), np.uint8),
             'segmentation': np.zeros((30, 60, 1), np.uint8)}
  out = preprocess.apply(preprocess.parse('resize_short(15)'), example)
  assert out['image'].shape == (15, 30, 3)
  assert out['segmentation'].shape == (15, 30, 1)


def test_flip_flips_image_and_labels_together(rng):
  example, _ = _aligned_example(rng)
  out = preprocess.apply(preprocess.parse('flip(p=1.0)'), example)
  np.testing.assert_array_equal(out['image'], example['image'][:, ::-1])
  np.testing.assert_array_equal(out['segmentation'],
                                example['segmentation'][:, ::-1])


def test_to_lab_and_normalize_ranges(rng):
  image = rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)
  out = preprocess.apply(preprocess.parse('to_lab'), {'image': image})
  lab = skcolor.rgb2lab(image / 255.0)
  np.testing.assert_allclose(out['gray'][..., 0], lab[..., 0], atol=1e-3)
  np.testing.assert_allclose(out['ab'], lab[..., 1:], atol=1e-3)
  norm = preprocess.apply(
      preprocess.parse('normalize_lab(l_low=0.0, l_high=1.0, ab_scale=128)'),
      out)
  np.testing.assert_allclose(norm['gray'], out['gray'] / 100.0, atol=1e-6)
  np.testing.assert_allclose(norm['ab'], out['ab'] / 128.0, atol=1e-6)


def test_equalize_l_flattens_histogram_like_skimage(rng):
  lightness = np.clip(rng.normal(40, 5, (64, 64)), 0, 100).astype(np.float32)
  ours = color.equalize_lightness(lightness)
  reference = exposure.equalize_hist(lightness / 100.0, nbins=256) * 100.0
  # Both map through the empirical CDF; they differ only by the CDF offset.
  assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.999
  assert ours.min() == 0.0 and ours.max() == pytest.approx(100.0)
  assert np.all(np.diff(ours.ravel()[np.argsort(lightness.ravel())]) >= 0)
  example = {'gray': lightness[..., None], 'ab': np.ones((64, 64, 2))}
  out = preprocess.apply(preprocess.parse('equalize_l'), example)
  np.testing.assert_array_equal(out['ab'], example['ab'])


def test_brightness_contrast_changes_rgb_within_bounds(rng):
  image = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
  op = preprocess.parse('brightness_contrast(0.2, 0.2)')
  outs = [preprocess.apply(op, {'image': image}, np.random.default_rng(s))
          for s in range(4)]
  assert any(not np.array_equal(o['image'], image) for o in outs)
  for o in outs:
    assert o['image'].dtype == np.uint8


def test_random_affine_moves_image_and_labels_together(rng):
  """Zero ranges are the identity; a 90 degree turn is np.rot90 of image and
  labels alike (one of the two senses); labels stay labels (nearest) and
  the size is kept."""
  image = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
  seg = rng.integers(0, 5, (16, 16, 1)).astype(np.uint8)
  same = preprocess.apply(preprocess.parse(
      'random_affine(rotate=0.0, scale=0.0, translate=0.0)'),
                          {'image': image, 'segmentation': seg},
                          np.random.default_rng(0))
  np.testing.assert_array_equal(same['image'], image)
  np.testing.assert_array_equal(same['segmentation'], seg)

  class Quarter:      # draws: angle = +90 degrees, zoom 1, no shift
    def uniform(self, low, high, size=None):
      return high if size is None and high == 90.0 else (
          1.0 if size is None else np.zeros(size))

  op = preprocess.parse('random_affine(rotate=90.0, scale=0.0, '
                        'translate=0.0)')[0]
  turned = op.random_map({'image': image, 'segmentation': seg}, Quarter())
  turns = [k for k in (1, -1)
           if np.array_equal(turned['image'], np.rot90(image, k))]
  assert len(turns) == 1
  np.testing.assert_array_equal(turned['segmentation'],
                                np.rot90(seg, turns[0]))
  out = preprocess.apply([op], {'image': image, 'segmentation': seg},
                         np.random.default_rng(3))
  assert out['image'].shape == image.shape and out['image'].dtype == np.uint8
  assert set(np.unique(out['segmentation'])) <= set(np.unique(seg))


def test_remap_labels_and_multi_hot():
  seg = np.array([[0, 1, 150, 255]], np.uint8)[..., None]
  out = preprocess.apply(preprocess.parse('remap_labels({0: 255}, shift=-1)'),
                         {'segmentation': seg})
  np.testing.assert_array_equal(out['segmentation'][..., 0],
                                [[255, 0, 149, 254]])
  hot = preprocess.apply(preprocess.parse('multi_hot(5)'),
                         {'labels': np.array([0, 3])})['labels']
  np.testing.assert_array_equal(hot, [1, 0, 0, 1, 0])


def test_parse_rejects_unknown_ops():
  with pytest.raises(ValueError, match='unknown preprocessing op'):
    preprocess.parse('to_lab|sharpen(2)')


def _spec(data_dir, **kwargs):
  fields = dict(dataset='semantic_shapes/test', split='train',
                global_batch_size=4, data_dir=data_dir, preprocess=TRAIN_SPEC,
                seed=3)
  fields.update(kwargs)
  return data.LoaderSpec(**fields)


def test_loader_batches_shapes_and_determinism(shapes_data_dir):
  spec = _spec(shapes_data_dir)
  first = next(iter(data.create_loader(spec)))
  assert first['gray'].shape == (4, 32, 32, 1)
  assert first['ab'].shape == (4, 32, 32, 2)
  assert first['segmentation'].shape == (4, 32, 32, 1)
  assert first['ab_bins'].shape == (4, 8, 8, 5)
  assert first['gray'].min() >= -1.0 and first['gray'].max() <= 1.0
  np.testing.assert_allclose(first['ab_weights'].sum(-1), 1.0, atol=1e-5)
  again = next(iter(data.create_loader(spec)))
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  other_seed = next(iter(data.create_loader(_spec(shapes_data_dir, seed=4))))
  assert not np.array_equal(first['gray'], other_seed['gray'])


def test_loader_state_resumes_exactly(shapes_data_dir):
  loader = data.create_loader(_spec(shapes_data_dir))
  iterator = iter(loader)
  for _ in range(7):      # past the first epoch of 24 / 4 = 6 batches
    next(iterator)
  state = iterator.get_state()
  expected = [next(iterator) for _ in range(3)]
  resumed = iter(data.create_loader(_spec(shapes_data_dir)))
  resumed.set_state(state)
  for batch in expected:
    got = next(resumed)
    for key in batch:
      np.testing.assert_array_equal(batch[key], got[key])


def test_eval_loader_is_one_ordered_epoch(shapes_data_dir):
  spec = _spec(shapes_data_dir, split='validation', shuffle=False,
               num_epochs=1, drop_remainder=False, global_batch_size=3,
               preprocess='to_lab|keep(("gray",))')
  batches = list(data.create_loader(spec))
  assert [len(b['gray']) for b in batches] == [3, 3, 2]


def test_global_batches_are_sharded_jax_arrays(shapes_data_dir):
  mesh = data.data_mesh()
  batch = next(data.global_batches(iter(data.create_loader(
      _spec(shapes_data_dir))), mesh))
  assert isinstance(batch['gray'], jax.Array)
  assert batch['gray'].shape == (4, 32, 32, 1)
  assert batch['gray'].sharding.spec[0] == data.pipeline.DATA_AXIS


def test_missing_dataset_error_says_how_to_prepare(tmp_path):
  with pytest.raises(FileNotFoundError) as error:
    data.data_source('voc2012_aug', 'train_aug', str(tmp_path))
  assert 'colorjax.datasets.prepare --dataset=voc2012_aug' in str(error.value)
  assert ':demo' in str(error.value)


def test_missing_embedded_dataset_is_not_built_as_tfrecord(tmp_path):
  """tfds.data_source would build a missing dataset itself, as TFRecord it
  cannot read randomly; the trainer's ensure_dataset must get the clean
  'not prepared' error and build ArrayRecord instead."""
  with pytest.raises(FileNotFoundError, match='--dataset=semantic_shapes/64'):
    data.data_source('semantic_shapes/64', 'train', str(tmp_path))
  assert not any(p.is_file() for p in tmp_path.rglob('*'))


def test_split_prior_matches_bruteforce(shapes_data_dir):
  prior = prior_lib.compute_split_prior('semantic_shapes/test', 'validation',
                                        shapes_data_dir, size=32,
                                        batch_size=3)
  source = data.data_source('semantic_shapes/test', 'validation',
                            shapes_data_dir)
  ab = np.stack([skcolor.rgb2lab(source[i]['image'] / 255.0)[..., 1:]
                 for i in range(len(source))]).reshape(-1, 2)
  bins = quantize.ab_gamut_bins()
  nearest = np.argmin(((ab[:, None] - bins[None]) ** 2).sum(-1), -1)
  expected = np.bincount(nearest, minlength=313) / len(ab)
  np.testing.assert_allclose(prior, expected, atol=1e-6)


_SUBPROCESS_PREAMBLE = """
import os, sys, json
import numpy as np
"""


def _run(script, env=None, timeout=300):
  result = subprocess.run([sys.executable, '-c', textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_global_batch_on_eight_devices(shapes_data_dir):
  out = _run(f"""
      import jax, numpy as np
      from colorjax import data
      spec = data.LoaderSpec(dataset='semantic_shapes/test', split='train',
                             global_batch_size=8, data_dir={shapes_data_dir!r},
                             preprocess='to_lab|keep(("gray",))', seed=3)
      local = next(iter(data.create_loader(spec)))
      mesh = data.data_mesh()
      batch = next(data.global_batches(iter([local]), mesh))
      assert len(jax.devices()) == 8
      shards = batch['gray'].addressable_shards
      assert len(shards) == 8 and all(s.data.shape[0] == 1 for s in shards)
      np.testing.assert_array_equal(np.asarray(batch['gray']), local['gray'])
      print('ok')
      """, env={'XLA_FLAGS': '--xla_force_host_platform_device_count=8'})
  assert out.strip().endswith('ok')


def test_multiprocess_workers_match_in_process(shapes_data_dir, tmp_path):
  script = tmp_path / 'workers.py'
  script.write_text(textwrap.dedent(f"""
      import jax
      import numpy as np
      from absl import app
      from colorjax import data

      def main(argv):
        spec = dict(dataset='semantic_shapes/test', split='train',
                    global_batch_size=4, data_dir={shapes_data_dir!r},
                    preprocess={TRAIN_SPEC!r}, seed=3)
        serial = data.create_loader(data.LoaderSpec(**spec))
        parallel = data.create_loader(data.LoaderSpec(**spec, worker_count=2))
        # Workers batch their own records (round robin), so batches are
        # composed differently; the examples and their augmentations are not.
        def examples(loader):
          out = []
          for batch, _ in zip(loader, range(8)):
            for i in range(len(batch['gray'])):
              out.append(b''.join(batch[k][i].tobytes() for k in sorted(batch)))
          return sorted(out)
        assert examples(serial) == examples(parallel)
        # Batches own their memory: the last one, kept alive until exit and
        # aliased by jax, must not leave worker shared memory behind.
        global last
        last = next(iter(parallel))
        assert all(type(v) is np.ndarray for v in last.values())
        last = jax.device_put(last)
        print('identical')

      if __name__ == '__main__':
        app.run(main)
      """))
  result = subprocess.run([sys.executable, str(script)], capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'identical' in result.stdout
  assert 'leaked' not in result.stderr, result.stderr[-1000:]


def test_process_sharding_splits_records_disjointly(shapes_data_dir):
  """Two jax processes read disjoint halves of each epoch."""
  spec = _spec(shapes_data_dir, num_epochs=1, global_batch_size=2,
               preprocess='keep(("id",))')
  seen = []
  for index in range(2):
    loader = data.create_loader(spec, shard_options=grain.sharding.ShardOptions(
        index, 2, drop_remainder=True))
    seen.append({i for batch in loader for i in batch['id']})
  assert len(seen[0]) == len(seen[1]) == 12
  assert not seen[0] & seen[1]


def test_global_batches_do_not_depend_on_the_process_count():
  """Global batch k holds the same records (and rngs) for 1 or 2 processes."""
  def sampler(local_batch, process, count):
    return data.pipeline.GlobalBatchSampler(
        grain.samplers.IndexSampler(num_records=10, shuffle=True,
                                    num_epochs=None, seed=5),
        local_batch, process, count)

  single = sampler(4, 0, 1)
  halves = [sampler(2, p, 2) for p in range(2)]
  for batch in range(7):     # crosses epoch boundaries (10 records)
    expected = [single[batch * 4 + j] for j in range(4)]
    got = [halves[p][batch * 2 + j] for p in range(2) for j in range(2)]
    assert [m.record_key for m in got] == [m.record_key for m in expected]
    assert all(a.rng.integers(1 << 30) == b.rng.integers(1 << 30)
               for a, b in zip(got, expected))
