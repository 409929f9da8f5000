"""The embedded dataset has the properties the demos and benchmarks rely on."""

import hashlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from colorjax.color import rgb_to_lab_numpy
from colorjax.data import preprocess
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
  """The session's build is the default version (2.0.0, with scenes)."""
  sources = tfds.data_source('semantic_shapes/test', data_dir=shapes_data_dir)
  assert len(sources['train']) == 24 and len(sources['validation']) == 8
  image, label_map, scene_id = shapes.scene(0, 'train', 3, 32, version=2)
  ids = [sources['train'][i]['id'].decode() for i in range(24)]
  position = ids.index('train_000003')
  example = sources['train'][position]
  np.testing.assert_array_equal(example['image'], image)
  np.testing.assert_array_equal(example['segmentation'][..., 0], label_map)
  assert set(example['labels']) == set(np.unique(label_map))
  assert int(example['scene']) == scene_id


# Guards that version 1.0.0's content never changes: the demos' README
# numbers were measured on it. Do not update this digest; if it fails, the
# change broke 1.0.0 (make the change in version 2 only).
V1_DIGEST = '448e142dcbc8f6e81a696c87019d2e4e2fa3405f0f61c011ae330a193c7b24ef'


def test_version_1_content_never_changes():
  digest = hashlib.sha256()
  for split in ('train', 'validation'):
    for index in range(4):
      rgb, labels = shapes.scene(0, split, index, 32)
      digest.update(rgb.tobytes())
      digest.update(labels.tobytes())
  assert digest.hexdigest() == V1_DIGEST


def _build(data_dir, version=None):
  config = shapes.SemanticShapesConfig(
      name='tiny', image_size=32, num_train=4, num_validation=2, num_test=0)
  kwargs = {} if version is None else {'version': version}
  builder = shapes.SemanticShapes(data_dir=str(data_dir),
                                  file_format='array_record', config=config,
                                  **kwargs)
  builder.download_and_prepare()
  return builder


def test_both_versions_are_prepared_and_read(tmp_path):
  old = _build(tmp_path, '1.0.0')
  new = _build(tmp_path)
  assert str(old.version) == '1.0.0' and str(new.version) == '2.0.0'
  v1 = tfds.data_source('semantic_shapes/tiny:1.0.0', data_dir=str(tmp_path))
  v2 = tfds.data_source('semantic_shapes/tiny:2.0.0', data_dir=str(tmp_path))
  assert len(v1['train']) == 4 and len(v2['validation']) == 2
  for example in v1['train']:
    assert 'scene' not in example
    index = int(example['id'].decode().split('_')[1])
    image, _ = shapes.scene(0, 'train', index, 32)
    np.testing.assert_array_equal(example['image'], image)
  for example in v2['train']:
    index = int(example['id'].decode().split('_')[1])
    image, _, scene_id = shapes.scene(0, 'train', index, 32, version=2)
    np.testing.assert_array_equal(example['image'], image)
    assert int(example['scene']) == scene_id and scene_id in range(3)


def _v2_scenes(count, size=32, split='validation'):
  images, labels, scene_ids = zip(*(shapes.scene(0, split, i, size, version=2)
                                    for i in range(count)))
  lab = rgb_to_lab_numpy(np.stack(images) / 255.0)
  return lab, np.stack(labels), np.asarray(scene_ids)


def test_v2_every_pixel_has_a_colour_of_its_class_in_its_scene():
  lab, labels, scene_ids = _v2_scenes(60)
  assert set(scene_ids) == {0, 1, 2}
  for scene_id, scene_name in enumerate(shapes.SCENE_NAMES):
    in_scene = scene_ids == scene_id
    for class_id, palette in enumerate(shapes.SCENE_PALETTES[scene_id]):
      mask = (labels == class_id) & in_scene[:, None, None]
      if not mask.any():
        continue
      chroma = lab[..., 1:][mask]
      modes = np.asarray(palette.modes)
      distance = np.min(np.linalg.norm(chroma[:, None] - modes[None],
                                       axis=-1), axis=-1)
      name = (scene_name, shapes.CLASS_NAMES[class_id])
      assert np.quantile(distance, 0.99) < 12.0, name
      assert distance.max() < 16.0, name


def test_v2_scenes_decide_the_palette():
  allowed = {tuple(m) for c in shapes.CLASSES for m in c.modes}
  palettes = shapes.SCENE_PALETTES
  for class_id, name in enumerate(shapes.CLASS_NAMES):
    sets = [frozenset(p[class_id].modes) for p in palettes]
    assert all(modes <= allowed for modes in sets), name
    assert all(np.isclose(sum(p[class_id].weights), 1.0) for p in palettes)
    if class_id in shapes.OBJECT_CLASSES:     # all three scenes differ
      assert len(set(sets)) == len(palettes), name
    else:                                     # sky, grass: at least two
      assert len(set(sets)) >= 2, name
  for palette in palettes:
    flower = palette[shapes.CLASS_NAMES.index('flower')]
    assert flower.weights == (0.5, 0.5)
    assert np.linalg.norm(np.subtract(*flower.modes)) > 40.0
    # Within a scene, no two classes share a colour.
    colours = [m for p in palette for m in p.modes]
    assert len(set(colours)) == len(colours)


def test_v2_scene_is_recognisable_from_gray():
  """Global background cues name the scene: the sky's lightness falls
  towards the horizon only at sunset, autumn grass is coarse."""
  lab, labels, scene_ids = _v2_scenes(60)
  lightness = lab[..., 0]
  predicted = []
  for image in range(len(lab)):
    sky = labels[image] == 0
    rows = np.nonzero(sky)[0]
    slope = np.corrcoef(rows, lightness[image][sky])[0, 1]
    grass = labels[image] == 1
    pairs = grass[:, :-1] & grass[:, 1:]
    energy = np.abs(np.diff(lightness[image], axis=1))[pairs].mean()
    predicted.append(1 if slope < 0 else 2 if energy < 2.8 else 0)
  np.testing.assert_array_equal(predicted, scene_ids)


def test_v2_lightness_does_not_reveal_the_class():
  lab, labels, _ = _v2_scenes(150)
  means = [lab[..., 0][labels == k].mean() for k in range(len(shapes.CLASSES))]
  assert max(means) - min(means) < 8.0
  assert all(40 < m < 70 for m in means)


def test_scene_one_hot():
  op = preprocess.parse('scene_one_hot(3)')
  hot = preprocess.apply(op, {'scene': np.int64(2)})['scene']
  np.testing.assert_array_equal(hot, [0, 0, 1])
  assert hot.dtype == np.float32
  soft = np.array([0.2, 0.5, 0.3], np.float64)
  out = preprocess.apply(op, {'scene': soft})['scene']
  np.testing.assert_allclose(out, soft)
  assert out.dtype == np.float32
  with pytest.raises(ValueError, match='scene_one_hot'):
    preprocess.apply(op, {'scene': np.zeros(365, np.float32)})
  with pytest.raises(ValueError, match='out of range'):
    preprocess.apply(op, {'scene': 3})
