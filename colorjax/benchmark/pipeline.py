"""`benchmark pipeline`: images/s of the grain input pipeline running a
config's `data.preprocess_train`, against a plain one-process PIL + numpy
loop doing the same operations, with the same arguments, on the same
records (the baseline that says what grain's workers and the op registry
buy).
"""

import json
import os
import time

import numpy as np
from PIL import Image

from colorjax.benchmark import common
from colorjax.color import equalize_lightness
from colorjax.color.lab import rgb_to_lab_numpy
from colorjax.data import pipeline as data_pipeline
from colorjax.data import preprocess as preprocess_lib
from colorjax.datasets import prepare

# The pipeline benchmark's default config: paper 000 (ChromaCMC).
PIPELINE_CONFIG = os.path.join(common.REPO, 'configs', 'chromacmc.py')
# The ops `_plain_loop` implements, in this order (their arguments are read
# from the parsed spec).
PLAIN_LOOP_OPS = ('resize_short', 'random_crop', 'flip', 'to_lab',
                  'equalize_l', 'normalize_lab', 'keep')
PIPELINE_KEYS = ('gray', 'ab', 'segmentation')


def _pipeline_spec(config) -> str:
  """The config's training preprocessing, keeping the batch's arrays."""
  return f'{config.data.preprocess_train}|keep({PIPELINE_KEYS!r})'


def _plain_loop_ops(spec: str):
  """{op name: parsed op} of the spec, which must be the plain loop's ops."""
  ops = preprocess_lib.parse(spec)
  names = tuple(op.op_name for op in ops)
  if names != PLAIN_LOOP_OPS:
    raise ValueError(f'the plain loop implements {"|".join(PLAIN_LOOP_OPS)}; '
                     f'the config preprocesses with {spec}')
  return dict(zip(names, ops))


def _ensure_prepared(dataset, split, data_dir):
  try:
    return data_pipeline.data_source(dataset, split, data_dir)
  except FileNotFoundError:
    if not dataset.startswith('semantic_shapes'):
      raise
    print(f'preparing {dataset} (embedded, generated once)...', flush=True)
    prepare.prepare(dataset, data_dir=data_dir)
    return data_pipeline.data_source(dataset, split, data_dir)


def _plain_loop(source, num_images, ops, batch_size, seed=0):
  """The baseline: one process, PIL + numpy, same operations (`ops` from
  `_plain_loop_ops`: their arguments), same records."""
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(source))
  short, size = ops['resize_short'].size, ops['random_crop'].size
  norm = ops['normalize_lab']
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
    if rng.random() < ops['flip'].p:
      image, labels = image[:, ::-1], labels[:, ::-1]
    lab = rgb_to_lab_numpy(image.astype(np.float32) / 255.0)
    gray = equalize_lightness(lab[..., :1], ops['equalize_l'].bins)
    gray = gray / 100.0 * (norm.l_high - norm.l_low) + norm.l_low
    batch.append((gray, lab[..., 1:] / norm.ab_scale, labels[..., None]))
    if len(batch) == batch_size:
      yield tuple(np.stack(x) for x in zip(*batch))
      batch = []


def _time_batches(iterator, num_batches, batch_size):
  for _ in range(common.WARMUP_BATCHES):
    next(iterator)
  start = time.perf_counter()
  for _ in range(num_batches):
    next(iterator)
  return num_batches * batch_size / (time.perf_counter() - start)


def benchmark_pipeline(config, config_name: str, dataset: str, split: str,
                       data_dir, batch_size: int, num_batches: int,
                       workers: int):
  """images/s of the plain loop and of grain with 0 and `workers` worker
  processes (after warm-up batches), and their ratios to the plain loop."""
  preprocess = _pipeline_spec(config)
  ops = _plain_loop_ops(preprocess)
  source = _ensure_prepared(dataset, split, data_dir)
  total = (num_batches + common.WARMUP_BATCHES) * batch_size
  results = {}
  plain = _plain_loop(source, total, ops, batch_size)
  results['plain_pil_numpy_loop'] = _time_batches(plain, num_batches,
                                                  batch_size)
  for worker_count in sorted({0, workers}):
    spec = data_pipeline.LoaderSpec(
        dataset=dataset, split=split, data_dir=data_dir,
        global_batch_size=batch_size,
        preprocess=preprocess, worker_count=worker_count,
        worker_buffer_size=2)
    iterator = iter(data_pipeline.create_loader(spec, source=source))
    results[f'grain_workers_{worker_count}'] = _time_batches(
        iterator, num_batches, batch_size)
    del iterator
  baseline = results['plain_pil_numpy_loop']
  report = {
      'benchmark': 'pipeline', 'dataset': dataset,
      'config': config_name,
      'preprocess': preprocess, 'batch_size': batch_size,
      'images_per_s': {k: round(v, 1) for k, v in results.items()},
      'ratio_vs_plain_loop': {k: round(v / baseline, 2)
                              for k, v in results.items()},
  }
  print(json.dumps(report, indent=1))
  return report
