"""The shared trainer: loop, sharding, checkpoints, metrics, evaluation.

It knows nothing about any paper: a method (colorjax.methods) supplies
init_state / train_step / predict, and the trainer
  * builds a 1-D data mesh over all devices of all processes, creates the
    state sharded from the start (eval_shape -> jit(init, out_shardings)),
    and jits the train step with in/out shardings and a donated state;
  * derives each step's key as fold_in(seed key, step), so a resumed run
    replays exactly the randomness of an uninterrupted one;
  * checkpoints the state and the grain iterator with orbax (async), and
    resumes automatically from the workdir;
  * averages the step's losses in clu metric collections (reduced in the
    jitted step, merged on the host between log steps);
  * writes scalars and image grids through clu writers (TensorBoard) and a
    JSON-lines log, from process 0 only; stops on a NaN/Inf loss before it
    can reach a checkpoint.
"""

import itertools
import json
import os
import time
from typing import Any, Dict, Iterator, Optional

from absl import logging
import grain
import jax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from colorjax import evaluation
from colorjax import metrics as metrics_lib
from colorjax import methods
from colorjax.data import pipeline

CONFIG_FILE = 'config.json'


class NonFiniteLossError(FloatingPointError):
  """Raised when a logged training value is NaN or Inf."""


# ---------------------------------------------------------------- config io
def save_config(config: ml_collections.ConfigDict, workdir: str):
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG_FILE), 'w') as f:
      f.write(config.to_json_best_effort(indent=1, sort_keys=True))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with (later commands need only it)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: is {workdir} a colorjax '
                            'workdir (created by python -m colorjax.main)?')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


# ---------------------------------------------------------------- sharding
def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh, batch) -> Dict[str, NamedSharding]:
  return {k: NamedSharding(mesh, P(pipeline.DATA_AXIS,
                                   *([None] * (len(v.shape) - 1))))
          for k, v in batch.items()}


def abstract_batch(method, config, mesh, batch_size=None):
  """Shapes of one global batch, sharded over the data axis."""
  sharding = NamedSharding(mesh, P(pipeline.DATA_AXIS))
  return method.example_batch(batch_size or config.data.batch_size,
                              config.data.image_size, sharding)


def check_batch(batch, expected):
  """The pipeline must produce exactly what the method was built for."""
  got = {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in batch.items()}
  want = {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in expected.items()}
  if got != want:
    raise ValueError(f'the input pipeline produces {got} but the method '
                     f'expects {want}: check data.preprocess_train and '
                     'data.image_size')


def create_state(method, config, mesh, batch_shapes):
  """Sharded initial state (params replicated over the data axis)."""
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(method.init_state, rng, batch_shapes)
  shardings = jax.tree.map(lambda _: replicated(mesh), abstract)
  init = jax.jit(method.init_state, out_shardings=shardings)
  return init(rng, batch_shapes), shardings


def restore_for_inference(workdir: str, config=None, step=None):
  """(method, state) from a workdir's latest (or given) checkpoint."""
  config = config or load_config(workdir)
  mesh = pipeline.data_mesh()
  method = methods.get_method(config)
  batch = abstract_batch(method, config, mesh,
                         batch_size=len(mesh.devices.flat))
  abstract = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                     sharding=replicated(mesh)), abstract)
  manager = checkpoint_manager(workdir, config)
  if manager.latest_step() is None:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
  state = restore_state(manager, abstract, step)
  manager.close()
  return method, state


# ---------------------------------------------------------------- datasets
def ensure_dataset(config):
  """Generates the embedded dataset on first use; real ones must be prepared."""
  if not config.data.dataset.startswith('semantic_shapes'):
    return
  try:
    pipeline.data_source(config.data.dataset, config.data.train_split,
                         config.data.get('data_dir'))
  except FileNotFoundError:
    if jax.process_index() == 0:
      from colorjax.datasets import prepare  # pylint: disable=g-import-not-at-top
      logging.info('generating %s (embedded dataset)', config.data.dataset)
      prepare.prepare(config.data.dataset,
                      data_dir=config.data.get('data_dir'))
  multihost_utils.sync_global_devices('ensure_dataset')


