"""Benchmarks, each printed as a ratio against a baseline run in the same call.

  python -m colorjax.benchmark pipeline [--dataset=semantic_shapes/256]
      [--batch_size=32] [--num_batches=30] [--workers=2]

pipeline: images/s of the grain input pipeline (paper 000's training
preprocessing at 256x256: resize, random crop, flip, Lab, equalised L,
normalisation) against a plain single-process PIL + numpy loop doing the
same work on the same records.
"""

import json
import sys
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

flags.DEFINE_string('dataset', 'semantic_shapes/256', 'tfds dataset')
flags.DEFINE_string('split', 'train', 'split')
flags.DEFINE_string('data_dir', None, 'tfds data_dir')
flags.DEFINE_integer('batch_size', 32, 'images per batch')
flags.DEFINE_integer('num_batches', 30, 'batches timed (after 2 warm-up)')
flags.DEFINE_integer('workers', 2, 'grain worker processes')
flags.DEFINE_integer('image_size', 256, 'crop size')
FLAGS = flags.FLAGS

WARMUP_BATCHES = 2


def _pipeline_spec(size: int) -> str:
  short = int(size * 1.125)
  return (f'resize_short({short})|random_crop({size})|flip|to_lab|equalize_l|'
          'normalize_lab|keep(("gray", "ab", "segmentation"))')


def _ensure_prepared(dataset, data_dir):
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top
  try:
    return pipeline.data_source(dataset, FLAGS.split, data_dir)
  except FileNotFoundError:
    if not dataset.startswith('semantic_shapes'):
      raise
    from colorjax.datasets import prepare  # pylint: disable=g-import-not-at-top
    print(f'preparing {dataset} (embedded, generated once)...', flush=True)
    prepare.prepare(dataset, data_dir=data_dir)
    return pipeline.data_source(dataset, FLAGS.split, data_dir)


def _plain_loop(source, num_images, size, batch_size, seed=0):
  """The baseline: one process, PIL + numpy, same operations, same records."""
  from colorjax.color.lab import rgb_to_lab_numpy  # pylint: disable=g-import-not-at-top
  from colorjax.data.preprocess import equalize_lightness  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(source))
  short = int(size * 1.125)
  batch = []
  for n in range(num_images):
    example = source[int(order[n % len(order)])]
    image = Image.fromarray(example['image'])
    labels = Image.fromarray(example['segmentation'][..., 0])
    scale = short / min(image.size)
    new_size = (max(short, round(image.size[0] * scale)),
                max(short, round(image.size[1] * scale)))
    image = np.asarray(image.resize(new_size, Image.BILINEAR))
    labels = np.asarray(labels.resize(new_size, Image.NEAREST))
    top = rng.integers(0, image.shape[0] - size + 1)
    left = rng.integers(0, image.shape[1] - size + 1)
    image = image[top:top + size, left:left + size]
    labels = labels[top:top + size, left:left + size]
    if rng.random() < 0.5:
      image, labels = image[:, ::-1], labels[:, ::-1]
    lab = rgb_to_lab_numpy(image.astype(np.float32) / 255.0)
    gray = equalize_lightness(lab[..., :1]) / 50.0 - 1.0
    batch.append((gray, lab[..., 1:] / 110.0, labels[..., None]))
    if len(batch) == batch_size:
      yield tuple(np.stack(x) for x in zip(*batch))
      batch = []


def _time_batches(iterator, num_batches, batch_size):
  for _ in range(WARMUP_BATCHES):
    next(iterator)
  start = time.perf_counter()
  for _ in range(num_batches):
    next(iterator)
  return num_batches * batch_size / (time.perf_counter() - start)


def benchmark_pipeline():
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top
  source = _ensure_prepared(FLAGS.dataset, FLAGS.data_dir)
  total = (FLAGS.num_batches + WARMUP_BATCHES) * FLAGS.batch_size
  results = {}
  plain = _plain_loop(source, total, FLAGS.image_size, FLAGS.batch_size)
  results['plain_pil_numpy_loop'] = _time_batches(plain, FLAGS.num_batches,
                                                  FLAGS.batch_size)
  for workers in sorted({0, FLAGS.workers}):
    spec = pipeline.LoaderSpec(
        dataset=FLAGS.dataset, split=FLAGS.split, data_dir=FLAGS.data_dir,
        global_batch_size=FLAGS.batch_size,
        preprocess=_pipeline_spec(FLAGS.image_size), worker_count=workers,
        worker_buffer_size=2)
    iterator = iter(pipeline.create_loader(spec, source=source))
    results[f'grain_workers_{workers}'] = _time_batches(
        iterator, FLAGS.num_batches, FLAGS.batch_size)
    del iterator
  baseline = results['plain_pil_numpy_loop']
  report = {
      'benchmark': 'pipeline', 'dataset': FLAGS.dataset,
      'image_size': FLAGS.image_size, 'batch_size': FLAGS.batch_size,
      'images_per_s': {k: round(v, 1) for k, v in results.items()},
      'ratio_vs_plain_loop': {k: round(v / baseline, 2)
                              for k, v in results.items()},
  }
  print(json.dumps(report, indent=1))
  return report


BENCHMARKS = {'pipeline': benchmark_pipeline}


def main(argv):
  if len(argv) < 2 or argv[1] not in BENCHMARKS:
    sys.exit(f'usage: python -m colorjax.benchmark {{{",".join(BENCHMARKS)}}}'
             ' [--flags]')
  BENCHMARKS[argv[1]]()


if __name__ == '__main__':
  app.run(main)
