"""Scene soft labels from a Places365 teacher (paper 001, section III-B2, V-A).

  python -m colorjax.datasets.scene_labels --dataset=coco_stuff/10k \
      --split=train --teacher=vgg16:/weights/vgg16_places365.pth \
      [--data_dir=...] [--batch_size=64]

The paper labels every training image with the top-5 probabilities of a
Places365 VGG16, renormalised to sum to 1 (its eq. 20 target). The teacher
(any `colorjax.pretrained` classifier file with a 365-way head: vgg16,
vgg16_bn, resnet18, resnet34, resnet50, resnet101 in torchvision layout)
runs once over a split
as a jitted, data-sharded batch job; the (class, probability) pairs are
stored per example id in `<tfds version dir>/scene_labels/<split>.npz`,
next to the dataset, and the input pipeline joins them by id
(`LoaderSpec.joins=('scene_labels',)` adds `scene`, float32 [365]).

Teacher input: the Places365 release's evaluation transform, resize to 256
x 256, centre crop 224, ImageNet mean/std normalisation.
"""

import dataclasses
import glob
import json
import os
from typing import Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import errors

TOP_K = 5
NUM_SCENES = 365
TEACHER_PREPROCESS = 'resize(256)|center_crop(224)|to_rgb'


class MissingSceneLabelsError(errors.UserError, FileNotFoundError):
  """A split has no scene labels yet."""


def labels_path(dataset: str, split: str,
                data_dir: Optional[str] = None) -> str:
  """Where the scene labels of a prepared split live (next to its files)."""
  from colorjax.datasets import prepare  # pylint: disable=g-import-not-at-top
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


def top_k_renormalised(logits, k: int = TOP_K):
  """(classes [N, k] int32, probabilities [N, k] summing to 1): eq. 20's
  target from the teacher's softmax."""
  probs = jax.nn.softmax(logits.astype(jnp.float32), -1)
  top, classes = jax.lax.top_k(probs, k)
  return classes.astype(jnp.int32), top / jnp.sum(top, -1, keepdims=True)


def compute(dataset: str, split: str, teacher: str,
            data_dir: Optional[str] = None, batch_size: int = 64,
            output: Optional[str] = None, progress: bool = True,
            worker_count: int = 0) -> Dict[str, np.ndarray]:
  """Runs the teacher over a split; writes and returns the table arrays."""
  import tqdm  # pylint: disable=g-import-not-at-top
  from colorjax import evaluation  # pylint: disable=g-import-not-at-top
  from colorjax import pretrained  # pylint: disable=g-import-not-at-top
  from colorjax import sharding  # pylint: disable=g-import-not-at-top
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top

  name, path = pretrained.parse_spec(teacher, '--teacher',
                                     'vgg16:/weights/vgg16_places365.pth')
  module, variables = pretrained.load(name, path)
  mesh = sharding.data_mesh()
  variables = jax.device_put(variables, sharding.replicated(mesh))
  source = pipeline.data_source(dataset, split, data_dir)
  spec = pipeline.LoaderSpec(
      dataset=dataset, split=split, global_batch_size=batch_size,
      preprocess=TEACHER_PREPROCESS, data_dir=data_dir, shuffle=False,
      num_epochs=1, worker_count=worker_count, drop_remainder=False,
      keys=('rgb', 'id'))

  @jax.jit
  def predict(variables, rgb):
    logits = module.apply(variables, pretrained.imagenet_normalize(rgb))
    if logits.shape[-1] != NUM_SCENES:
      raise ValueError(f'{teacher}: a {logits.shape[-1]}-way head, not '
                       f'Places365\'s {NUM_SCENES}')
    return top_k_renormalised(logits)

  local_batch = sharding.process_batch_size(batch_size)
  ids, classes, probs = [], [], []
  loader = pipeline.create_loader(spec, source)
  total = -(-len(source) // batch_size)
  for local in tqdm.tqdm(loader, total=total, unit='batch',
                         desc=f'scene labels of {dataset} {split}',
                         disable=not progress or jax.process_index() != 0):
    count = len(local['id'])
    rgb = evaluation.pad_batch({'rgb': local['rgb']}, local_batch)['rgb']
    batch = sharding.global_array(mesh, rgb)
    top, p = (_local_rows(x) for x in predict(variables, batch))
    ids += [i.decode() if isinstance(i, bytes) else str(i)
            for i in local['id']]
    classes.append(np.asarray(top)[:count])
    probs.append(np.asarray(p)[:count])
  table = {'ids': np.asarray(ids), 'classes': np.concatenate(classes),
           'probs': np.concatenate(probs).astype(np.float32)}
  output = output or labels_path(dataset, split, data_dir)
  if jax.process_count() > 1:     # each process writes the ids it read
    output = _part_path(output, jax.process_index(), jax.process_count())
  os.makedirs(os.path.dirname(output), exist_ok=True)
  meta = {'teacher': teacher, 'num_classes': NUM_SCENES, 'top_k': TOP_K,
          'weights_sha256': base_digest(path),
          'preprocess': TEACHER_PREPROCESS}
  partial = output[:-len('.npz')] + '.tmp.npz'
  np.savez(partial, meta=json.dumps(meta), **table)
  os.replace(partial, output)       # readers never see half a file
  return table


def _local_rows(x: jax.Array) -> np.ndarray:
  """This process's rows of a batch-sharded array, in order."""
  shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
  rows, seen = [], set()
  for shard in shards:
    start = shard.index[0].start or 0
    if start not in seen:           # replicas of one shard: keep one
      seen.add(start)
      rows.append(np.asarray(shard.data))
  return np.concatenate(rows)


def _part_path(path: str, index: int, count: int) -> str:
  return path[:-len('.npz')] + f'.part{index:05d}-of-{count:05d}.npz'


def base_digest(path: str) -> str:
  from colorjax.evaluators import base  # pylint: disable=g-import-not-at-top
  return base.file_digest(os.path.expanduser(path))


if __name__ == '__main__':
  from colorjax import cli  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top

  flags.DEFINE_string('dataset', None, 'tfds name, e.g. coco_stuff/10k')
  flags.DEFINE_string('split', 'train', 'split')
  flags.DEFINE_string('data_dir', None, 'tfds data_dir')
  flags.DEFINE_string('teacher', None, 'NAME:PATH of a Places365 classifier '
                      '(vgg16, vgg16_bn, resnet18, resnet34, resnet50, resnet101)')
  flags.DEFINE_integer('batch_size', 64, 'images per forward pass')
  flags.DEFINE_string('output', None, 'default: next to the dataset')
  flags.DEFINE_integer('workers', 2, 'grain worker processes')
  flags.mark_flags_as_required(['dataset', 'teacher'])

  def main(argv):
    del argv
    f = flags.FLAGS
    table = compute(f.dataset, f.split, f.teacher, f.data_dir, f.batch_size,
                    f.output, worker_count=f.workers)
    print(f'wrote scene labels of {len(table["ids"])} images to '
          f'{f.output or labels_path(f.dataset, f.split, f.data_dir)}')

  cli.run(main)