# ---------------------------------------------------------------- checkpoints
def checkpoint_manager(workdir: str, config) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=config.max_checkpoints_to_keep,
      save_interval_steps=1,          # the loop decides when to save
      enable_async_checkpointing=True)
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), 'checkpoints'),
      options=options,
      item_handlers={'state': ocp.StandardCheckpointHandler(),
                     'data': grain.checkpoint.CheckpointHandler()})


def restore_state(manager, abstract_state, step: Optional[int] = None,
                  data_iterator=None):
  step = manager.latest_step() if step is None else step
  args = {'state': ocp.args.StandardRestore(abstract_state)}
  if data_iterator is not None:
    args['data'] = grain.checkpoint.CheckpointRestore(data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**args))
  return restored['state']


# ---------------------------------------------------------------- writers
def _json_lines_writer(path: str):
  """Scalars as one JSON object per line: readable without TensorBoard."""
  from clu import metric_writers  # pylint: disable=g-import-not-at-top

  class JsonLinesWriter(metric_writers.interface.MetricWriter):
    """Writes scalars only; other summaries go to TensorBoard."""

    def __init__(self):
      self._file = open(path, 'a')

    def write_summaries(self, step, values, metadata=None):
      pass

    def write_scalars(self, step, scalars):
      record = {'step': int(step)}
      record.update({k: float(v) for k, v in scalars.items()})
      self._file.write(json.dumps(record) + '\n')

    def write_images(self, step, images):
      pass

    def write_videos(self, step, videos):
      pass

    def write_audios(self, step, audios, *, sample_rate):
      pass

    def write_texts(self, step, texts):
      pass

    def write_histograms(self, step, arrays, num_buckets=None):
      pass

    def write_hparams(self, hparams):
      pass

    def flush(self):
      self._file.flush()

    def close(self):
      self._file.close()

  return JsonLinesWriter()


def create_writer(workdir: str):
  """clu writers (TensorBoard + log) and metrics.jsonl; process 0 only.

  clu's writers import TensorFlow, so they are imported here, not at module
  level: inference and benchmarks never load TensorFlow.
  """
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  if jax.process_index() != 0:
    return metric_writers.create_default_writer(workdir, just_logging=True)
  os.makedirs(workdir, exist_ok=True)
  return metric_writers.MultiWriter([
      metric_writers.create_default_writer(workdir, asynchronous=False),
      _json_lines_writer(os.path.join(workdir, 'metrics.jsonl'))])


def check_finite(step: int, scalars: Dict[str, float]):
  bad = {k: v for k, v in scalars.items() if not np.isfinite(v)}
  if bad:
    raise NonFiniteLossError(
        f'non-finite training values at step {step}: {bad}. Training '
        'stopped; the last checkpoint (saved before this point) is intact. '
        'Lower the learning rate or use float32 compute.')


