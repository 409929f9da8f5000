"""A folder of photos as a random-access data source (labels optional).

Any JPEG/PNG/... files of any size and mode (DIV2K-style 2K images, grey,
CMYK, 16-bit), found recursively in a stable order. Evaluators read it
through the same grain loader and preprocessing as a tfds split, and
colorize uses its listing and decoding. An unreadable file yields a small
placeholder with `valid = 0`, so every process still sees the same number
of records (multi-host evaluation stays in step) and the evaluators mask it
out and count it.

Class labels (`labels=`), for classification accuracy on labelled
evaluation sets in their published layouts:
  'folders'  one subfolder per class, classes numbered in sorted folder
             order: ImageNet val sorted into its 1,000 wnid folders (the
             usual valprep.sh layout) gets torchvision's class indices;
             Places365 val sorted into category folders gets
             categories_places365.txt's.
  NAME.txt   lines `FILE LABEL` (Places365's places365_val.txt:
             `Places365_val_00000001.jpg 165`), 0-based labels.
  NAME.csv   ImageNet's LOC_val_solution.csv (`ImageId,PredictionString`,
             the first token the wnid), with LOC_synset_mapping.txt beside
             it giving the class order (the 1,000 wnids, sorted).
A photo the labels do not name is an error (listed), not a silent skip.
"""

import csv
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from colorjax import errors
from colorjax.datasets import imaging

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                    '.gif')


def find_images(inputs: Sequence[str]) -> List[str]:
  """Files given directly, plus image files found (recursively) in folders."""
  paths = []
  for entry in inputs:
    if os.path.isdir(entry):
      for root, dirs, names in os.walk(entry):
        dirs.sort()
        paths += [os.path.join(root, n) for n in sorted(names)
                  if n.lower().endswith(IMAGE_EXTENSIONS)]
    else:
      paths.append(entry)
  return paths


def _labels_from_folders(root: str, files: Sequence[str]) -> Dict[str, int]:
  classes = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)))
  index = {name: k for k, name in enumerate(classes)}
  labels = {}
  for path in files:
    top = os.path.relpath(path, root).split(os.sep)[0]
    if top in index:
      labels[path] = index[top]
  return labels


def _labels_from_text(label_file: str, files: Sequence[str]) -> Dict[str, int]:
  by_name = {}
  with open(label_file) as f:
    for number, line in enumerate(f, 1):
      parts = line.split()
      if not parts:
        continue
      try:
        by_name[os.path.basename(parts[0])] = int(parts[1])
      except (IndexError, ValueError) as e:
        raise errors.ConfigError(f'{label_file}:{number}: expected "FILE '
                                 f'LABEL", got {line.strip()!r}') from e
  return {p: by_name[os.path.basename(p)] for p in files
          if os.path.basename(p) in by_name}


def _labels_from_csv(label_file: str, files: Sequence[str]) -> Dict[str, int]:
  mapping = os.path.join(os.path.dirname(label_file), 'LOC_synset_mapping.txt')
  if not os.path.exists(mapping):
    raise errors.MissingFileError(
        f'{label_file}: ImageNet\'s class order comes from '
        f'LOC_synset_mapping.txt, expected beside it ({mapping})')
  with open(mapping) as f:
    order = {line.split()[0]: k for k, line in enumerate(f) if line.strip()}
  by_stem = {}
  with open(label_file, newline='') as f:
    for row in csv.DictReader(f):
      try:
        by_stem[row['ImageId']] = order[row['PredictionString'].split()[0]]
      except (KeyError, IndexError) as e:
        raise errors.ConfigError(
            f'{label_file}: expected ImageId,PredictionString rows with a '
            f'wnid of {mapping} first, got {dict(row)}') from e
  stem = lambda p: os.path.splitext(os.path.basename(p))[0]  # pylint: disable=unnecessary-lambda-assignment
  return {p: by_stem[stem(p)] for p in files if stem(p) in by_stem}


def read_labels(root: str, files: Sequence[str], labels: str) -> Dict[str, int]:
  """{file: class index} for `files` under `root` (module doc)."""
  if labels == 'folders':
    found = _labels_from_folders(root, files)
  elif not os.path.isfile(labels):
    raise errors.MissingFileError(f'labels={labels!r}: not "folders" and no '
                                  'such file')
  elif labels.lower().endswith('.csv'):
    found = _labels_from_csv(labels, files)
  else:
    found = _labels_from_text(labels, files)
  missing = [f for f in files if f not in found]
  if missing:
    raise errors.ConfigError(
        f'{len(missing)} of {len(files)} images under {root} have no label '
        f'in {labels}, e.g. {", ".join(missing[:3])}')
  return found


class ImageFolderSource:
  """grain RandomAccessDataSource over the images under `path` (with
  `labels`: each example's class index as 'label', see the module doc)."""

  def __init__(self, path: str, min_size: int = 8,
               labels: Optional[str] = None):
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
      raise FileNotFoundError(f'image folder {path!r} does not exist')
    self.path = path
    self.files = find_images([path])
    if not self.files:
      raise FileNotFoundError(f'no image files ({", ".join(IMAGE_EXTENSIONS)})'
                              f' under {path!r}')
    self._placeholder = np.zeros((min_size, min_size, 3), np.uint8)
    self.labels = (read_labels(path, self.files, labels) if labels
                   else None)

  def __len__(self) -> int:
    return len(self.files)

  def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
    path = self.files[index]
    try:
      image, valid = imaging.decode_image(path).array, 1.0
    except (imaging.DecodeError, OSError):
      image, valid = self._placeholder, 0.0
    example = {'image': image, 'valid': np.float32(valid),
               'id': os.path.relpath(path, self.path)}
    if self.labels is not None:
      example['label'] = np.int32(self.labels[path])
    return example

  def __repr__(self):
    return f'ImageFolderSource({self.path!r}, {len(self)} files)'
