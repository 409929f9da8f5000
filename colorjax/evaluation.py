"""Runs a config's evaluators (`config.evals`) on a state.

Evaluators sharing the same data (dataset or image folder, split,
preprocessing, batch size, image count) are run together: the data is read
once and `predict` runs once per batch for all of them. Every image is
scored once: the last, partial batch is padded and masked, so results do
not depend on the batch size or the number of devices.

Resolution protocols (an evaluator's `resolution`):
  'model'  the config's eval preprocessing (e.g. a 256 centre crop) and
           metrics at the model's input size -- cheap, used in training;
  'full'   what a user sees: the photo in the network input exactly as
           colorize puts it (short side at the model size, aspect kept,
           padded to the method's stride multiple; a fixed-size network's
           square input), ab predicted, the padding's part cropped and the
           rest upsampled bilinearly onto the photo's own full-resolution
           L (colorize --upsample=bilinear; colorize's default, guided,
           is not what this protocol scores), metrics on every real pixel. At the photo's aspect, network
           inputs differ in size from photo to photo: one photo per batch
           (one compiled program per input size), scored at its own size,
           never shrunk. A fixed-size network's photos are batched on a
           canvas (the dataset's longest side, `canvas=` to change; larger
           photos are shrunk to fit and counted as `num_downscaled`).
"""

import collections
import dataclasses
from typing import Any, Dict, Iterable, Optional

from absl import logging
import jax
import ml_collections
import tqdm

from colorjax import config_lib
from colorjax import evaluators as evaluators_lib
from colorjax import sharding
from colorjax.data import image_folder
from colorjax.data import inference
from colorjax.data import pipeline
from colorjax.data import preprocess
from colorjax.datasets import catalog

# Canvas of the full-resolution protocol on a photo folder (sizes unknown).
FOLDER_CANVAS = 1024

Results = Dict[str, Dict[str, Any]]


def legacy_evals(config) -> ml_collections.ConfigDict:
  """The evaluators of a config written before `config.evals` existed."""
  return config_lib.default_evals(
      num_summary_images=config.get('num_summary_images', 4),
      sampling=config.method == 'pixsem')


