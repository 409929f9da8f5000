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
(colorjax.data.joins; `LoaderSpec.joins=('scene_labels',)` adds `scene`,
float32 [365]).

Teacher input: the Places365 release's evaluation transform, resize to 256
x 256, centre crop 224, ImageNet mean/std normalisation.
"""

import json
import os
from typing import Dict, Optional

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from colorjax import cli
from colorjax import pretrained
from colorjax import sharding
from colorjax.data import joins
from colorjax.data import pipeline
from colorjax.models import imagenet

TOP_K = 5
NUM_SCENES = 365
TEACHER_PREPROCESS = 'resize(256)|center_crop(224)|to_rgb'


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
  name, path = pretrained.parse_spec(teacher, '--teacher',
                                     'vgg16:/weights/vgg16_places365.pth')
  module, variables = pretrained.load(name, path)
  mesh = sharding.data_mesh()
  variables = jax.device_put(variables, sharding.replicated(mesh))
  source = pipeline.data_source(dataset, split, data_dir)
  spec = pipeline.LoaderSpec.one_pass(
      dataset, split, batch_size, TEACHER_PREPROCESS, data_dir=data_dir,
      worker_count=worker_count, keys=('rgb', 'id'))

  @jax.jit
  def predict(variables, rgb):
    logits = module.apply(variables, imagenet.imagenet_normalize(rgb))
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
    rgb = pipeline.pad_batch({'rgb': local['rgb']}, local_batch)['rgb']
    batch = sharding.global_array(mesh, rgb)
    top, p = (_local_rows(x) for x in predict(variables, batch))
    ids += [i.decode() if isinstance(i, bytes) else str(i)
            for i in local['id']]
    classes.append(np.asarray(top)[:count])
    probs.append(np.asarray(p)[:count])
  table = {'ids': np.asarray(ids), 'classes': np.concatenate(classes),
           'probs': np.concatenate(probs).astype(np.float32)}
  output = output or joins.labels_path(dataset, split, data_dir)
  if jax.process_count() > 1:     # each process writes the ids it read
    output = joins.part_path(output, jax.process_index(), jax.process_count())
  os.makedirs(os.path.dirname(output), exist_ok=True)
  meta = {'teacher': teacher, 'num_classes': NUM_SCENES, 'top_k': TOP_K,
          'weights_sha256': pretrained.file_sha256(os.path.expanduser(path)),
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


if __name__ == '__main__':
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
          f'{f.output or joins.labels_path(f.dataset, f.split, f.data_dir)}')

  cli.run(main)
