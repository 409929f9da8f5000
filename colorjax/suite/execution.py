"""Executing one suite run: train, evaluate, profile, record.

`execute` trains a planned run (resuming from its last checkpoint; an
evaluation-only run gets a view of its source's checkpoints instead),
evaluates it under the suite's preset, scores its own classification heads
and profiles its `predict` (parameters, GFLOPs, latency), writing
everything to the run's record (RUN_RECORD) so that a rerun skips it.
"""

import contextlib
import json
import math
import os
import sys
import time
from typing import Any, Dict, Optional

import jax
import numpy as np

from colorjax import config_lib
from colorjax import evaluate
from colorjax import methods
from colorjax import profiling
from colorjax import results as results_lib
from colorjax import train
from colorjax import workdir as workdir_lib
from colorjax.data import pipeline
from colorjax.data import preprocess
from colorjax.suite import planning


@contextlib.contextmanager
def _output_to(path: str):
  """Everything written to this process's stdout/stderr (and by its child
  processes) goes to `path` meanwhile: the trainer's lines, library
  warnings, XLA's C++ logs."""
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(1), os.dup(2)
  with open(path, 'a', buffering=1) as log:
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
      # sys.stdout need not be file descriptor 1 (a captured stream).
      with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      os.close(saved[0])
      os.close(saved[1])


def latest_step(workdir: str) -> Optional[int]:
  """The workdir's latest checkpoint step, None without one."""
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return None
  steps = [int(d) for d in os.listdir(directory) if d.isdigit()]
  return max(steps) if steps else None


def train_images_per_s(workdir: str, after_step: int,
                       batch_size: int) -> Optional[float]:
  """Median logged steps/s after `after_step` x batch, over the log
  windows after the attempt's first (which holds the compilation); None
  with fewer than two windows."""
  path = os.path.join(workdir, 'metrics.jsonl')
  rates = []
  if os.path.isfile(path):
    with open(path) as f:
      for line in f:
        record = json.loads(line)
        if (record.get('step', 0) > after_step and
            'train/steps_per_sec' in record):
          rates.append(record['train/steps_per_sec'])
  if len(rates) < 2:
    return None
  return float(np.median(rates[1:])) * batch_size


def example_batch(config, count: int, source_index: int = 0):
  """The first `count` evaluation examples, preprocessed as the model
  protocol does, with the keys predict reads (and `l`, `ab`)."""
  data = config.data
  source = pipeline.data_source(data.dataset, data.eval_split,
                                data.get('data_dir'),
                                tuple(data.get('joins') or ()))
  spec = data.preprocess_eval
  if data.get('label_ops'):
    spec = f'{data.label_ops}|{spec}'
  ops = preprocess.parse(spec)
  method = methods.get_method(config)
  keys = (set(method.predict_keys) | set(method.predict_optional_keys) |
          {'l', 'ab'})
  examples = [preprocess.apply(ops, source[source_index + i])
              for i in range(min(count, len(source)))]
  return method, {k: np.stack([np.asarray(e[k]) for e in examples])
                  for k in keys if k in examples[0]}


def profile(workdir: str, calls: int) -> Dict[str, Any]:
  """Parameters, predict GFLOPs per image and latency (batch 1)."""
  config = workdir_lib.load_config(workdir)
  method, state = workdir_lib.restore_for_inference(workdir, config)
  _, batch = example_batch(config, 1)
  inputs = {k: v for k, v in batch.items()
            if k in method.predict_keys or k in method.predict_optional_keys}
  by_network = {name: int(sum(x.size for x in jax.tree.leaves(params)))
                for name, params in state.params.items()}
  compiled = jax.jit(method.predict).lower(state, inputs).compile()
  flops = profiling.compiled_flops(compiled)
  record = {}
  if method.samples:
    # XLA's cost analysis counts a loop body once: the autoregressive
    # sampler's loop is priced as one pixel. A teacher-forced forward pass
    # computes every pixel at once: the work the cached sampler spreads
    # over its loop (each row / pixel computed once), which it is counted
    # as instead.
    record['gflops_predict_xla'] = flops / 1e9
    flops = _teacher_forced_flops(method, state, batch, config)

  def call():
    jax.block_until_ready(compiled(state, inputs))

  for _ in range(2):
    call()
  times = []
  for _ in range(max(calls, 1)):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  record.update(parameters=sum(by_network.values()),
                parameters_by_network=by_network, gflops=flops / 1e9,
                latency_ms=1000 * float(np.median(times)))
  return record


def _teacher_forced_flops(method, state, batch, config) -> float:
  """FLOPs of a sampling method's network on the gray image and a given
  chroma map (PixSem: its Polyak-averaged model on `ab_small`), the
  pass its training step differentiates; NaN when the method has none."""
  model = getattr(method, 'model', None)
  if model is None or 'ema' not in state.model_state:
    return math.nan
  small = config.data.image_size // config.data.get('downsample', 1)
  ab = np.zeros((1, small, small, 2), np.float32)
  forward = jax.jit(lambda s, gray, ab: model.apply(
      {'params': s.model_state['ema']}, gray, ab))
  return profiling.compiled_flops(
      forward.lower(state, batch['gray'], ab).compile())