class _Data:
  """The data one group of evaluators reads."""

  def __init__(self, cfg, config, multiple: Optional[int] = None):
    """multiple: the method's `input_multiple` (None: a fixed square
    input), for the 'full' protocol's network input."""
    data = config.data
    self.dataset = cfg.get('dataset') or data.dataset
    self.path = cfg.get('path')
    self.labels = cfg.get('labels')      # an image folder's (image_folder)
    self.split = cfg.get('split') or data.eval_split
    self.batch_size = cfg.get('batch_size') or data.eval_batch_size
    # Joined tables (scene labels) belong to the training dataset's splits.
    self.joins = (tuple(cfg.get('joins') or data.get('joins') or ())
                  if self.dataset == data.dataset else ())
    preprocess_spec = cfg.get('preprocess') or data.preprocess_eval
    # The dataset's label ops run on its own labelled splits.
    labelled = self.dataset == data.dataset
    if self.dataset == 'image_folder':
      if not self.path:
        raise ValueError("an 'image_folder' evaluator needs path=FOLDER")
      self.split = 'all'
    elif labelled and not cfg.get('preprocess'):
      preprocess_spec = pipeline.with_label_ops(data, preprocess_spec)
    self.resolution = cfg.get('resolution') or 'model'
    configured_batch = self.batch_size
    if self.resolution == 'full':
      canvas = cfg.get('canvas')
      if multiple and not canvas:
        canvas = 0          # one photo per batch: at its own size
      elif not canvas:
        canvas = (FOLDER_CANVAS if self.dataset == 'image_folder' else
                  catalog.lookup(self.dataset).get('max_image_side',
                                                   FOLDER_CANVAS))
      self.canvas = int(canvas)
      self.model_input = (f'resize_aspect({data.image_size}, '
                          f'{multiple or 0})')
      preprocess_spec = (f'keep_full({self.canvas})|' +
                         inference.inference_spec(
                             config, geometry=self.model_input) +
                         f'|pad_to_multiple({multiple or 0})')
      if multiple:          # inputs of many sizes: one photo per batch
        self.batch_size = 1
      if labelled:
        preprocess_spec = pipeline.with_label_ops(data, preprocess_spec)
    self.preprocess = preprocess_spec
    max_images = cfg.get('max_images', -1)
    if max_images is not None and max_images > 0:
      self.max_batches = -(-max_images // self.batch_size)
    else:
      limit = data.get('eval_max_batches', -1)
      # A limit in configured batches: the same images at one per batch.
      self.max_batches = (None if limit is None or limit < 0 else
                          limit * configured_batch // self.batch_size)
    self.data_dir = data.get('data_dir')
    self.worker_count = min(data.get('worker_count', 0), 2)

  def key(self):
    return (self.dataset, self.path, self.labels, self.split,
            self.preprocess, self.batch_size, self.max_batches)

  def protocol(self) -> dict:
    """What produced the numbers, for the JSON output."""
    out = {'data': self.describe(), 'preprocess': self.preprocess,
           'resolution': self.resolution}
    if self.resolution == 'full':
      out['canvas'] = self.canvas
      out['model_input'] = self.model_input
    return out

  def describe(self) -> str:
    if self.dataset == 'image_folder':
      return f'{self.path} (image folder' + (
          f', labels {self.labels})' if self.labels else ')')
    return f'{self.dataset}:{self.split}'

  def source(self):
    if self.dataset == 'image_folder':
      return image_folder.ImageFolderSource(self.path, labels=self.labels)
    return pipeline.data_source(self.dataset, self.split, self.data_dir,
                                self.joins)

  def source_keys(self):
    """What the source's examples hold, when not everything (photos)."""
    if self.dataset != 'image_folder':
      return None
    return ('image', 'valid', 'id') + (('label',) if self.labels else ())

  def available_keys(self, source, spec):
    """Keys an example has after preprocessing (one example, eagerly)."""
    return set(preprocess.apply(pipeline.parse_ops(spec), source[0]))


class _Head:
  """The first `count` records of a random-access source."""

  def __init__(self, source, count: int):
    self.source = source
    self.count = min(count, len(source))

  def __len__(self):
    return self.count

  def __getitem__(self, index):
    if not 0 <= index < self.count:
      raise IndexError(index)
    return self.source[index]


class Evaluation:
  """The evaluators of `evals` (default `config.evals`) for one method."""

  def __init__(self, method, config, mesh, evals=None,
               names: Optional[Iterable[str]] = None):
    self.method = method
    self.config = config
    self.mesh = mesh
    evals = evals if evals is not None else (config.get('evals') or
                                             legacy_evals(config))
    names = list(evals) if names is None else list(names)
    unknown = [n for n in names if n not in evals]
    if unknown:
      raise ValueError(f'unknown evaluators {unknown}; this config has '
                       f'{sorted(evals)}')
    # An image-folder evaluator a config declares without a folder waits
    # for `--config.evals.<name>.path=...`.
    unset = [n for n in names if evals[n].get('dataset') == 'image_folder'
             and not evals[n].get('path')]
    for name in unset:
      logging.info('evaluator %s not run: set evals.%s.path', name, name)
    self.cfgs = {n: evals[n] for n in names if n not in unset}
    self.evaluators = {n: evaluators_lib.create(n, c, method, config, mesh)
                       for n, c in self.cfgs.items()}
    # (A stand-in method without the hook: a fixed square input.)
    multiple = getattr(method, 'input_multiple', lambda: None)()
    self._data = {n: _Data(c, config, multiple) for n, c in self.cfgs.items()}
    self._predict = jax.jit(method.predict)
    self.skipped: Dict[str, str] = {}     # evaluator -> why it did not run
    self.plots_dir: Optional[str] = None  # evaluators write figures here
    self.progress = False                 # a progress bar per data group
    sharding.check_divisible('eval batch_size', max(
        [d.batch_size for d in self._data.values() if d.batch_size > 1]
        or [jax.device_count()]))

  def every_steps(self, name: str) -> int:
    every = self.cfgs[name].get('every_steps')
    return self.config.get('eval_every_steps', 0) if every is None else every

  def due(self, step: int, is_last: bool):
    """Evaluators to run after `step` (every_steps <= 0: never in training;
    each runs at the end of training unless it never runs)."""
    return [n for n in self.evaluators if self.every_steps(n) > 0 and (
        step % self.every_steps(n) == 0 or is_last)]

  def run(self, state, names: Optional[Iterable[str]] = None,
          writer=None, step: Optional[int] = None,
          samples_dir: Optional[str] = None) -> Results:
    """{evaluator name: {metric: value}}; writes scalars and images."""
    names = list(self.evaluators) if names is None else list(names)
    groups = collections.defaultdict(list)
    for name in names:
      groups[self._data[name].key()].append(name)
    results = {}
    for group in groups.values():
      results.update(self._run_group(state, group, writer, step,
                                     samples_dir))
    if writer is not None and step is not None:
      writer.write_scalars(step, {f'{name}/{k}': v
                                  for name, values in results.items()
                                  for k, v in values.items()})
    return results

  def protocol(self, name: str) -> dict:
    return self._data[name].protocol()

  def artifacts(self):
    """Files the evaluators wrote in the last run (plots)."""
    return [path for e in self.evaluators.values()
            for path in getattr(e, 'artifacts', [])]

  def _skip_or_raise(self, name: str, reason: str):
    if self.cfgs[name].get('skip_if_missing', False):
      logging.info('evaluator %s skipped: %s', name, reason)
      self.skipped[name] = reason
      return
    raise ValueError(f'evaluator {name!r} ({self.cfgs[name].type}) cannot '
                     f'run: {reason}')

  def _run_group(self, state, names, writer, step, samples_dir) -> Results:
    data = self._data[names[0]]
    source = data.source()
    spec = pipeline.LoaderSpec.one_pass(
        data.dataset, data.split, data.batch_size, data.preprocess,
        data_dir=data.data_dir, worker_count=data.worker_count,
        source_keys=data.source_keys())
    available = data.available_keys(source, spec)
    active = []
    for name in names:
      missing = [k for k in self.evaluators[name].needs_keys
                 if k not in available]
      if missing:
        self._skip_or_raise(name, f'{data.describe()} has no {missing} after '
                            'preprocessing')
      else:
        active.append(name)
    missing = [k for k in self.method.predict_keys if k not in available]
    if missing:
      raise ValueError(f'{data.describe()} gives no {missing}, which '
                       f'{self.config.method}.predict reads')
    keys = (set(self.method.predict_keys) |
            ({'valid', *getattr(self.method, 'predict_optional_keys', ())}
              & available))
    for name in active:
      keys |= set(self.evaluators[name].needs_keys)
      self.evaluators[name].start()
      if hasattr(self.evaluators[name], 'plots_dir'):
        self.evaluators[name].plots_dir = self.plots_dir
    spec = dataclasses.replace(spec, keys=tuple(sorted(keys)))
    # One photo per batch (the full protocol at the photo's aspect) is
    # padded with masked copies to a batch every device gets a share of.
    local_batch = sharding.process_batch_size(
        data.batch_size if data.batch_size > 1 else jax.device_count())
    seed = jax.random.PRNGKey(self.config.get('seed', 0))
    count = 0
    if data.max_batches is not None:
      # Read only these records: stopping a loader with worker processes
      # early strands its prefetched shared-memory batches (leaked at exit).
      source = _Head(source, data.max_batches * data.batch_size)
    total = -(-len(source) // data.batch_size)
    loader = pipeline.create_loader(spec, source)
    if self.progress and jax.process_index() == 0:
      loader = tqdm.tqdm(loader, total=total, unit='batch', leave=False,
                         desc=f'{"+".join(names)} on {data.describe()}')
    for index, local in enumerate(loader):
      batch = sharding.global_batch(self.mesh, pipeline.pad_batch(local, local_batch))
      outputs = {}
      if any(self.evaluators[n].needs_predict for n in active):
        outputs = self._predict(state, batch)
      if index == 0:
        for name in list(active):
          reason = self.evaluators[name].unavailable(outputs)
          if reason:
            self._skip_or_raise(name, reason)
            active.remove(name)
      rng = jax.random.fold_in(seed, index)
      for name in active:
        self.evaluators[name].update(state, batch, outputs, rng, index)
      count += 1
    if count == 0:
      raise ValueError(f'evaluation data {data.describe()} is empty')
    return {name: self.evaluators[name].finish(writer, step, samples_dir)
            for name in active}


def flatten(results: Results) -> Dict[str, Any]:
  """One dict of every evaluator's metrics (a name seen twice gets the
  evaluator's name as prefix)."""
  flat = {}
  for name, values in results.items():
    for key, value in values.items():
      flat[f'{name}/{key}' if key in flat else key] = value
  return flat
