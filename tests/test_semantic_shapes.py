"""The embedded dataset has the properties the demos and benchmarks rely on."""

import numpy as np
import tensorflow_datasets as tfds

from colorjax.color import rgb_to_lab_numpy
from colorjax.datasets import semantic_shapes as shapes


def _scenes(count, size=32, split='train'):
  images, labels = zip(*(shapes.scene(0, split, i, size)
                         for i in range(count)))
  lab = rgb_to_lab_numpy(np.stack(images) / 255.0)
  return lab, np.stack(labels)


def test_scenes_are_deterministic_and_splits_differ():
  a = shapes.scene(0, 'train', 5, 32)
  b = shapes.scene(0, 'train', 5, 32)
  c = shapes.scene(0, 'validation', 5, 32)
  d = shapes.scene(1, 'train', 5, 32)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[0], c[0])
  assert not np.array_equal(a[0], d[0])


def test_every_pixel_has_a_colour_of_its_labelled_class():
  """Labels are exact: no pixel carries another class's colour (no blending
  at edges), up to the per-instance jitter and 8-bit/gamut rounding."""
  lab, labels = _scenes(60)
  for class_id, shape_class in enumerate(shapes.CLASSES):
    chroma = lab[..., 1:][labels == class_id]
    modes = np.asarray(shape_class.modes)
    distance = np.min(np.linalg.norm(chroma[:, None] - modes[None], axis=-1),
                      axis=-1)
    assert np.quantile(distance, 0.99) < 14.0, shape_class.name


def test_lightness_does_not_reveal_the_class():
  lab, labels = _scenes(300)
  means = [lab[..., 0][labels == k].mean() for k in range(len(shapes.CLASSES))]
  # All classes share one lightness range: their mean L differ by < 8 (of 100)
  assert max(means) - min(means) < 8.0
  assert all(40 < m < 70 for m in means)


def test_semantics_beat_luminance_for_predicting_colour():
  """The best colour guess from class labels is far better than from L."""
  lab, labels = _scenes(300)
  train, test = slice(0, 200), slice(200, 300)
  ab_train = lab[train][..., 1:].reshape(-1, 2)
  ab_test = lab[test][..., 1:].reshape(-1, 2)
  # Semantic oracle: mean ab of the pixel's class.
  class_mean = np.stack([ab_train[labels[train].ravel() == k].mean(0)
                         for k in range(len(shapes.CLASSES))])
  semantic_error = np.abs(class_mean[labels[test].ravel()] - ab_test).mean()
  # Luminance-only: mean ab of the pixel's L bin (1 L unit wide).
  l_bins_train = np.clip(lab[train][..., 0].ravel().astype(int), 0, 100)
  l_bins_test = np.clip(lab[test][..., 0].ravel().astype(int), 0, 100)
  l_mean = np.zeros((101, 2))
  for b in range(101):
    sel = l_bins_train == b
    l_mean[b] = ab_train[sel].mean(0) if sel.any() else ab_train.mean(0)
  luminance_error = np.abs(l_mean[l_bins_test] - ab_test).mean()
  gray_error = np.abs(ab_test).mean()
  assert semantic_error < 0.6 * luminance_error
  assert luminance_error < gray_error


def test_multimodal_classes_take_each_of_their_colours():
  lab, labels = _scenes(300)
  for class_id, shape_class in enumerate(shapes.CLASSES):
    if len(shape_class.modes) < 2:
      continue
    chroma = lab[..., 1:][labels == class_id]
    modes = np.asarray(shape_class.modes)
    nearest = np.argmin(((chroma[:, None] - modes[None]) ** 2).sum(-1), -1)
    fractions = np.bincount(nearest, minlength=len(modes)) / len(nearest)
    assert np.all(fractions > 0.1), (shape_class.name, fractions)
    # The average of the modes is far from every mode: L2 regression would
    # desaturate these classes.
    mean = chroma.mean(0)
    assert np.min(np.linalg.norm(modes - mean, axis=-1)) > 15.0


def test_builder_writes_all_splits(shapes_data_dir):
  sources = tfds.data_source('semantic_shapes/test', data_dir=shapes_data_dir)
  assert len(sources['train']) == 24 and len(sources['validation']) == 8
  image, label_map = shapes.scene(0, 'train', 3, 32)
  ids = [sources['train'][i]['id'].decode() for i in range(24)]
  position = ids.index('train_000003')
  example = sources['train'][position]
  np.testing.assert_array_equal(example['image'], image)
  np.testing.assert_array_equal(example['segmentation'][..., 0], label_map)
  assert set(example['labels']) == set(np.unique(label_map))
