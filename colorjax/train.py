"""The shared training loop.

It knows nothing about any paper: a method (colorjax.methods) supplies
batch_spec / init_state / train_step / predict, and the loop
  * creates the state sharded from the start (eval_shape -> jit(init,
    out_shardings)) on the data mesh (colorjax.sharding), loads the method's
    pretrained weights and the networks named by `config.init_from`
    (recorded in <workdir>/pretrained.json), and jits the step with a
    donated state;
  * derives each step's key as fold_in(seed key, step), so a resumed run
    replays exactly the randomness of an uninterrupted one;
  * checkpoints the state and the grain iterator (colorjax.workdir) and
    resumes automatically;
  * averages the step's metrics in clu collections (reduced in the jitted
    step, merged on the host between log steps), logs the learning rate,
    feeds reduce-on-plateau schedules the metric they watch;
  * runs each evaluator of `config.evals` on its own cadence;
  * stops on a NaN/Inf before it can reach a checkpoint; only process 0
    writes files and prints.
"""

import itertools
import os
import time
from typing import Any, Dict, Optional

import jax
import ml_collections
import numpy as np

from colorjax import console
from colorjax import errors
from colorjax import evaluation
from colorjax import metrics as metrics_lib
from colorjax import methods
from colorjax import optimizers
from colorjax import sharding
from colorjax import workdir as workdir_lib
from colorjax import writers
from colorjax.data import pipeline
from colorjax.datasets import prepare


class NonFiniteLossError(errors.UserError, FloatingPointError):
  """Raised when a logged training value is NaN or Inf."""


def ensure_dataset(config):
  """Generates the embedded dataset on first use; real ones must be prepared."""
  if not config.data.dataset.startswith('semantic_shapes'):
    return
  try:
    pipeline.data_source(config.data.dataset, config.data.train_split,
                         config.data.get('data_dir'))
  except FileNotFoundError:
    if jax.process_index() == 0:
      console.say(f'generating {config.data.dataset} (embedded dataset, '
                  'once)...')
      prepare.prepare(config.data.dataset,
                      data_dir=config.data.get('data_dir'), quiet=True)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  multihost_utils.sync_global_devices('ensure_dataset')


def resolve_train_size(config, source) -> None:
  """Schedules in epochs follow the prepared split's real size."""
  if 'train_images' not in config.data:
    with config.unlocked():
      config.data.train_images = len(source)
  elif config.data.train_images != len(source):
    config.data.train_images = len(source)


def create_state(method, config, mesh, batch_shapes):
  """Sharded initial state (params replicated over the data axis)."""
  return sharding.init_replicated(method.init_state, mesh,
                                  jax.random.PRNGKey(config.seed),
                                  batch_shapes)


def start_from_weights(method, config, state, workdir: str):
  """A fresh state's pretrained parts: the method's weights files
  (`load_pretrained`, which says when a part the paper pretrains starts from
  random init), then `config.init_from`; the method's account of where its
  pretrained parts came from goes to <workdir>/pretrained.json."""
  state = method.load_pretrained(state)
  state = workdir_lib.apply_init_from(state, config.get('init_from'))
  workdir_lib.save_pretrained_record(workdir, method.pretrained_record())
  return state


def check_batch(batch, expected):
  """The pipeline must produce exactly what the method declared."""
  got = {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in batch.items()}
  want = {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in expected.items()}
  if got != want:
    raise ValueError(f'the input pipeline produces {got} but the method '
                     f'declares {want} (its batch_spec): check '
                     'data.preprocess_train and data.image_size')


def check_finite(step: int, scalars: Dict[str, float]):
  bad = {k: v for k, v in scalars.items() if not np.isfinite(v)}
  if bad:
    raise NonFiniteLossError(
        f'non-finite training values at step {step}: {bad}. Training '
        'stopped; the last checkpoint (saved before this point) is intact. '
        'Lower the learning rate or use float32 compute.')


