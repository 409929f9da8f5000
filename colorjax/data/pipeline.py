"""grain input pipeline: tfds ArrayRecord source -> sharded global jax.Arrays.

Each process reads its own shard of the records (`ShardByJaxProcess`),
shuffles with a seed shared by all processes, runs the preprocessing ops in
`worker_count` worker processes, batches its `global_batch / process_count`
examples, and `global_batches` assembles them into one global jax.Array per
key, sharded over the mesh's data axis. The DataLoader iterator's state can
be saved and restored (grain's orbax handler), so a resumed run sees the
same examples in the same order.
"""

import dataclasses
import os
from typing import Dict, Optional, Tuple

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds

from colorjax import errors
from colorjax import sharding
from colorjax.data import joins as joins_lib
from colorjax.data import preprocess
from colorjax.datasets import prepare as prepare_lib
from colorjax.sharding import DATA_AXIS  # pylint: disable=unused-import


@dataclasses.dataclass(frozen=True)
class LoaderSpec:
  """What a loader needs; built from the `data` part of a config."""
  dataset: str                   # tfds name, e.g. 'semantic_shapes/64'
  split: str
  global_batch_size: int
  preprocess: str                # preprocess.parse spec
  data_dir: Optional[str] = None
  shuffle: bool = True
  seed: int = 0
  num_epochs: Optional[int] = None   # None = repeat forever
  worker_count: int = 0
  worker_buffer_size: int = 2
  drop_remainder: bool = True
  keys: Optional[Tuple[str, ...]] = None   # batch keys kept (None: all)
  # The keys the source's examples hold, when not all the preprocessing
  # can apply (an unlabeled photo folder): ops reading others are dropped.
  source_keys: Optional[Tuple[str, ...]] = None
  # Per-example tables joined to the source by example id ('scene_labels':
  # colorjax.datasets.scene_labels adds `scene`).
  joins: Tuple[str, ...] = ()

  @classmethod
  def from_config(cls, data_config, split: str, train: bool, **overrides):
    """The dataset's label ops (catalog) then the config's preprocessing."""
    fields = dict(
        dataset=data_config.dataset,
        split=split,
        global_batch_size=data_config.batch_size,
        preprocess=with_label_ops(data_config, data_config.preprocess_train
                                  if train else data_config.preprocess_eval),
        data_dir=data_config.get('data_dir'),
        shuffle=train,
        seed=data_config.get('seed', 0),
        num_epochs=None if train else 1,
        worker_count=data_config.get('worker_count', 0),
        drop_remainder=train,
        joins=tuple(data_config.get('joins') or ()))
    fields.update(overrides)
    return cls(**fields)

  @classmethod
  def one_pass(cls, dataset: str, split: str, global_batch_size: int,
               preprocess: str, **fields):
    """Every example once, in order, the last batch partial (evaluation,
    teacher labels, statistics): pad it with `pad_batch`."""
    fields = dict(dict(shuffle=False, num_epochs=1, drop_remainder=False),
                  **fields)
    return cls(dataset=dataset, split=split,
               global_batch_size=global_batch_size, preprocess=preprocess,
               **fields)


def with_label_ops(data_config, spec: str) -> str:
  """`spec` after the dataset's label ops (`data.label_ops`: class remaps
  of its catalog entry), which every reader of its labelled splits runs."""
  label_ops = data_config.get('label_ops')
  return f'{label_ops}|{spec}' if label_ops else spec


def pad_batch(batch: Dict[str, np.ndarray], size: int) -> Dict[str, np.ndarray]:
  """Pads a one-pass loader's partial batch to `size` examples and adds
  `mask` (1 = a real, readable image), so every image is scored once
  whatever the batch size or device count."""
  count = len(next(iter(batch.values())))
  out = {k: np.concatenate([v, np.zeros((size - count,) + v.shape[1:],
                                        v.dtype)]) if count < size else v
         for k, v in batch.items() if k != 'valid'}
  mask = np.zeros(size, np.float32)
  mask[:count] = batch['valid'] if 'valid' in batch else 1.0
  out['mask'] = mask
  return out


def data_source(dataset: str, split: str, data_dir: Optional[str] = None,
                joins: Tuple[str, ...] = ()):
  """tfds ArrayRecord source, with a helpful error when not prepared, and
  the `joins` tables attached by example id."""
  return joins_lib.join(_tfds_source(dataset, split, data_dir), joins,
                        dataset, split, data_dir)


def _tfds_source(dataset: str, split: str, data_dir: Optional[str] = None):
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  try:
    # Checked here: tfds.data_source would build a missing dataset itself
    # (as TFRecord, which it cannot then read randomly) or fail on its
    # default file format before looking for the files.
    builder = prepare_lib.builder(dataset, data_dir=data_dir)
    if not builder.is_prepared():
      raise FileNotFoundError(f'nothing prepared in {builder.data_dir}')
    return builder.as_data_source(split=split)
  except (FileNotFoundError, AssertionError, ValueError,
          tfds.core.registered.DatasetNotFoundError) as e:
    name = dataset.split('/')[0]
    prepare = ('python -m colorjax.datasets.prepare '
               f'--dataset={dataset}')
    if not name.startswith('semantic_shapes'):
      prepare += ' --manual_dir=WHERE_IT_IS_UNPACKED'
    if data_dir:
      prepare += f' --data_dir={data_dir}'
    raise errors.MissingFileError(
        f'dataset {dataset!r} split {split!r} is not prepared in '
        f'{data_dir or "~/tensorflow_datasets"} ({type(e).__name__}: {e}).\n'
        f'Prepare it with:\n  {prepare}\n'
        'or train on the embedded dataset with a `:demo` config.') from e


