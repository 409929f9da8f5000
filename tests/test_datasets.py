"""Builders on fixture trees in each dataset's real layout, read back via
`tfds.data_source` (no TensorFlow installed)."""

import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

import colorjax.datasets  # registers the builders  # pylint: disable=unused-import
from colorjax.datasets import base
from colorjax.datasets import imaging
from colorjax.datasets import prepare
import fixtures


def _build(tmp_path, name, manual_dir):
  data_dir = str(tmp_path / 'tfds')
  builder = prepare.prepare(name, manual_dir=str(manual_dir),
                            data_dir=data_dir)
  return builder, data_dir


def _check_split(source, ids, maps, odd):
  """Labels are exact; image-level labels are the classes present."""
  kept = [i for i in ids if odd.get(i) != 'truncated']
  assert len(source) == len(kept)
  by_id = {}
  for index in range(len(source)):
    example = source[index]
    by_id[example['id'].decode()] = example
  assert sorted(by_id) == sorted(kept)
  for example_id, example in by_id.items():
    expected = maps[example_id]
    np.testing.assert_array_equal(example['segmentation'][..., 0], expected)
    assert example['image'].shape == expected.shape + (3,)
    assert example['image'].dtype == np.uint8
  return by_id


def test_voc2012_aug_from_fixture_tree(tmp_path, rng):
  tree = fixtures.make_voc2012_aug(tmp_path / 'voc', rng, odd_files=True)
  builder, data_dir = _build(tmp_path, 'voc2012_aug', tmp_path / 'voc')
  sources = tfds.data_source('voc2012_aug', data_dir=data_dir)
  assert set(sources) == {'train_aug', 'val'}
  train = _check_split(sources['train_aug'], tree['train_aug'], tree['maps'],
                       tree['odd'])
  _check_split(sources['val'], tree['val'], tree['maps'], {})
  # The truncated JPEG is skipped and counted, in the saved metadata too.
  assert base.skipped_counts(builder) == {'train_aug': {'undecodable': 1}}
  reloaded = tfds.builder('voc2012_aug', data_dir=data_dir)
  assert reloaded.info.metadata['skipped'] == {
      'train_aug': {'undecodable': 1}}
  # Image-level labels: classes present except the 255 ignore value.
  for example_id, example in train.items():
    present = set(np.unique(tree['maps'][example_id])) - {255}
    assert set(example['labels']) == present


def test_voc_clean_jpegs_are_stored_byte_identical(tmp_path, rng):
  tree = fixtures.make_voc2012_aug(tmp_path / 'voc', rng, num_train=2,
                                   num_val=1, list_style='deeplab')
  _, data_dir = _build(tmp_path, 'voc2012_aug', tmp_path / 'voc')
  source = tfds.data_source('voc2012_aug', split='val', data_dir=data_dir)
  path = os.path.join(tmp_path, 'voc', 'VOCdevkit', 'VOC2012', 'JPEGImages',
                      tree['val'][0] + '.jpg')
  np.testing.assert_array_equal(source[0]['image'],
                                np.asarray(Image.open(path).convert('RGB')))


def test_coco_stuff_164k_and_10k(tmp_path, rng):
  tree = fixtures.make_coco_stuff(tmp_path / 'coco', rng, odd_files=True,
                                  ten_k_lists=True)
  builder, data_dir = _build(tmp_path, 'coco_stuff/164k', tmp_path / 'coco')
  sources = tfds.data_source('coco_stuff/164k', data_dir=data_dir)
  _check_split(sources['train'], tree['train'], tree['maps'], tree['odd'])
  _check_split(sources['val'], tree['val'], tree['maps'], {})
  assert builder.info.features['labels'].feature.num_classes == 182
  _, data_dir = _build(tmp_path, 'coco_stuff/10k', tmp_path / 'coco')
  ten_k = tfds.data_source('coco_stuff/10k', data_dir=data_dir)
  assert len(ten_k['test']) == len(tree['val']) - 1
  # 10k train: 3 train2017 ids (one of them the truncated file) + 1 val id.
  assert len(ten_k['train']) == 3


