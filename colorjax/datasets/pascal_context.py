"""PASCAL-Context, 59 classes + background, on VOC2010 images (paper 002).

Two common layouts are read:
  * converted PNGs (what mmsegmentation / the Detail API produce):
    VOC2010/SegmentationClassContext/<id>.png with 0 = background and
    1..59 the classes, and ImageSets/SegmentationContext/{train,val}.txt;
  * the original release (trainval.tar.gz): trainval/<id>.mat with the
    full 459-label `LabelMap`, labels.txt and 59_labels.txt, mapped to the
    59 classes by name (every other label becomes background 0). Splits
    then come from VOC2010 ImageSets/Main/{train,val}.txt.
4,998 train and 5,105 val images (10,103 trainval, as paper 002 says).
"""

import os
import re

import numpy as np
import tensorflow_datasets as tfds

from colorjax.datasets import base
from colorjax.datasets import classes
from colorjax.datasets import imaging


def read_label_names(path):
  """'id: name' lines -> {id: name}."""
  names = {}
  with open(path) as f:
    for line in f:
      match = re.match(r'\s*(\d+)\s*:\s*(.+?)\s*$', line)
      if match:
        names[int(match.group(1))] = match.group(2)
  return names


def full_to_59_lookup(labels_txt, labels_59_txt):
  """uint8 lookup table [max_full_id + 1]: full label id -> 0..59."""
  full = read_label_names(labels_txt)
  context = read_label_names(labels_59_txt)
  # The 59 classes are numbered 1..59 in the order 59_labels.txt lists them.
  by_name = {context[k]: index for index, k in enumerate(sorted(context), 1)}
  lookup = np.zeros(max(full) + 1, np.uint8)
  for full_id, name in full.items():
    lookup[full_id] = by_name.get(name, 0)
  return lookup


class PascalContext(base.SegmentationBuilder):
  """PASCAL-Context 59-class label maps (train / val)."""

  VERSION = tfds.core.Version('1.0.0')
  CLASS_NAMES = classes.PASCAL_CONTEXT
  IGNORE_LABEL = None    # 0 = background, a class for paper 002's maps.
  OFFICIAL_SPLIT_SIZES = {'train': 4998, 'val': 5105}
  HOMEPAGE = 'https://cs.stanford.edu/~roozbeh/pascal-context/'
  DESCRIPTION = 'PASCAL-Context (59 most frequent classes + background).'
  EXPECTED_LAYOUT = """\
  <manual_dir>/VOCdevkit/VOC2010/JPEGImages/2008_000002.jpg ...
  either (converted PNGs, 0 = background, 1..59):
  <manual_dir>/VOCdevkit/VOC2010/SegmentationClassContext/2008_000002.png ...
  <manual_dir>/VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt
  or (original release):
  <manual_dir>/trainval/2008_000002.mat ...  (LabelMap, 459 labels)
  <manual_dir>/labels.txt, <manual_dir>/59_labels.txt
  <manual_dir>/VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt"""
  WHERE_TO_GET = (
      'VOCtrainval_03-May-2010.tar from the PASCAL VOC site; trainval.tar.gz, '
      'labels.txt and 59_labels.txt from the PASCAL-Context page (or convert '
      'with the Detail API / mmsegmentation to SegmentationClassContext).')

  def _find_root(self, manual_dir):
    root = base.first_existing([
        os.path.join(manual_dir, 'VOCdevkit', 'VOC2010'),
        os.path.join(manual_dir, 'VOC2010')])
    if root is None or not os.path.isdir(os.path.join(root, 'JPEGImages')):
      raise self._missing(f'no VOCdevkit/VOC2010/JPEGImages in {manual_dir}')
    self._manual_root = manual_dir
    return root

  def _split_examples(self, root):
    png_dir = os.path.join(root, 'SegmentationClassContext')
    if os.path.isdir(png_dir):
      list_dir = os.path.join(root, 'ImageSets', 'SegmentationContext')
      label_of = lambda i: os.path.join(png_dir, i + '.png')
    else:
      mat_dir = os.path.join(self._manual_root, 'trainval')
      names = [os.path.join(self._manual_root, n)
               for n in ('labels.txt', '59_labels.txt')]
      if not os.path.isdir(mat_dir) or not all(map(os.path.exists, names)):
        raise self._missing('neither VOC2010/SegmentationClassContext nor '
                            'trainval/*.mat + labels.txt + 59_labels.txt')
      lookup = full_to_59_lookup(*names)
      list_dir = os.path.join(root, 'ImageSets', 'Main')
      label_of = lambda i: _MatLabels(os.path.join(mat_dir, i + '.mat'),
                                      lookup)
    splits = {}
    for split in ('train', 'val'):
      list_file = os.path.join(list_dir, split + '.txt')
      if not os.path.exists(list_file):
        raise self._missing(f'{list_file} not found')
      splits[split] = [(i, os.path.join(root, 'JPEGImages', i + '.jpg'),
                        label_of(i)) for i in base.read_id_list(list_file)]
    return splits


class _MatLabels:
  """Callable label source: loads a LabelMap .mat and maps it to 0..59."""

  def __init__(self, path, lookup):
    self.path = path
    self.lookup = lookup

  def __call__(self):
    import scipy.io  # pylint: disable=g-import-not-at-top
    try:
      label_map = scipy.io.loadmat(self.path)['LabelMap']
    except (OSError, ValueError, KeyError) as e:
      raise imaging.DecodeError('bad_mat', str(e)) from e
    label_map = np.asarray(label_map, np.int64)
    if label_map.min() < 0 or label_map.max() >= len(self.lookup):
      raise imaging.DecodeError('bad_label_value', self.path)
    return self.lookup[label_map]
