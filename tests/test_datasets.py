"""Builders on fixture trees in each dataset's real layout, read back via
`tfds.data_source` (no TensorFlow installed)."""

import io
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
from scipy import io as scipy_io
import tensorflow_datasets as tfds

import colorjax.datasets  # registers the builders  # pylint: disable=unused-import
from colorjax.data import pipeline
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


def _raw_images(data_dir, name, split):
  """{id: the stored image bytes}, not decoded."""
  source = tfds.data_source(name, split=split, data_dir=data_dir,
                            decoders={'image': tfds.decode.SkipDecoding()})
  return {source[i]['id'].decode(): source[i]['image']
          for i in range(len(source))}


def test_voc_clean_jpegs_are_stored_byte_identical(tmp_path, rng):
  tree = fixtures.make_voc2012_aug(tmp_path / 'voc', rng, num_train=2,
                                   num_val=2, list_style='deeplab')
  # An RGB PNG behind a .jpg name is stored as it is too.
  png_id = tree['train_aug'][1]
  images = tmp_path / 'voc' / 'VOCdevkit' / 'VOC2012' / 'JPEGImages'
  Image.fromarray(rng.integers(0, 256, (24, 32, 3)).astype(np.uint8)).save(
      images / f'{png_id}.jpg', format='PNG')
  _, data_dir = _build(tmp_path, 'voc2012_aug', tmp_path / 'voc')
  for split in ('train_aug', 'val'):
    stored = _raw_images(data_dir, 'voc2012_aug', split)
    assert sorted(stored) == sorted(tree[split])
    for example_id, data in stored.items():
      assert isinstance(data, bytes)
      assert data == (images / f'{example_id}.jpg').read_bytes(), example_id


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
  # Paper 002's trainval, as its config names it, through the pipeline.
  import semanticdriven  # pylint: disable=g-import-not-at-top
  trainval = pipeline.data_source(
      'pascal_context', semanticdriven.get_config('colorization').data
      .train_split, data_dir)
  assert len(trainval) == len(tree['train']) + len(tree['val'])


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


def test_cmyk_and_rgba_images_keep_their_colours(tmp_path, rng):
  """Stored pixels equal the colours the files were made from: CMYK JPEG
  converted back to RGB, RGBA composited on white (the documented choice:
  alpha 0 is white, alpha 255 the colour, in between the 'over' blend)."""
  tree = fixtures.make_ade20k(tmp_path / 'ade', rng, num_train=3, num_val=1)
  images = tmp_path / 'ade' / 'ADEChallengeData2016' / 'images' / 'training'
  cmyk_id, rgba_id, clean_id = tree['train']
  blocks = rng.integers(0, 256, (3, 4, 3))   # flat 8x8 blocks: JPEG-exact
  cmyk_source = np.repeat(np.repeat(blocks, 8, 0), 8, 1).astype(np.uint8)
  Image.fromarray(cmyk_source).convert('CMYK').save(
      images / f'{cmyk_id}.jpg', format='JPEG', quality=95)
  rgba_source = rng.integers(0, 256, (24, 32, 3)).astype(np.uint8)
  alpha = np.zeros((24, 32), np.uint8)
  alpha[:, 10:20] = 255
  alpha[:, 20:] = 128
  Image.fromarray(np.dstack([rgba_source, alpha]), 'RGBA').save(
      images / f'{rgba_id}.jpg', format='PNG')
  _, data_dir = _build(tmp_path, 'ade20k', tmp_path / 'ade')
  source = tfds.data_source('ade20k', split='train', data_dir=data_dir)
  decoded = {source[i]['id'].decode(): source[i]['image']
             for i in range(len(source))}
  np.testing.assert_allclose(decoded[cmyk_id], cmyk_source, atol=2)
  rgba = decoded[rgba_id].astype(np.float64)
  np.testing.assert_array_equal(rgba[:, :10], 255.0)
  np.testing.assert_array_equal(rgba[:, 10:20], rgba_source[:, 10:20])
  blend = (rgba_source[:, 20:] * 128.0 + 255.0 * 127.0) / 255.0
  np.testing.assert_allclose(rgba[:, 20:], blend, atol=1.0)
  # Those two are re-encoded (losslessly, PNG); the clean JPEG is not.
  raw = _raw_images(data_dir, 'ade20k', 'train')
  assert raw[cmyk_id].startswith(b'\x89PNG') and raw[rgba_id].startswith(
      b'\x89PNG')
  assert raw[clean_id] == (images / f'{clean_id}.jpg').read_bytes()