def test_ade20k_from_fixture_tree(tmp_path, rng):
  tree = fixtures.make_ade20k(tmp_path / 'ade', rng, odd_files=True)
  builder, data_dir = _build(tmp_path, 'ade20k', tmp_path / 'ade')
  sources = tfds.data_source('ade20k', data_dir=data_dir)
  by_id = _check_split(sources['train'], tree['train'], tree['maps'],
                       tree['odd'])
  _check_split(sources['validation'], tree['validation'], tree['maps'], {})
  assert builder.info.metadata['num_classes'] == 151
  # 0 ('other') is a label value of its own in ADE20K.
  example_id = next(iter(by_id))
  assert set(by_id[example_id]['labels']) == set(
      np.unique(tree['maps'][example_id]))


@pytest.mark.parametrize('style', ['png', 'mat'])
def test_pascal_context_layouts(tmp_path, rng, style):
  tree = fixtures.make_pascal_context(tmp_path / 'ctx', rng, style=style)
  _, data_dir = _build(tmp_path, 'pascal_context', tmp_path / 'ctx')
  sources = tfds.data_source('pascal_context', data_dir=data_dir)
  _check_split(sources['train'], tree['train'], tree['maps'], {})
  _check_split(sources['val'], tree['val'], tree['maps'], {})


def test_odd_images_decode_to_rgb(tmp_path, rng):
  for kind in fixtures.ODD_KINDS:
    path = str(tmp_path / f'{kind}.jpg')
    fixtures.write_odd_image(path, kind, rng, 10, 12)
    if kind == 'truncated':
      with pytest.raises(imaging.DecodeError):
        imaging.decode_image(path)
      continue
    decoded = imaging.decode_image(path)
    assert decoded.array.shape == (10, 12, 3) and decoded.array.dtype == np.uint8
    # What is stored decodes to exactly what was decoded.
    again = np.asarray(Image.open(io.BytesIO(decoded.encoded)).convert('RGB'))
    np.testing.assert_array_equal(again, decoded.array)
    if kind in ('gray', 'gray16'):
      assert np.all(decoded.array[..., 0] == decoded.array[..., 2])
  gray16 = np.array([[0, 65535], [257, 32768]], np.uint16)
  Image.fromarray(gray16).save(tmp_path / 'g16.png')
  out = imaging.decode_image(str(tmp_path / 'g16.png')).array[..., 0]
  np.testing.assert_array_equal(out, [[0, 255], [1, 128]])


def test_label_maps_rejected_when_colour_coded(tmp_path):
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / 'rgb.png')
  with pytest.raises(imaging.DecodeError, match='bad_label_mode'):
    imaging.decode_label_map(str(tmp_path / 'rgb.png'))


def test_missing_manual_dir_names_layout_and_source(tmp_path):
  with pytest.raises(base.ManualDataError) as error:
    prepare.prepare('voc2012_aug', manual_dir=str(tmp_path / 'nowhere'),
                    data_dir=str(tmp_path / 'tfds'))
  message = str(error.value)
  assert 'SegmentationClassAug' in message and 'VOCtrainval' in message
  assert ':demo' in message


@pytest.mark.parametrize('name', ['coco_stuff', 'ade20k', 'pascal_context',
                                  'voc2012_aug'])
def test_wrong_layout_is_one_clear_error(tmp_path, name):
  wrong = tmp_path / 'wrong'
  (wrong / 'some_other_folder').mkdir(parents=True)
  (wrong / 'some_other_folder' / 'x.jpg').write_bytes(b'')
  with pytest.raises(base.ManualDataError) as error:
    prepare.prepare(name, manual_dir=str(wrong),
                    data_dir=str(tmp_path / 'tfds'))
  assert 'Expected layout' in str(error.value)
  assert 'Where to obtain it' in str(error.value)


def test_prepare_cli_without_tensorflow(tmp_path, rng):
  fixtures.make_ade20k(tmp_path / 'ade', rng, num_train=2, num_val=1)
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.datasets.prepare', '--dataset=ade20k',
       f'--manual_dir={tmp_path / "ade"}', f'--data_dir={tmp_path / "tfds"}'],
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert '"train": 2' in result.stdout
  check = subprocess.run(
      [sys.executable, '-c',
       'import sys, tensorflow_datasets as tfds, colorjax.datasets;'
       f's = tfds.data_source("ade20k", split="train", data_dir="{tmp_path / "tfds"}");'
       's[0]; assert "tensorflow" not in sys.modules, "TF was imported"'],
      capture_output=True, text=True, timeout=300, check=False)
  assert check.returncode == 0, check.stderr[-2000:]