def auxiliary_heads(workdir: str, max_images: int) -> Dict[str, float]:
  """Top-1 of the config's own classification evaluators (003's image
  tags, 001's scene head) on the same images: {evaluator: top1}. Not part
  of the preset: each reads a target only its config's preprocessing
  makes (multi-hot tags, scene one-hot)."""
  config = workdir_lib.load_config(workdir)
  names = [n for n, c in (config.get('evals') or {}).items()
           if c.get('type') == 'classification']
  if not names:
    return {}
  results = evaluate.evaluate_workdir(workdir, names=names,
                                      resolution='model',
                                      max_images=max_images)
  return {n: float(v['top1']) for n, v in results['evals'].items()
          if 'top1' in v}


def _gt_maps_view(run: planning.Run) -> None:
  """An evaluation-only workdir: the source run's checkpoints (a link) and
  its config with the ground-truth map added to the evaluation input, so
  every evaluator scores the colorizer under the true maps."""
  config = workdir_lib.load_config(run.source)
  config.data.preprocess_eval = config.data.preprocess_eval + '|semantic_map'
  os.makedirs(run.workdir, exist_ok=True)
  link = os.path.join(run.workdir, 'checkpoints')
  if not os.path.lexists(link):
    os.symlink(os.path.relpath(os.path.join(run.source, 'checkpoints'),
                               run.workdir), link)
  workdir_lib.save_config(config, run.workdir)


def _finished(run: planning.Run, record: Optional[dict], eval_path: str,
              max_images: int) -> bool:
  """Trained to the planned step, evaluated there on as many images, and
  profiled."""
  if not (record and record.get('profile')):
    return False
  if not run.eval_only and record.get('trained_steps') != run.steps:
    return False
  if not run.row:
    return True
  metrics = results_lib.read_json(eval_path)
  return bool(metrics and metrics.get('step') == run.steps and all(
      entry.get('max_images') == max_images
      for entry in metrics.get('protocol', {}).values()))


def execute(run: planning.Run, preset: str, max_images: int,
            latency_calls: int) -> Dict[str, Any]:
  """Trains (unless done), evaluates and profiles one run; returns its
  record (RUN_RECORD in its workdir). 'skipped' is True when everything
  was done before."""
  record_path = os.path.join(run.workdir, planning.RUN_RECORD)
  eval_dir = os.path.join(run.workdir, 'eval', preset)
  eval_path = results_lib.results_path(run.workdir, preset)
  record = results_lib.read_json(record_path) or {}
  if _finished(run, record, eval_path, max_images):
    return dict(record, skipped=True)
  os.makedirs(run.workdir, exist_ok=True)
  log = os.path.join(run.workdir, 'suite.log')
  record.update(method=run.method, variant=run.variant, seed=run.seed,
                config=run.config, overrides=run.overrides,
                command=run.command(), steps=run.steps,
                batch_size=run.batch_size)
  with _output_to(log):
    if run.eval_only:
      _gt_maps_view(run)
    elif record.get('trained_steps') != run.steps:
      latest = latest_step(run.workdir)
      if latest is not None and latest > run.steps:
        raise ValueError(f'{run.workdir} holds step {latest}, more than the '
                         f'{run.steps} planned: use another --output')
      start_step = latest or 0
      if start_step < run.steps:
        config = planning.apply_overrides(
            config_lib.load_config(run.config, planning.REPO), run.overrides)
        train.ensure_dataset(config)        # generated once, not timed
        started = time.perf_counter()
        train.train_and_evaluate(config, run.workdir)
        seconds = time.perf_counter() - started
        record.update(train_s=seconds, resumed_from_step=start_step,
                      train_images_per_s=train_images_per_s(
                          run.workdir, start_step, run.batch_size))
      record['trained_steps'] = run.steps
      results_lib.write_json(record_path, record)
    if run.row:
      started = time.perf_counter()
      results = evaluate.evaluate_workdir(run.workdir, preset=preset,
                                          max_images=max_images,
                                          plots_dir=eval_dir)
      results_lib.write_json(eval_path, results)
      with open(os.path.join(eval_dir, 'metrics.md'), 'w') as f:
        f.write(evaluate.markdown(results))
      record['eval_s'] = time.perf_counter() - started
      started = time.perf_counter()
      record['aux'] = auxiliary_heads(run.workdir, max_images)
      record['profile'] = profile(run.workdir, latency_calls)
      record['profile_s'] = time.perf_counter() - started
    else:
      record['profile'] = {'stage': 'trained'}
    results_lib.write_json(record_path, record)
  jax.clear_caches()
  return dict(record, skipped=False)
