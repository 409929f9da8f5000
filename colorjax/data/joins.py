"""Per-example tables joined to a dataset by example id.

One join exists: 'scene_labels', the top-k Places365 scene probabilities of
paper 001 (section III-B2), which `python -m colorjax.datasets.scene_labels`
computes once per split and stores next to the dataset's files
(`<tfds version dir>/scene_labels/<split>.npz`, or one part per process of
a multi-host run). `join` wraps a source so its examples gain `scene`
(float32 [num_classes]).
"""

import dataclasses
import glob
import json
import os
from typing import Optional, Sequence

import numpy as np

from colorjax import errors
from colorjax.datasets import prepare

JOINS = ('scene_labels',)


class MissingSceneLabelsError(errors.UserError, FileNotFoundError):
  """A split has no scene labels yet."""


def labels_path(dataset: str, split: str,
                data_dir: Optional[str] = None) -> str:
  """Where the scene labels of a prepared split live (next to its files)."""
  builder = prepare.builder(dataset, data_dir=data_dir)
  return os.path.join(builder.data_dir, 'scene_labels', f'{split}.npz')


@dataclasses.dataclass
class SceneTable:
  """Top-k scene classes and renormalised probabilities per example id."""
  ids: np.ndarray            # str [N]
  classes: np.ndarray        # int32 [N, k]
  probs: np.ndarray          # float32 [N, k], rows sum to 1
  num_classes: int
  teacher: str

  def __post_init__(self):
    self._rows = {str(i): r for r, i in enumerate(self.ids)}

  def dense(self, example_id: str) -> np.ndarray:
    """The soft label [num_classes] of one example."""
    row = self._rows.get(str(example_id))
    if row is None:
      raise KeyError(f'no scene label for example {example_id!r} '
                     f'(teacher {self.teacher})')
    out = np.zeros(self.num_classes, np.float32)
    out[self.classes[row]] = self.probs[row]
    return out


def load(dataset: str, split: str, data_dir: Optional[str] = None
         ) -> SceneTable:
  path = labels_path(dataset, split, data_dir)
  parts = sorted(glob.glob(path[:-len('.npz')] + '.part*-of-*.npz'))
  if not os.path.exists(path) and parts:      # a multi-host run's parts
    tables = [np.load(p) for p in parts]
    meta = json.loads(str(tables[0]['meta']))
    return SceneTable(*(np.concatenate([t[k] for t in tables])
                        for k in ('ids', 'classes', 'probs')),
                      meta['num_classes'], meta['teacher'])
  if not os.path.exists(path):
    raise MissingSceneLabelsError(
        f'{dataset} {split} has no scene labels ({path}); make them once '
        f'with: python -m colorjax.datasets.scene_labels --dataset={dataset}'
        f' --split={split} --teacher=vgg16:PATH_TO_PLACES365_VGG16'
        + (f' --data_dir={data_dir}' if data_dir else ''))
  with np.load(path) as f:
    meta = json.loads(str(f['meta']))
    return SceneTable(f['ids'], f['classes'], f['probs'],
                      meta['num_classes'], meta['teacher'])


class JoinedSource:
  """A random-access source whose examples gain `scene` (by their id)."""

  def __init__(self, source, table: SceneTable):
    self.source = source
    self.table = table

  def __len__(self):
    return len(self.source)

  def __getitem__(self, index):
    example = dict(self.source[index])
    example_id = example['id']
    if isinstance(example_id, bytes):
      example_id = example_id.decode()
    example['scene'] = self.table.dense(example_id)
    return example


def part_path(path: str, index: int, count: int) -> str:
  return path[:-len('.npz')] + f'.part{index:05d}-of-{count:05d}.npz'



def join(source, joins: Sequence[str], dataset: str, split: str,
         data_dir: Optional[str] = None):
  """`source` with the `joins` tables attached by example id."""
  for name in joins:
    if name not in JOINS:
      raise ValueError(f'unknown join {name!r} (known: {", ".join(JOINS)})')
    source = JoinedSource(source, load(dataset, split, data_dir))
  return source
