"""PASCAL VOC 2012 with the SBD augmentation (10,582 train_aug / 1,449 val).

Papers 000, 003 and 004 train on it. Labels are the `SegmentationClassAug`
PNGs (grey values 0..20, 255 = boundary/ignore) that DeepLab popularised.
"""

import os

import tensorflow_datasets as tfds

from colorjax.datasets import base
from colorjax.datasets import classes

_LABEL_DIRS = ('SegmentationClassAug',)


class Voc2012Aug(base.SegmentationBuilder):
  """VOC2012 JPEGImages + SegmentationClassAug, train_aug and val splits."""

  VERSION = tfds.core.Version('1.0.0')
  CLASS_NAMES = classes.VOC
  IGNORE_LABEL = 255
  OFFICIAL_SPLIT_SIZES = {'train_aug': 10582, 'val': 1449}
  HOMEPAGE = 'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/'
  DESCRIPTION = 'PASCAL VOC 2012 segmentation, SBD-augmented (21 classes).'
  EXPECTED_LAYOUT = """\
  <manual_dir>/VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg ...
  <manual_dir>/VOCdevkit/VOC2012/SegmentationClassAug/2007_000032.png ...
      (or <manual_dir>/SegmentationClassAug/)
  <manual_dir>/VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt
  train_aug list, first found of:
  <manual_dir>/VOCdevkit/VOC2012/ImageSets/SegmentationAug/train_aug.txt
  <manual_dir>/VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt
  <manual_dir>/list/train_aug.txt  (DeepLab format: '/JPEGImages/x.jpg /SegmentationClassAug/x.png')"""
  WHERE_TO_GET = (
      'VOCtrainval_11-May-2012.tar from the PASCAL VOC site; '
      'SegmentationClassAug.zip and train_aug.txt as distributed with '
      'DeepLab (converted from the SBD release of Hariharan et al. 2011).')

  def _find_root(self, manual_dir):
    root = base.first_existing([
        os.path.join(manual_dir, 'VOCdevkit', 'VOC2012'),
        os.path.join(manual_dir, 'VOC2012')])
    if root is None or not os.path.isdir(os.path.join(root, 'JPEGImages')):
      raise self._missing(f'no VOCdevkit/VOC2012/JPEGImages in {manual_dir}')
    self._manual_root = manual_dir
    return root

  def _label_dir(self, root):
    label_dir = base.first_existing(
        [os.path.join(root, d) for d in _LABEL_DIRS] +
        [os.path.join(self._manual_root, d) for d in _LABEL_DIRS])
    if label_dir is None:
      raise self._missing(f'no SegmentationClassAug directory in {root} or '
                          f'{self._manual_root}')
    return label_dir

  def _split_examples(self, root):
    label_dir = self._label_dir(root)
    lists = {
        'train_aug': [
            os.path.join(root, 'ImageSets', 'SegmentationAug',
                         'train_aug.txt'),
            os.path.join(root, 'ImageSets', 'Segmentation', 'train_aug.txt'),
            os.path.join(self._manual_root, 'list', 'train_aug.txt')],
        'val': [os.path.join(root, 'ImageSets', 'Segmentation', 'val.txt'),
                os.path.join(self._manual_root, 'list', 'val.txt')],
    }
    splits = {}
    for split, candidates in lists.items():
      list_file = base.first_existing(candidates)
      if list_file is None:
        raise self._missing(f'no {split} list; looked for {candidates}')
      splits[split] = [
          (i, os.path.join(root, 'JPEGImages', i + '.jpg'),
           os.path.join(label_dir, i + '.png'))
          for i in base.read_id_list(list_file)]
    return splits
