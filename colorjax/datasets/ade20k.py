"""ADE20K as released for the scene-parsing challenge (ADEChallengeData2016).

150 classes, label 0 = 'other' (not annotated); 20,210 training and 2,000
validation images. Paper 000 trains on it as its second dataset.
"""

import os

import tensorflow_datasets as tfds

from colorjax.datasets import base
from colorjax.datasets import classes


class Ade20k(base.SegmentationBuilder):
  """ADEChallengeData2016 images/ + annotations/ (training, validation)."""

  VERSION = tfds.core.Version('1.0.0')
  CLASS_NAMES = classes.ADE20K
  IGNORE_LABEL = None    # 0 'other' is a value of its own; methods decide.
  OFFICIAL_SPLIT_SIZES = {'train': 20210, 'validation': 2000}
  HOMEPAGE = 'https://groups.csail.mit.edu/vision/datasets/ADE20K/'
  DESCRIPTION = 'ADE20K scene parsing, 150 classes + 0 = other.'
  EXPECTED_LAYOUT = """\
  <manual_dir>/ADEChallengeData2016/images/training/ADE_train_00000001.jpg ...
  <manual_dir>/ADEChallengeData2016/images/validation/ADE_val_00000001.jpg ...
  <manual_dir>/ADEChallengeData2016/annotations/training/ADE_train_00000001.png
  <manual_dir>/ADEChallengeData2016/annotations/validation/ADE_val_00000001.png"""
  WHERE_TO_GET = ('ADEChallengeData2016.zip from the MIT scene parsing '
                  'benchmark (sceneparsing.csail.mit.edu).')

  def _find_root(self, manual_dir):
    root = base.first_existing([
        os.path.join(manual_dir, 'ADEChallengeData2016'), manual_dir])
    for sub in ('images/training', 'images/validation',
                'annotations/training', 'annotations/validation'):
      if not os.path.isdir(os.path.join(root, sub)):
        raise self._missing(f'ADEChallengeData2016/{sub} not found in '
                            f'{manual_dir}')
    return root

  def _split_examples(self, root):
    return {
        split: base.pair_by_stem(os.path.join(root, 'images', folder),
                                 os.path.join(root, 'annotations', folder))
        for split, folder in (('train', 'training'),
                              ('validation', 'validation'))}