# ---------------------------------------------------------------- the loop
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       stop_after_step: Optional[int] = None) -> Dict[str, Any]:
  """Trains `config` in `workdir`, resuming from its latest checkpoint.

  stop_after_step: return right after that many steps without a final
  checkpoint, as a killed job would (used to test resumption).
  Returns the last train and eval metrics.
  """
  workdir = os.path.abspath(workdir)
  mesh = pipeline.data_mesh()
  for name in ('batch_size', 'eval_batch_size'):
    if config.data[name] % jax.device_count():
      raise ValueError(f'config.data.{name}={config.data[name]} must be a '
                       f'multiple of the {jax.device_count()} devices')
  method = methods.get_method(config)
  save_config(config, workdir)
  ensure_dataset(config)

  train_spec = pipeline.LoaderSpec.from_config(
      config.data, config.data.train_split, train=True)
  train_iter = iter(pipeline.create_loader(train_spec))   # fails fast
  batch_shapes = abstract_batch(method, config, mesh)
  state, state_shardings = create_state(method, config, mesh, batch_shapes)
  manager = checkpoint_manager(workdir, config)
  if manager.latest_step() is not None:
    logging.info('resuming from step %d', manager.latest_step())
    state = restore_state(manager, state, data_iterator=train_iter)
  else:
    state = jax.device_put(method.load_pretrained(state), state_shardings)
  start_step = int(state.step)

  in_batch = batch_sharding(mesh, batch_shapes)
  train_step = jax.jit(_with_metric_collection(method.train_step),
                       in_shardings=(state_shardings, in_batch,
                                     replicated(mesh)),
                       out_shardings=(state_shardings, replicated(mesh)),
                       donate_argnums=(0,))
  evaluator = evaluation.Evaluator(method, config, mesh)
  writer = create_writer(workdir)
  from clu import periodic_actions  # pylint: disable=g-import-not-at-top
  if start_step == 0:
    writer.write_hparams({k: v for k, v in config.items()
                          if isinstance(v, (int, float, str, bool))})
  progress = periodic_actions.ReportProgress(
      num_train_steps=config.num_train_steps, writer=writer,
      every_steps=config.log_every_steps)
  base_rng = jax.random.PRNGKey(config.seed + 1)
  batches = pipeline.global_batches(train_iter, mesh)
  first = next(batches)
  check_batch(first, batch_shapes)
  batches = itertools.chain([first], batches)

  try:
    last_train, last_eval = _loop(
        config, workdir, start_step, state, train_step, batches, train_iter,
        manager, evaluator, writer, progress, base_rng, stop_after_step)
  finally:
    manager.wait_until_finished()   # a pending save completes even on error
    manager.close()
    writer.flush()
  return {'train': last_train, 'eval': last_eval}


def _with_metric_collection(method_train_step):
  """Wraps a method's step so it returns a clu collection of its averages.

  The reduction runs in the jitted step; the host merges collections between
  log steps without fetching every step's values.
  """
  def train_step(state, batch, rng):
    state, step_metrics = method_train_step(state, batch, rng)
    collection = metrics_lib.averages(step_metrics)
    return state, collection.single_from_model_output(**step_metrics)
  return train_step


def _loop(config, workdir, start_step, state, train_step, batches, train_iter,
          manager, evaluator, writer, progress, base_rng, stop_after_step):
  """The training loop proper; returns the last train and eval metrics."""
  pending = None
  last_train, last_eval = {}, {}
  last_log_time, last_log_step = time.time(), start_step
  for step in range(start_step, config.num_train_steps):
    with jax.profiler.StepTraceAnnotation('train', step_num=step):
      batch = next(batches)
      state, step_metrics = train_step(state, batch,
                                       jax.random.fold_in(base_rng, step))
    pending = step_metrics if pending is None else pending.merge(step_metrics)
    done = step + 1
    progress(done)
    is_last = done == config.num_train_steps
    save_now = done % config.checkpoint_every_steps == 0 or is_last
    if done % config.log_every_steps == 0 or save_now:
      scalars = {k: float(v) for k, v in
                 jax.device_get(pending.compute()).items()}
      pending = None
      check_finite(done, scalars)      # before any checkpoint of this state
      now = time.time()
      steps_per_sec = (done - last_log_step) / max(now - last_log_time, 1e-9)
      scalars['steps_per_sec'] = steps_per_sec
      scalars['eta_hours'] = (config.num_train_steps - done) / max(
          steps_per_sec, 1e-9) / 3600.0
      last_log_time, last_log_step = now, done
      writer.write_scalars(done, {f'train/{k}': v for k, v in
                                  scalars.items()})
      last_train = scalars
    if done % config.eval_every_steps == 0 or is_last:
      last_eval = evaluator.evaluate(
          state, writer, done, samples_dir=os.path.join(workdir, 'samples'))
    if save_now:
      manager.save(done, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          data=grain.checkpoint.CheckpointSave(train_iter)))
    writer.flush()
    if stop_after_step is not None and done >= stop_after_step:
      break
  return last_train, last_eval