def test_every_skip_reason_is_counted(tmp_path, rng, monkeypatch):
  """One training file per reason; the others are stored, the counts are in
  the builder's metadata and in the saved dataset info."""
  tree = fixtures.make_voc2012_aug(tmp_path / 'voc', rng, num_train=7,
                                   num_val=1)
  voc = tmp_path / 'voc' / 'VOCdevkit' / 'VOC2012'
  ids = tree['train_aug']
  image = lambda i: voc / 'JPEGImages' / f'{ids[i]}.jpg'
  label = lambda i: voc / 'SegmentationClassAug' / f'{ids[i]}.png'
  fixtures.write_odd_image(str(image(0)), 'truncated', rng, 24, 32)
  Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(label(1))
  Image.fromarray(np.full((24, 32), 300, np.uint16)).save(label(2))
  fixtures.save_label_png(str(label(3)), np.zeros((24, 31), np.uint8))
  os.remove(label(4))
  # A zero-sized image: PIL refuses to write or open one (such files are
  # 'undecodable'), so the decoder is handed one for this file's bytes.
  empty_bytes = image(5).read_bytes()
  open_fully = imaging._open_fully  # pylint: disable=protected-access
  monkeypatch.setattr(
      imaging, '_open_fully', lambda data: Image.new('RGB', (0, 24))
      if data == empty_bytes else open_fully(data))
  expected = {'undecodable': 1, 'bad_label_mode': 1, 'bad_label_value': 1,
              'size_mismatch': 1, 'FileNotFoundError': 1, 'empty': 1}
  builder, data_dir = _build(tmp_path, 'voc2012_aug', tmp_path / 'voc')
  assert base.skipped_counts(builder) == {'train_aug': expected}
  assert tfds.builder('voc2012_aug', data_dir=data_dir).info.metadata[
      'skipped'] == {'train_aug': expected}
  source = tfds.data_source('voc2012_aug', split='train_aug',
                            data_dir=data_dir)
  assert [source[i]['id'].decode() for i in range(len(source))] == [ids[6]]
  np.testing.assert_array_equal(source[0]['segmentation'][..., 0],
                                tree['maps'][ids[6]])


def test_pascal_context_mat_skip_reasons(tmp_path, rng):
  tree = fixtures.make_pascal_context(tmp_path / 'ctx', rng, num_train=4,
                                      style='mat')
  mats = tmp_path / 'ctx' / 'trainval'
  ids = tree['train']
  (mats / f'{ids[0]}.mat').write_bytes(b'not a mat file at all' * 20)
  scipy_io.savemat(str(mats / f'{ids[1]}.mat'),
                   {'Other': np.ones((24, 32), np.uint16)})
  scipy_io.savemat(str(mats / f'{ids[2]}.mat'),
                   {'LabelMap': np.full((24, 32), 99, np.uint16)})
  builder, data_dir = _build(tmp_path, 'pascal_context', tmp_path / 'ctx')
  assert base.skipped_counts(builder) == {
      'train': {'bad_mat': 2, 'bad_label_value': 1}}
  source = tfds.data_source('pascal_context', split='train',
                            data_dir=data_dir)
  assert len(source) == 1 and source[0]['id'].decode() == ids[3]


def _remove(*parts):
  def mutate(root):
    path = os.path.join(root, *parts)
    if os.path.isdir(path):
      shutil.rmtree(path)
    else:
      os.remove(path)
  return mutate


def _write(text, *parts):
  def mutate(root):
    with open(os.path.join(root, *parts), 'w') as f:
      f.write(text)
  return mutate


def _empty_dir(root):
  shutil.rmtree(root)
  os.makedirs(root)


def _empty_folder(*parts):
  def mutate(root):
    folder = os.path.join(root, *parts)
    for name in os.listdir(folder):
      os.remove(os.path.join(folder, name))
  return mutate