def _with_metric_collection(method, config):
  """Wraps a method's step: adds the learning rate of each network, and
  returns a clu collection of the step's averages (reduced in the jitted
  step; the host merges collections between log steps)."""
  steps_per_epoch = methods.base.steps_per_epoch(config)

  def train_step(state, batch, rng):
    step = state.step
    state, step_metrics = method.train_step(state, batch, rng)
    networks = sorted(state.opt_state)
    for network in networks:
      rate = optimizers.learning_rate(
          config.optimizer, state.opt_state[network], step,
          config.num_train_steps, steps_per_epoch, network=network)
      key = ('learning_rate' if len(networks) == 1 else
             f'learning_rate_{network}')
      step_metrics[key] = rate
    collection = metrics_lib.averages(step_metrics)
    return state, collection.single_from_model_output(**step_metrics)
  return train_step


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       stop_after_step: Optional[int] = None) -> Dict[str, Any]:
  """Trains `config` in `workdir`, resuming from its latest checkpoint.

  stop_after_step: return right after that many steps without a final
  checkpoint, as a killed job would (used to test resumption).
  Returns the last train metrics, the last evaluation (flat: 'eval'; per
  evaluator: 'evals').
  """
  workdir = os.path.abspath(workdir)
  mesh = sharding.data_mesh()
  sharding.check_divisible('config.data.batch_size', config.data.batch_size)
  ensure_dataset(config)
  train_spec = pipeline.LoaderSpec.from_config(
      config.data, config.data.train_split, train=True)
  source = pipeline.data_source(train_spec.dataset, train_spec.split,
                                train_spec.data_dir, train_spec.joins)
  resolve_train_size(config, source)
  method = methods.get_method(config)
  batch_spec = method.batch_spec(config.data.batch_size)
  train_spec = pipeline.LoaderSpec.from_config(
      config.data, config.data.train_split, train=True,
      keys=tuple(sorted(batch_spec)))
  workdir_lib.save_config(config, workdir)
  console.say(f'{config.method}: {config.data.dataset} '
              f'{config.data.train_split} ({len(source):,} images), '
              f'{config.num_train_steps:,} steps of batch '
              f'{config.data.batch_size} on {jax.device_count()} '
              f'{jax.devices()[0].platform} device(s)')
  train_loader = pipeline.create_loader(train_spec, source)
  train_iter = iter(train_loader)
  batch_shapes = sharding.shard_specs(batch_spec, mesh)
  state, state_shardings = create_state(method, config, mesh, batch_shapes)
  manager = workdir_lib.checkpoint_manager(workdir, config)
  if manager.latest_step() is not None:
    console.say(f'resuming from step {manager.latest_step()} in {workdir}')
    state = workdir_lib.restore_state(manager, state,
                                      data_iterator=train_iter)
  else:
    state = start_from_weights(method, config, state, workdir)
    state = jax.device_put(state, state_shardings)
  start_step = int(state.step)
  sizes = {k: f'{sum(x.size for x in jax.tree.leaves(v)):,}'
           for k, v in state.params.items()}
  console.say('parameters: ' + ', '.join(f'{k} {v}' for k, v in
                                         sizes.items()))

  method.prepare_training(workdir)
  train_step = methods.base.jit_train_step(
      config, _with_metric_collection(method, config),
      in_shardings=(state_shardings,
                    {k: v.sharding for k, v in batch_shapes.items()},
                    sharding.replicated(mesh)),
      out_shardings=(state_shardings, sharding.replicated(mesh)),
      donate_argnums=(0,))
  plateau = optimizers.plateau_metric(config.optimizer)
  report = jax.jit(
      lambda opt_state, value: {k: optimizers.report_metric(v, value)
                                for k, v in opt_state.items()},
      out_shardings=state_shardings.opt_state, donate_argnums=(0,))
  evals = evaluation.Evaluation(method, config, mesh)
  writer = writers.create_writer(workdir)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in config.items()
                          if isinstance(v, (int, float, str, bool))})
  base_rng = jax.random.PRNGKey(config.seed + 1)
  batches = sharding.global_batches(train_iter, mesh)
  first = next(batches)
  check_batch(first, batch_spec)
  batches = itertools.chain([first], batches)
  loop = _Loop(config, workdir, train_step, train_iter, manager, evals,
               writer, base_rng, plateau, report)
  try:
    state = loop.run(state, start_step, batches, stop_after_step)
  finally:
    manager.wait_until_finished()   # a pending save completes even on error
    manager.close()
    writer.flush()
    del train_iter, train_loader
  return {'train': loop.last_train, 'eval': evaluation.flatten(
      loop.last_eval), 'evals': loop.last_eval}


class _Loop:
  """The training loop proper (state lives in the arguments, not here)."""

  def __init__(self, config, workdir, train_step, train_iter, manager, evals,
               writer, base_rng, plateau, report):
    self.config = config
    self.workdir = workdir
    self.train_step = train_step
    self.train_iter = train_iter
    self.manager = manager
    self.evals = evals
    self.writer = writer
    self.base_rng = base_rng
    self.plateau = plateau
    self.report = report
    self.last_train, self.last_eval = {}, {}

  def _feed_plateau(self, state, values: Dict[str, float]):
    if self.plateau is None or self.plateau[0] not in values:
      return state
    value = values[self.plateau[0]]
    return state.replace(opt_state=self.report(state.opt_state,
                                               np.float32(value)))

  def run(self, state, start_step, batches, stop_after_step):
    config = self.config
    total = config.num_train_steps
    pending = None
    progress = console.Progress(total, start_step)
    for step in range(start_step, total):
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        state, step_metrics = self.train_step(
            state, next(batches), jax.random.fold_in(self.base_rng, step))
      pending = step_metrics if pending is None else pending.merge(
          step_metrics)
      done = step + 1
      is_last = done == total
      save_now = done % config.checkpoint_every_steps == 0 or is_last
      if done % config.log_every_steps == 0 or save_now:
        scalars = {k: float(v) for k, v in
                   jax.device_get(pending.compute()).items()}
        pending = None
        check_finite(done, scalars)      # before any checkpoint of it
        rate = progress.update(done)
        scalars['steps_per_sec'] = rate
        scalars['eta_hours'] = progress.eta_seconds(done) / 3600.0
        self.writer.write_scalars(done, {f'train/{k}': v
                                         for k, v in scalars.items()})
        console.progress_line(done, total, rate, progress.eta_seconds(done),
                              scalars)
        self.last_train = scalars
        state = self._feed_plateau(
            state, {f'train/{k}': v for k, v in scalars.items()})
      due = self.evals.due(done, is_last)
      if due:
        started = time.time()
        results = self.evals.run(
            state, due, self.writer, done,
            samples_dir=os.path.join(self.workdir, 'samples'))
        console.eval_table(done, results, time.time() - started)
        self.last_eval = results
        state = self._feed_plateau(state, {
            f'{name}/{k}': v for name, values in results.items()
            for k, v in values.items()})
      if save_now:
        workdir_lib.save(self.manager, done, state, self.train_iter)
        console.say(f'checkpoint {done} -> '
                    f'{os.path.join(self.workdir, "checkpoints", str(done))}')
      self.writer.flush()
      if stop_after_step is not None and done >= stop_after_step:
        break
    return state
