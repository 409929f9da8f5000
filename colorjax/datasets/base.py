"""Shared machinery of the segmentation dataset builders.

Each builder reads a dataset as its users have it unpacked (`manual_dir`),
and writes ArrayRecord files read later with `tfds.data_source` (no
TensorFlow needed anywhere). A builder only says where its files are
(`_find_root`, `_split_examples`); decoding, validation, skipping of bad
files and the feature spec are written once here.
"""

import os
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from colorjax import errors
from colorjax.datasets import imaging

# (example id, image path, label-map path or a callable returning labels)
ExampleFiles = Tuple[str, str, object]


class ManualDataError(errors.UserError, FileNotFoundError):
  """The dataset is not where `manual_dir` says; the message says what to do."""


def features(class_names: Sequence[str]) -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      # Bytes are passed through (original JPEG or lossless PNG re-encode).
      'image': tfds.features.Image(shape=(None, None, 3), dtype=np.uint8,
                                   encoding_format=None),
      'segmentation': tfds.features.Image(shape=(None, None, 1),
                                          dtype=np.uint8,
                                          encoding_format='png'),
      # Classes present in the segmentation map (image-level labels).
      'labels': tfds.features.Sequence(
          tfds.features.ClassLabel(names=list(class_names))),
      'id': tfds.features.Text(),
  })


def image_level_labels(label_map: np.ndarray, num_classes: int,
                       ignore_label: Optional[int]) -> List[int]:
  present = np.unique(label_map)
  return [int(v) for v in present
          if v != ignore_label and 0 <= v < num_classes]


class SegmentationBuilder(tfds.core.GeneratorBasedBuilder):
  """Base of the VOC / COCO-Stuff / ADE20K / PASCAL-Context builders."""

  CLASS_NAMES: Sequence[str] = ()
  IGNORE_LABEL: Optional[int] = 255
  # Split name -> number of images in the official release, for a warning.
  OFFICIAL_SPLIT_SIZES: Dict[str, int] = {}
  EXPECTED_LAYOUT = ''
  WHERE_TO_GET = ''
  DESCRIPTION = ''
  HOMEPAGE = ''

  @classmethod
  def manual_instructions(cls) -> str:
    return (f'Expected layout of manual_dir:\n{cls.EXPECTED_LAYOUT}\n'
            f'Where to obtain it: {cls.WHERE_TO_GET}\n'
            'Then: python -m colorjax.datasets.prepare '
            f'--dataset={cls.name} --manual_dir=DIR [--data_dir=DIR]\n'
            'No dataset at hand? Every config has a `:demo` twin that trains '
            'on the embedded `semantic_shapes` dataset, e.g. '
            '--config=configs/chromacmc.py:demo')

  @property
  def MANUAL_DOWNLOAD_INSTRUCTIONS(self):  # pylint: disable=invalid-name
    return self.manual_instructions()

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DESCRIPTION,
        features=features(self.CLASS_NAMES),
        homepage=self.HOMEPAGE,
        metadata=tfds.core.MetadataDict(
            num_classes=len(self.CLASS_NAMES),
            ignore_label=self.IGNORE_LABEL,
            skipped={}),
    )

  @property
  def num_classes(self) -> int:
    return len(self.CLASS_NAMES)

  # --- what each dataset provides -------------------------------------
  def _find_root(self, manual_dir: str) -> str:
    """Returns the dataset root inside manual_dir or raises ManualDataError."""
    raise NotImplementedError

  def _split_examples(self, root: str) -> Dict[str, List[ExampleFiles]]:
    raise NotImplementedError

  # --- shared -----------------------------------------------------------
  def _missing(self, what: str) -> ManualDataError:
    return ManualDataError(
        f'{self.name}: {what}\n{self.manual_instructions()}')

  def _manual_dir(self, dl_manager) -> str:
    try:
      manual_dir = dl_manager.manual_dir
    except AssertionError as e:  # tfds' "does not exist or is empty".
      cause = str(e.args[0] if e.args else e).split('\n')[0]
      raise self._missing(f'manual_dir is missing or empty: {cause}'
                          ) from None
    return os.fspath(manual_dir)

  def _split_generators(self, dl_manager):
    root = self._find_root(self._manual_dir(dl_manager))
    splits = self._split_examples(root)
    for split, examples in splits.items():
      if not examples:
        raise self._missing(f'split {split!r} has no image/label pairs '
                            f'under {root}')
      official = self.OFFICIAL_SPLIT_SIZES.get(split)
      if official is not None and official != len(examples):
        logging.warning('%s/%s: %d examples found, the official split has %d',
                        self.name, split, len(examples), official)
    return {split: self._generate_examples(split, examples)
            for split, examples in splits.items()}

  def _record_skip(self, split: str, example_id: str, reason: str):
    skipped = self.info.metadata['skipped']
    per_split = skipped.setdefault(split, {})
    per_split[reason] = per_split.get(reason, 0) + 1
    logging.warning('%s/%s: skipping %s (%s)', self.name, split, example_id,
                    reason)

  def _load_labels(self, label_source) -> np.ndarray:
    if callable(label_source):
      return label_source()
    return imaging.decode_label_map(label_source)

  def _generate_examples(self, split: str,
                         examples: Iterable[ExampleFiles]) -> Iterator:
    for example_id, image_path, label_source in examples:
      try:
        image = imaging.decode_image(image_path)
        labels = self._load_labels(label_source)
      except (imaging.DecodeError, OSError) as e:
        self._record_skip(split, example_id,
                          getattr(e, 'reason', type(e).__name__))
        continue
      if labels.shape != image.array.shape[:2]:
        self._record_skip(split, example_id, 'size_mismatch')
        continue
      yield example_id, {
          'image': image.encoded,
          'segmentation': imaging.encode_png(labels),
          'labels': image_level_labels(labels, self.num_classes,
                                       self.IGNORE_LABEL),
          'id': example_id,
      }


def read_id_list(path: str) -> List[str]:
  """Reads a split list: one id per line, or 'image_path label_path' pairs."""
  ids = []
  with open(path) as f:
    for line in f:
      line = line.strip()
      if not line or line.startswith('#'):
        continue
      first = line.split()[0]
      ids.append(os.path.splitext(os.path.basename(first))[0])
  return ids


def first_existing(candidates: Iterable[str]) -> Optional[str]:
  for candidate in candidates:
    if os.path.exists(candidate):
      return candidate
  return None


def pair_by_stem(image_dir: str, label_dir: str,
                 image_ext: str = '.jpg') -> List[ExampleFiles]:
  """Image/label pairs matched by file stem, sorted by id (deterministic)."""
  labels = {os.path.splitext(n)[0]: n for n in os.listdir(label_dir)
            if n.lower().endswith('.png')}
  examples = []
  for name in sorted(os.listdir(image_dir)):
    stem, ext = os.path.splitext(name)
    if ext.lower() == image_ext and stem in labels:
      examples.append((stem, os.path.join(image_dir, name),
                       os.path.join(label_dir, labels[stem])))
  return examples


def skipped_counts(builder: tfds.core.DatasetBuilder) -> Dict:
  return dict(builder.info.metadata.get('skipped', {}))