VOC = ('voc2012_aug', fixtures.make_voc2012_aug)
COCO = ('coco_stuff/164k', fixtures.make_coco_stuff)
COCO_10K = ('coco_stuff/10k', fixtures.make_coco_stuff, dict(ten_k_lists=True))
ADE = ('ade20k', fixtures.make_ade20k)
CONTEXT = ('pascal_context', fixtures.make_pascal_context)
CONTEXT_MAT = ('pascal_context', fixtures.make_pascal_context,
               dict(style='mat'))
VOC_ROOT = ('VOCdevkit', 'VOC2012')
CONTEXT_ROOT = ('VOCdevkit', 'VOC2010')
MISSING_LAYOUTS = {
    'voc_empty_manual_dir': (VOC, _empty_dir, 'manual_dir is missing or empty'),
    'voc_no_images': (VOC, _remove(*VOC_ROOT, 'JPEGImages'),
                      'no VOCdevkit/VOC2012/JPEGImages'),
    'voc_no_labels': (VOC, _remove(*VOC_ROOT, 'SegmentationClassAug'),
                      'no SegmentationClassAug directory'),
    'voc_no_train_list': (VOC, _remove(*VOC_ROOT, 'ImageSets',
                                       'SegmentationAug'),
                          'no train_aug list'),
    'voc_no_val_list': (VOC, _remove(*VOC_ROOT, 'ImageSets', 'Segmentation',
                                     'val.txt'), 'no val list'),
    'voc_empty_val_list': (VOC, _write('', *VOC_ROOT, 'ImageSets',
                                       'Segmentation', 'val.txt'),
                           "split 'val' has no image/label pairs"),
    'coco_no_train_images': (COCO, _remove('images', 'train2017'),
                             'images/train2017 not found'),
    'coco_no_val_images': (COCO, _remove('images', 'val2017'),
                           'images/val2017 not found'),
    'coco_no_train_maps': (COCO, _remove('annotations', 'train2017'),
                           'annotations/train2017 not found'),
    'coco_no_val_maps': (COCO, _remove('annotations', 'val2017'),
                         'annotations/val2017 not found'),
    'coco_val_without_maps': (COCO, _empty_folder('annotations', 'val2017'),
                              "split 'val' has no image/label pairs"),
    'coco_10k_no_lists': (COCO_10K, _remove('imageLists'),
                          'imageLists/train.txt not found (10k config)'),
    'coco_10k_no_test_list': (COCO_10K, _remove('imageLists', 'test.txt'),
                              'imageLists/test.txt not found (10k config)'),
    'coco_10k_unknown_id': (COCO_10K, _write('COCO_train2014_000000123456\n',
                                             'imageLists', 'train.txt'),
                            'have no 2017 image+map'),
    'ade_no_train_images': (ADE, _remove('ADEChallengeData2016', 'images',
                                         'training'),
                            'ADEChallengeData2016/images/training not found'),
    'ade_no_val_images': (ADE, _remove('ADEChallengeData2016', 'images',
                                       'validation'),
                          'ADEChallengeData2016/images/validation not found'),
    'ade_no_train_maps': (ADE, _remove('ADEChallengeData2016', 'annotations',
                                       'training'),
                          'annotations/training not found'),
    'ade_no_val_maps': (ADE, _remove('ADEChallengeData2016', 'annotations',
                                     'validation'),
                        'annotations/validation not found'),
    'context_no_images': (CONTEXT, _remove(*CONTEXT_ROOT, 'JPEGImages'),
                          'no VOCdevkit/VOC2010/JPEGImages'),
    'context_no_labels': (CONTEXT, _remove(*CONTEXT_ROOT,
                                           'SegmentationClassContext'),
                          'neither VOC2010/SegmentationClassContext nor'),
    'context_no_list': (CONTEXT, _remove(*CONTEXT_ROOT, 'ImageSets',
                                         'SegmentationContext', 'val.txt'),
                        'SegmentationContext/val.txt not found'),
    'context_mat_no_names': (CONTEXT_MAT, _remove('59_labels.txt'),
                             'neither VOC2010/SegmentationClassContext nor'),
    'context_mat_no_mats': (CONTEXT_MAT, _remove('trainval'),
                            'neither VOC2010/SegmentationClassContext nor'),
    'context_mat_no_list': (CONTEXT_MAT, _remove(*CONTEXT_ROOT, 'ImageSets',
                                                 'Main', 'train.txt'),
                            'Main/train.txt not found'),
}


