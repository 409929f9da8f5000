"""COCO-Stuff 164k: COCO 2017 images + stuffthingmaps_trainval2017 PNGs.

PNG value v is label id v+1 of the cocostuff labels.txt (182 slots: 91 thing
ids incl. 11 never annotated, 91 stuff), 255 = unlabeled. Paper 001 uses
all 182 + unlabeled (183 outputs).

The 10k version (paper 004): cocostuff-10k-v1.1 lists its 9,000 train and
1,000 test images in imageLists/{train,test}.txt as COCO_train2014_<id>
names. Its images are a subset of COCO 2017 and the 164k maps extend the 10k
annotations, so build the 10k splits with the `10k` builder config:
put the two list files in <manual_dir>/imageLists/ next to the 164k
layout; each listed id is then taken from train2017/ or val2017/.
"""

import dataclasses
import os
import re

import tensorflow_datasets as tfds

from colorjax.datasets import base
from colorjax.datasets import classes


@dataclasses.dataclass
class CocoStuffConfig(tfds.core.BuilderConfig):
  ten_k: bool = False


class CocoStuff(base.SegmentationBuilder):
  """COCO-Stuff (164k splits train/val; `10k` config: train/test)."""

  VERSION = tfds.core.Version('1.0.0')
  BUILDER_CONFIGS = [
      CocoStuffConfig(name='164k', description='train2017 / val2017'),
      CocoStuffConfig(name='10k', ten_k=True,
                      description='cocostuff-10k train (9k) / test (1k)'),
  ]
  CLASS_NAMES = classes.COCO_STUFF
  IGNORE_LABEL = 255
  HOMEPAGE = 'https://github.com/nightrome/cocostuff'
  DESCRIPTION = 'COCO-Stuff: 80 thing + 91 stuff classes, pixel labels.'
  EXPECTED_LAYOUT = """\
  <manual_dir>/images/train2017/000000000009.jpg ...
  <manual_dir>/images/val2017/000000000139.jpg ...
  <manual_dir>/annotations/train2017/000000000009.png ...
  <manual_dir>/annotations/val2017/000000000139.png ...
  (10k config also:) <manual_dir>/imageLists/train.txt, imageLists/test.txt"""
  WHERE_TO_GET = (
      'train2017.zip and val2017.zip from cocodataset.org; '
      'stuffthingmaps_trainval2017.zip from github.com/nightrome/cocostuff '
      '(unzip into annotations/); for 10k: imageLists/ of '
      'cocostuff-10k-v1.1.zip from the same repository.')

  @property
  def OFFICIAL_SPLIT_SIZES(self):  # pylint: disable=invalid-name
    if self.builder_config.ten_k:
      return {'train': 9000, 'test': 1000}
    return {'train': 118287, 'val': 5000}

  def _find_root(self, manual_dir):
    for sub in ('images/train2017', 'images/val2017', 'annotations/train2017',
                'annotations/val2017'):
      if not os.path.isdir(os.path.join(manual_dir, sub)):
        raise self._missing(f'{sub} not found in {manual_dir}')
    return manual_dir

  def _split_examples(self, root):
    by_split = {
        split: base.pair_by_stem(os.path.join(root, 'images', split),
                                 os.path.join(root, 'annotations', split))
        for split in ('train2017', 'val2017')}
    if not self.builder_config.ten_k:
      return {'train': by_split['train2017'], 'val': by_split['val2017']}
    by_id = {example[0]: example
             for examples in by_split.values() for example in examples}
    splits = {}
    for split in ('train', 'test'):
      list_file = os.path.join(root, 'imageLists', split + '.txt')
      if not os.path.exists(list_file):
        raise self._missing(f'{list_file} not found (10k config)')
      ids = [re.sub(r'^COCO_(train|val)2014_', '', i)
             for i in base.read_id_list(list_file)]
      missing = [i for i in ids if i not in by_id]
      if missing:
        raise self._missing(f'{len(missing)} ids of {list_file} have no '
                            f'2017 image+map, e.g. {missing[:3]}')
      splits[split] = [by_id[i] for i in ids]
    return splits