class GlobalBatchSampler:
  """This process's slice of every global batch of one global record order.

  All processes draw the same shuffled sequence of (record, rng) and
  process p reads positions [p*b, (p+1)*b) of each global batch of B = P*b.
  Which examples form global batch k, and their augmentations, therefore
  do not depend on the number of processes: a run on 1 host and on 8 hosts
  sees the same data, and only this process's records are ever read.
  """

  def __init__(self, global_sampler, local_batch: int, process_index: int,
               process_count: int):
    self._global = global_sampler
    self._local_batch = local_batch
    self._process_index = process_index
    self._global_batch = local_batch * process_count
    # grain reads the sharding of the loader from here: no further striding.
    self._shard_options = grain.sharding.NoSharding()

  def __getitem__(self, index: int):
    batch, offset = divmod(index, self._local_batch)
    global_index = (batch * self._global_batch
                    + self._process_index * self._local_batch + offset)
    inner = self._global[global_index]
    return grain.RecordMetadata(index=index, record_key=inner.record_key,
                                rng=inner.rng)

  def __repr__(self):   # part of the checkpointed iterator state
    return (f'GlobalBatchSampler({self._global!r}, local_batch='
            f'{self._local_batch}, process={self._process_index}/'
            f'{self._global_batch // self._local_batch})')


def parse_ops(spec: LoaderSpec):
  """The spec's preprocessing ops (those its source can feed)."""
  ops = preprocess.parse(spec.preprocess)
  if spec.source_keys is not None:
    ops, _ = preprocess.without_unavailable(ops, spec.source_keys)
  return ops


class Loader:
  """A grain DataLoader whose batches own their memory.

  With worker processes grain hands batches over as views of shared-memory
  segments, unlinked when the view is garbage-collected. A view still alive
  when the interpreter exits (the last batch, or an array that
  `jax.device_put` aliased without copying on CPU) is never collected, and
  the resource tracker reports it as leaked shared memory. Copying each array
  out (one memcpy per batch) and unlinking its segment at once (grain would
  unlink it later, on a thread pool that may not run before exit) releases
  every segment as soon as it arrives.
  """

  def __init__(self, data_loader: grain.DataLoader):
    self.data_loader = data_loader

  def __iter__(self) -> 'LoaderIterator':
    return LoaderIterator(iter(self.data_loader))


class LoaderIterator:
  """Batches of plain numpy arrays; everything else (get_state, set_state,
  start_prefetch: what grain's checkpoint handler calls) is the grain
  iterator's."""

  def __init__(self, iterator):
    self._iterator = iterator

  def __getattr__(self, name):
    return getattr(self._iterator, name)

  def __iter__(self):
    return self

  def __next__(self):
    return jax.tree.map(_owned, next(self._iterator))


def _owned(leaf):
  if isinstance(leaf, np.ndarray) and type(leaf) is not np.ndarray:
    copy = np.array(leaf, copy=True)   # a shared-memory view (ndarray subclass)
    if getattr(leaf, '_unlink_on_del', False):
      leaf._unlink_on_del = False      # grain's __del__ now only closes it
      leaf.shm.unlink()
    return copy
  return leaf


def create_loader(spec: LoaderSpec, source=None, shard_options=None) -> Loader:
  """A loader yielding this process's numpy batches.

  Training loaders (infinite, shuffled, drop_remainder) read this process's
  slice of each global batch (`GlobalBatchSampler`). Finite evaluation
  loaders split the records into equal contiguous shards
  (`shard_options`, default this JAX process's), dropping fewer than
  process_count records so every process runs the same number of batches.
  """
  source = source if source is not None else data_source(
      spec.dataset, spec.split, spec.data_dir, spec.joins)
  local_batch = sharding.process_batch_size(spec.global_batch_size)
  if spec.num_epochs is None and spec.drop_remainder and shard_options is None:
    sampler = GlobalBatchSampler(
        grain.samplers.IndexSampler(
            num_records=len(source), shuffle=spec.shuffle, num_epochs=None,
            seed=spec.seed),
        local_batch, jax.process_index(), jax.process_count())
  else:
    sampler = grain.samplers.IndexSampler(
        num_records=len(source),
        shard_options=shard_options or grain.sharding.ShardByJaxProcess(
            drop_remainder=True),
        shuffle=spec.shuffle,
        num_epochs=spec.num_epochs,
        seed=spec.seed)
  operations = parse_ops(spec)
  if spec.keys is not None:
    operations.append(preprocess.Keep(tuple(spec.keys)))
  operations += [
      grain.transforms.Batch(local_batch, drop_remainder=spec.drop_remainder)]
  return Loader(grain.DataLoader(
      data_source=source,
      sampler=sampler,
      operations=operations,
      worker_count=spec.worker_count,
      worker_buffer_size=spec.worker_buffer_size))