@pytest.mark.parametrize('case', sorted(MISSING_LAYOUTS))
def test_every_missing_layout_branch_is_a_clear_error(tmp_path, rng, case):
  """Each check of a builder's layout: a ManualDataError that names what is
  missing, the expected layout and where to get the data; nothing built."""
  (name, make, *kwargs), mutate, fragment = MISSING_LAYOUTS[case]
  root = str(tmp_path / 'data')
  make(root, rng, **(kwargs[0] if kwargs else {}))
  mutate(root)
  with pytest.raises(base.ManualDataError) as error:
    prepare.prepare(name, manual_dir=root, data_dir=str(tmp_path / 'tfds'))
  message = str(error.value)
  assert fragment in message, message
  assert 'Expected layout of manual_dir' in message
  assert 'Where to obtain it' in message
  assert not [f for _, _, files in os.walk(tmp_path / 'tfds') for f in files
              if 'array_record' in f]


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


def test_labelled_image_folders_in_their_published_layouts(tmp_path):
  """ImageNet val in wnid folders, Places365 val with places365_val.txt,
  ImageNet's LOC_val_solution.csv with LOC_synset_mapping.txt: each photo
  gets its class index as 'label'; an unlabelled photo is named."""
  from colorjax import errors  # pylint: disable=g-import-not-at-top
  from colorjax.data import image_folder  # pylint: disable=g-import-not-at-top
  pixel = np.zeros((9, 9, 3), np.uint8)
  wnids = ['n01440764', 'n01443537', 'n01484850']
  for k, wnid in enumerate(wnids):
    (tmp_path / 'imagenet' / wnid).mkdir(parents=True)
    Image.fromarray(pixel).save(tmp_path / 'imagenet' / wnid /
                                f'ILSVRC2012_val_0000000{k}.JPEG')
  source = image_folder.ImageFolderSource(str(tmp_path / 'imagenet'),
                                          labels='folders')
  assert [source[i]['label'] for i in range(3)] == [0, 1, 2]
  assert source[0]['label'].dtype == np.int32

  places = tmp_path / 'places'
  places.mkdir()
  for name in ('Places365_val_00000001.jpg', 'Places365_val_00000002.jpg'):
    Image.fromarray(pixel).save(places / name)
  (tmp_path / 'places365_val.txt').write_text(
      'Places365_val_00000001.jpg 165\nPlaces365_val_00000002.jpg 3\n')
  source = image_folder.ImageFolderSource(
      str(places), labels=str(tmp_path / 'places365_val.txt'))
  assert [source[i]['label'] for i in range(2)] == [165, 3]
  (tmp_path / 'short.txt').write_text('Places365_val_00000001.jpg 165\n')
  with pytest.raises(errors.ConfigError,
                     match='1 of 2 images .*Places365_val_00000002'):
    image_folder.ImageFolderSource(str(places),
                                   labels=str(tmp_path / 'short.txt'))

  flat = tmp_path / 'flat'
  flat.mkdir()
  for k in range(3):
    Image.fromarray(pixel).save(flat / f'ILSVRC2012_val_0000000{k}.JPEG')
  solution = tmp_path / 'loc' / 'LOC_val_solution.csv'
  solution.parent.mkdir()
  solution.write_text('ImageId,PredictionString\n' + ''.join(
      f'ILSVRC2012_val_0000000{k},{wnids[2 - k]} 1 2 3 4 {wnids[2 - k]} 5 6 '
      '7 8\n' for k in range(3)))
  with pytest.raises(errors.MissingFileError, match='LOC_synset_mapping'):
    image_folder.ImageFolderSource(str(flat), labels=str(solution))
  (solution.parent / 'LOC_synset_mapping.txt').write_text(''.join(
      f'{w} a class\n' for w in wnids))
  source = image_folder.ImageFolderSource(str(flat), labels=str(solution))
  assert [source[i]['label'] for i in range(3)] == [2, 1, 0]
