"""Builds a dataset's ArrayRecord files (no TensorFlow needed).

  python -m colorjax.datasets.prepare --dataset=voc2012_aug \
      --manual_dir=/data/voc --data_dir=~/tensorflow_datasets
  python -m colorjax.datasets.prepare --dataset=semantic_shapes/64
"""

import contextlib
import json
import os
from typing import Optional

from absl import flags
import tensorflow_datasets as tfds

from colorjax import cli
from colorjax import datasets  # registers the builders with tfds
from colorjax import errors


def builder(name: str, data_dir: Optional[str] = None, **kwargs):
  """tfds builder of one of colorjax's datasets (`name[/config]`)."""
  try:
    return tfds.builder(name, data_dir=data_dir, file_format='array_record',
                        **kwargs)
  except tfds.core.registered.DatasetNotFoundError as e:
    known = sorted(b.name for b in (
        datasets.Ade20k, datasets.CocoStuff, datasets.PascalContext,
        datasets.SemanticShapes, datasets.Voc2012Aug))
    raise errors.ConfigError(
        f'unknown dataset {name!r}; colorjax builds {", ".join(known)} '
        '(with /config where it has several, e.g. semantic_shapes/64)'
        ) from e


def prepare(name: str, manual_dir: Optional[str] = None,
            data_dir: Optional[str] = None, quiet: bool = False, **kwargs):
  """Builds `name` (reading `manual_dir` for real datasets); returns builder.

  quiet: no tfds progress bars or "Downloading and preparing" lines (the
  trainer generating the embedded dataset says so itself).
  """
  dataset_builder = builder(name, data_dir=data_dir, **kwargs)
  download_config = tfds.download.DownloadConfig(
      manual_dir=os.path.expanduser(manual_dir) if manual_dir else None)
  if not quiet:
    dataset_builder.download_and_prepare(download_config=download_config)
    return dataset_builder
  tfds.disable_progress_bar()
  try:
    with open(os.devnull, 'w') as devnull, \
        contextlib.redirect_stdout(devnull):
      dataset_builder.download_and_prepare(download_config=download_config)
  finally:
    tfds.enable_progress_bar()
  return dataset_builder


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('dataset', None, 'e.g. voc2012_aug, coco_stuff/10k, '
                      'ade20k, pascal_context, semantic_shapes/64')
  flags.DEFINE_string('manual_dir', None, 'where the dataset is unpacked')
  flags.DEFINE_string('data_dir', None, 'tfds data_dir (default '
                      '~/tensorflow_datasets)')
  flags.mark_flag_as_required('dataset')

  def main(argv):
    del argv
    built = prepare(FLAGS.dataset, FLAGS.manual_dir, FLAGS.data_dir)
    splits = {k: v.num_examples for k, v in built.info.splits.items()}
    print(json.dumps({'dataset': built.name, 'data_dir': built.data_dir,
                      'splits': splits,
                      'skipped': dict(built.info.metadata.get('skipped', {}))},
                     indent=1))

  cli.run(main)
