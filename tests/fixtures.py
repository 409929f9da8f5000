"""Small dataset trees in the real on-disk layouts, written with real files.

Every image is a real JPEG or PNG; label maps are palette or greyscale PNGs
as each dataset ships them. `odd_files=True` adds the awkward files real
collections contain: a truncated JPEG, a CMYK JPEG, an RGBA PNG, a 16-bit
greyscale PNG and a greyscale JPEG.
"""

import io
import os
from typing import Dict, List

import numpy as np
from PIL import Image

VOC_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (768 - 12)


def _makedirs(*parts):
  path = os.path.join(*parts)
  os.makedirs(path, exist_ok=True)
  return path


def random_scene(rng, height, width, num_classes, ignore=None):
  """An RGB image and a blocky label map whose blocks have distinct colours."""
  labels = np.zeros((height, width), np.uint8)
  image = np.zeros((height, width, 3), np.uint8)
  for _ in range(4):
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    bottom, right = top + rng.integers(4, height // 2), left + rng.integers(
        4, width // 2)
    labels[top:bottom, left:right] = rng.integers(0, num_classes)
  if ignore is not None:
    labels[0, :] = ignore
  palette = rng.integers(0, 256, (256, 3))
  image[:] = palette[labels]
  return image, labels


def save_jpeg(path, image, **kwargs):
  Image.fromarray(image).save(path, format='JPEG', quality=95, **kwargs)


def save_label_png(path, labels, palette=False):
  if palette:   # indices + colour table, as VOC's SegmentationClass PNGs
    image = Image.frombytes('P', labels.shape[::-1], labels.tobytes())
    image.putpalette(VOC_PALETTE)
  else:
    image = Image.fromarray(labels)
  image.save(path, format='PNG')


def write_odd_image(path, kind, rng, height, width):
  """Writes one awkward file at `path` (extension as the dataset expects)."""
  base = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
  if kind == 'truncated':
    buffer = io.BytesIO()
    Image.fromarray(base).save(buffer, format='JPEG', quality=95)
    with open(path, 'wb') as f:
      f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
  elif kind == 'cmyk':
    Image.fromarray(base).convert('CMYK').save(path, format='JPEG')
  elif kind == 'rgba':      # a PNG behind a .jpg name, as found in the wild
    rgba = np.concatenate([base, rng.integers(0, 256, (height, width, 1))
                           .astype(np.uint8)], -1)
    Image.fromarray(rgba, 'RGBA').save(path, format='PNG')
  elif kind == 'gray16':
    gray = rng.integers(0, 65536, (height, width)).astype(np.uint16)
    Image.fromarray(gray).save(path, format='PNG')
  elif kind == 'gray':
    Image.fromarray(base[..., 0]).save(path, format='JPEG')
  else:
    raise ValueError(kind)


ODD_KINDS = ('truncated', 'cmyk', 'rgba', 'gray16', 'gray')


def _write_pairs(rng, ids, image_dir, label_dir, num_classes, ignore,
                 palette, odd: Dict[str, str], size=(24, 32)):
  written = {}
  for example_id in ids:
    image, labels = random_scene(rng, *size, num_classes, ignore)
    image_path = os.path.join(image_dir, example_id + '.jpg')
    if example_id in odd:
      write_odd_image(image_path, odd[example_id], rng, *size)
    else:
      save_jpeg(image_path, image)
    save_label_png(os.path.join(label_dir, example_id + '.png'), labels,
                   palette)
    written[example_id] = labels
  return written


def _odd_assignment(ids: List[str], odd_files: bool) -> Dict[str, str]:
  return dict(zip(ids, ODD_KINDS)) if odd_files else {}


def make_voc2012_aug(root, rng, num_train=6, num_val=3, odd_files=False,
                     list_style='imagesets'):
  voc = _makedirs(root, 'VOCdevkit', 'VOC2012')
  images = _makedirs(voc, 'JPEGImages')
  labels = _makedirs(voc, 'SegmentationClassAug')
  train = [f'2008_{i:06d}' for i in range(num_train)]
  val = [f'2011_{i:06d}' for i in range(num_val)]
  odd = _odd_assignment(train, odd_files)
  maps = _write_pairs(rng, train + val, images, labels, 21, 255, True, odd)
  seg_sets = _makedirs(voc, 'ImageSets', 'Segmentation')
  with open(os.path.join(seg_sets, 'val.txt'), 'w') as f:
    f.write('\n'.join(val) + '\n')
  if list_style == 'deeplab':
    path = os.path.join(_makedirs(root, 'list'), 'train_aug.txt')
    lines = [f'/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png'
             for i in train]
  else:
    path = os.path.join(_makedirs(voc, 'ImageSets', 'SegmentationAug'),
                        'train_aug.txt')
    lines = train
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return {'train_aug': train, 'val': val, 'maps': maps, 'odd': odd}


def make_coco_stuff(root, rng, num_train=5, num_val=3, odd_files=False,
                    ten_k_lists=False):
  ids = {'train2017': [f'{i * 7 + 9:012d}' for i in range(num_train)],
         'val2017': [f'{i * 11 + 139:012d}' for i in range(num_val)]}
  maps = {}
  odd = _odd_assignment(ids['train2017'], odd_files)
  for split, split_ids in ids.items():
    images = _makedirs(root, 'images', split)
    labels = _makedirs(root, 'annotations', split)
    maps.update(_write_pairs(rng, split_ids, images, labels, 182, 255, False,
                             odd))
  # An image without a map (COCO has a few) is not part of any split.
  save_jpeg(os.path.join(root, 'images', 'train2017', '000000999999.jpg'),
            np.zeros((8, 8, 3), np.uint8))
  if ten_k_lists:
    lists = _makedirs(root, 'imageLists')
    with open(os.path.join(lists, 'train.txt'), 'w') as f:
      f.write('\n'.join('COCO_train2014_' + i for i in
                        ids['train2017'][:3] + ids['val2017'][:1]) + '\n')
    with open(os.path.join(lists, 'test.txt'), 'w') as f:
      f.write('\n'.join('COCO_train2014_' + i for i in
                        ids['val2017'][1:]) + '\n')
  return {'train': ids['train2017'], 'val': ids['val2017'], 'maps': maps,
          'odd': odd}


def make_ade20k(root, rng, num_train=5, num_val=3, odd_files=False):
  base = os.path.join(root, 'ADEChallengeData2016')
  ids = {'training': [f'ADE_train_{i + 1:08d}' for i in range(num_train)],
         'validation': [f'ADE_val_{i + 1:08d}' for i in range(num_val)]}
  maps = {}
  odd = _odd_assignment(ids['training'], odd_files)
  for folder, split_ids in ids.items():
    images = _makedirs(base, 'images', folder)
    labels = _makedirs(base, 'annotations', folder)
    maps.update(_write_pairs(rng, split_ids, images, labels, 151, None,
                             False, odd))
  return {'train': ids['training'], 'validation': ids['validation'],
          'maps': maps, 'odd': odd}


def make_pascal_context(root, rng, num_train=4, num_val=3, style='png'):
  """style 'png': converted maps; 'mat': the original 459-label release."""
  voc = _makedirs(root, 'VOCdevkit', 'VOC2010')
  images = _makedirs(voc, 'JPEGImages')
  train = [f'2008_{i:06d}' for i in range(num_train)]
  val = [f'2010_{i:06d}' for i in range(num_val)]
  maps = {}
  if style == 'png':
    labels_dir = _makedirs(voc, 'SegmentationClassContext')
    maps = _write_pairs(rng, train + val, images, labels_dir, 60, None, False,
                        {})
    lists = _makedirs(voc, 'ImageSets', 'SegmentationContext')
  else:
    import scipy.io  # pylint: disable=g-import-not-at-top
    mat_dir = _makedirs(root, 'trainval')
    # A miniature label space: full ids 1..8, of which 3 are in the 59.
    full_names = {1: 'accordion', 2: 'aeroplane', 3: 'air conditioner',
                  4: 'antenna', 5: 'bag', 6: 'balloon', 7: 'sky', 8: 'zebra'}
    context_names = {2: 'aeroplane', 5: 'bag', 7: 'sky'}
    with open(os.path.join(root, 'labels.txt'), 'w') as f:
      f.write(''.join(f'{k}: {v}\n' for k, v in full_names.items()))
    with open(os.path.join(root, '59_labels.txt'), 'w') as f:
      f.write(''.join(f'{k}: {v}\n' for k, v in context_names.items()))
    to_59 = np.zeros(9, np.uint8)
    to_59[2], to_59[5], to_59[7] = 1, 2, 3
    for example_id in train + val:
      image, full = random_scene(rng, 24, 32, 9)
      full = np.maximum(full, 1)
      save_jpeg(os.path.join(images, example_id + '.jpg'), image)
      scipy.io.savemat(os.path.join(mat_dir, example_id + '.mat'),
                       {'LabelMap': full.astype(np.uint16)})
      maps[example_id] = to_59[full]
    lists = _makedirs(voc, 'ImageSets', 'Main')
  for name, split_ids in (('train', train), ('val', val)):
    with open(os.path.join(lists, name + '.txt'), 'w') as f:
      f.write('\n'.join(split_ids) + '\n')
  return {'train': train, 'val': val, 'maps': maps, 'odd': {}}
