"""The shared trainer on ChromaCMC's tiny config: end to end, resume,
device/process invariance, NaN guard, mixed precision."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from colorjax import train
from colorjax import workdir as workdir_lib

from conftest import REPO
from conftest import tiny_config
import chromacmc as chromacmc_config  # configs/, on sys.path via conftest


def read_log(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  return {r['step']: r for r in records if 'train/loss' in r}


def final_params(workdir):
  config = workdir_lib.load_config(workdir)
  _, state = workdir_lib.restore_for_inference(workdir, config)
  return jax.device_get(state.params)


def _assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _cli(args, env=None, timeout=600):
  return subprocess.Popen(
      [sys.executable, '-m', 'colorjax.main'] + args, cwd=REPO,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env={**os.environ, **(env or {})})


def _overrides(data_dir):
  return ['--config=configs/chromacmc.py:tiny',
          '--config.data.dataset=semantic_shapes/test:1.0.0',
          f'--config.data.data_dir={data_dir}']


@pytest.fixture
def uninterrupted(tiny_run):
  return tiny_run


def test_tiny_run_writes_everything(uninterrupted):
  workdir, result = uninterrupted
  log = read_log(workdir)
  assert sorted(log) == [2, 4, 6]
  for record in log.values():
    assert np.isfinite(record['train/loss'])
    assert 'train/steps_per_sec' in record and 'train/eta_hours' in record
  assert any(name.startswith('events.out.tfevents')
             for name in os.listdir(workdir))
  assert os.path.exists(os.path.join(workdir, 'samples', 'step_00000006.png'))
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == [
      '2', '4', '6']
  evaluation = result['eval']
  assert evaluation['num_images'] == 8
  for key in ('psnr', 'ssim', 'entropy', 'miou', 'psnr_gray_baseline'):
    assert np.isfinite(evaluation[key])
  config = workdir_lib.load_config(workdir)
  assert config.method == 'chromacmc' and config.data.image_size == 32


def _kill_when(process, ready, timeout=600):
  """SIGKILLs `process` as soon as `ready()` holds; returns what held."""
  import time  # pylint: disable=g-import-not-at-top
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and process.poll() is None:
    seen = ready()
    if seen:
      process.kill()
      process.wait()
      return seen
    time.sleep(0.001)
  raise AssertionError('the run ended before the kill point: '
                       + (process.stdout.read() or '')[-2000:])


def _checkpoint_dirs(workdir):
  try:
    return os.listdir(os.path.join(workdir, 'checkpoints'))
  except FileNotFoundError:
    return []


def test_sigkilled_cli_run_resumes_to_identical_params(
    uninterrupted, shapes_data_dir, tmp_path):
  """`kill -9` of `python -m colorjax.main`, first while a checkpoint
  directory is still orbax's temporary one (mid-checkpoint), then, after
  the same command resumed, once the step-4 checkpoint is written (mid-run);
  the same command then finishes the run with the uninterrupted run's
  parameters."""
  workdir = str(tmp_path / 'killed')
  args = _overrides(shapes_data_dir) + [f'--workdir={workdir}']
  seen = _kill_when(_cli(args), lambda: [
      d for d in _checkpoint_dirs(workdir) if 'tmp' in d])
  left = _checkpoint_dirs(workdir)
  assert set(seen) & set(left), (seen, left)        # killed while saving
  _kill_when(_cli(args), lambda: '4' in _checkpoint_dirs(workdir))
  process = _cli(args)
  output, _ = process.communicate(timeout=600)
  assert process.returncode == 0, output[-3000:]
  assert 'resuming from step 4' in output, output[-2000:]
  _assert_trees_equal(final_params(uninterrupted[0]), final_params(workdir))
  # The resumed attempt (steps 5-6, data iterator restored) logged the
  # uninterrupted run's loss. (This test replaced an in-process
  # stop-and-resume test of the same: a SIGKILL covers it.)
  expected, got = read_log(uninterrupted[0]), read_log(workdir)
  assert got[6]['train/loss'] == pytest.approx(expected[6]['train/loss'],
                                               rel=1e-6)


def test_eight_devices_give_the_same_losses(shapes_data_dir, tmp_path):
  """A batch sharded over 8 devices: BatchNorm statistics, losses and
  updates equal one device's. InstanceAware's tiny twin (BatchNorm in
  every block, two losses, host-side prior) compiles in a fraction of
  ChromaCMC's time; the two-process test covers the GAN's two optimizers."""
  workdir = str(tmp_path / 'eight')
  process = _cli([
      '--config=configs/instanceaware.py:tiny',
      '--config.data.dataset=semantic_shapes/test:1.0.0',
      f'--config.data.data_dir={shapes_data_dir}',
      f'--workdir={workdir}', '--config.data.batch_size=8',
      '--config.data.eval_batch_size=8', '--config.num_train_steps=4'],
      env={'XLA_FLAGS': os.environ.get('XLA_FLAGS', '') +
                        ' --xla_force_host_platform_device_count=8'})
  output, _ = process.communicate(timeout=600)
  assert process.returncode == 0, output[-3000:]
  assert 'on 8 cpu device(s)' in output, output[-2000:]
  reference = str(tmp_path / 'one')
  train.train_and_evaluate(tiny_config(shapes_data_dir, 'instanceaware', **{
      'data.batch_size': 8, 'data.eval_batch_size': 8,
      'num_train_steps': 4}), reference)
  _assert_same_losses(read_log(reference), read_log(workdir), (2, 4))
  _assert_trees_close(final_params(reference), final_params(workdir))


def _assert_same_losses(expected, got, steps, rel=1e-4):
  for step in steps:
    keys = sorted(k for k in expected[step] if k.startswith('train/loss'))
    assert len(keys) >= 3, keys
    for key in keys:
      assert got[step][key] == pytest.approx(expected[step][key], rel=rel), (
          step, key)


def _assert_trees_close(a, b, steps=4, learning_rate=2e-4, within=1e-5,
                        share=1e-3):
  """Equal up to float32 reduction order. Adam divides by sqrt(v), so a
  parameter whose gradient is ~0 can move by up to lr per step on noise:
  every parameter within 2 * steps * lr, and all but `share` of them
  within `within`."""
  assert jax.tree.structure(a) == jax.tree.structure(b)
  x = np.concatenate([np.ravel(v) for v in jax.tree.leaves(a)])
  y = np.concatenate([np.ravel(v) for v in jax.tree.leaves(b)])
  difference = np.abs(x - y)
  assert difference.max() <= 2 * steps * learning_rate, difference.max()
  assert np.mean(difference > within) < share, np.mean(difference > within)


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_give_the_same_losses(shapes_data_dir, tmp_path):
  """Two processes (jax.distributed, one CPU device each) train ChromaCMC's
  tiny twin -- the GAN's two optimizers, BatchNorm, the segmentation head
  -- as one process does. Without the SE-ResNeXt branch: it takes no part
  in the data split or the cross-process reductions, and its compile would
  triple the test's time."""
  workdir = str(tmp_path / 'two')
  port = _free_port()
  processes = [
      _cli(_overrides(shapes_data_dir) + [
          f'--workdir={workdir}', f'--coordinator_address=localhost:{port}',
          '--num_processes=2', f'--process_id={i}',
          '--config.num_train_steps=4', '--config.model.use_branch=False'])
      for i in range(2)]
  outputs = [p.communicate(timeout=600)[0] for p in processes]
  for process, output in zip(processes, outputs):
    assert process.returncode == 0, output[-3000:]
  # Process 0 speaks for both: 2 devices, one per process.
  assert 'on 2 cpu device(s)' in outputs[0], outputs[0][-2000:]
  assert 'step 4/4' in outputs[0] and 'step 4/4' not in outputs[1], outputs
  reference = str(tmp_path / 'one')
  train.train_and_evaluate(tiny_config(shapes_data_dir, **{
      'num_train_steps': 4, 'model.use_branch': False}), reference)
  _assert_same_losses(read_log(reference), read_log(workdir), (2, 4))
  # The 2-device program sums gradients in another order than the 1-device
  # one. On some CPUs' XLA kernels (this project's machine on 2026-12-02,
  # the same at the commit before) 4 GAN steps of Adam amplify that to a
  # median difference of 5e-6, 1% of the 8e-4 a parameter can move, with
  # 0.5% of parameters beyond 1e-4. So: 99% within 2e-4. A wrong data
  # split would change the losses, checked above to 1e-4.
  _assert_trees_close(final_params(reference), final_params(workdir),
                      within=2e-4, share=1e-2)


def test_nan_stops_with_clear_message_and_keeps_checkpoint(
    shapes_data_dir, tmp_path):
  workdir = str(tmp_path / 'nan')
  # The trainer's guard, not the model: ChromaCMC's tiny twin without its
  # branch (a third of the compile).
  config = tiny_config(shapes_data_dir, **{'num_train_steps': 4,
                                           'model.use_branch': False})
  train.train_and_evaluate(config, workdir, stop_after_step=2)
  config = tiny_config(shapes_data_dir, **{'num_train_steps': 4,
                                           'model.use_branch': False,
                                           'optimizer.learning_rate': 1e30})
  with pytest.raises(train.NonFiniteLossError, match='non-finite'):
    train.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']
  _, state = workdir_lib.restore_for_inference(workdir, config)
  assert all(np.all(np.isfinite(np.asarray(x)))
             for x in jax.tree.leaves(state.params))


def test_bfloat16_compute_keeps_float32_params(shapes_data_dir, tmp_path):
  workdir = str(tmp_path / 'bf16')
  # Without the branch: a third of the compile. Its layers take the same
  # `dtype` as the trunk's (the GPU benchmark trains it in bf16).
  config = tiny_config(shapes_data_dir, **{'model.dtype': 'bfloat16',
                                           'num_train_steps': 2,
                                           'model.use_branch': False})
  result = train.train_and_evaluate(config, workdir)
  assert np.isfinite(result['train']['loss'])
  _, state = workdir_lib.restore_for_inference(workdir, config)
  dtypes = {x.dtype for x in jax.tree.leaves(state.params)}
  assert dtypes == {np.dtype('float32')}
  # The step asks for bfloat16 convolutions; the compiled step keeps
  # activations in bfloat16. XLA:CPU then runs each convolution in float32
  # (it has no bf16 convolution kernel: converts around it), GPU/TPU in bf16.
  import re  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  method = methods.get_method(config)
  batch = method.batch_spec(2)
  lowered = jax.jit(method.train_step).lower(
      jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch), batch,
      jax.random.PRNGKey(0))
  convolutions = [line for line in lowered.as_text().splitlines()
                  if 'stablehlo.convolution' in line]
  assert convolutions
  bf16 = [line for line in convolutions if '-> tensor<' in line
          and line.rsplit('-> tensor<', 1)[1].split('>')[0].endswith('bf16')]
  assert len(bf16) == len(convolutions), convolutions[:3]
  compiled = lowered.compile().as_text()
  result_types = re.findall(r'= (\w+)\[[^\]]*\]\S* (convolution|fusion)\(',
                            compiled)
  assert ('bf16', 'fusion') in result_types   # activations stay bf16
  conv_types = {t for t, op in result_types if op == 'convolution'}
  if jax.default_backend() == 'cpu':
    assert conv_types == {'f32'}, conv_types
  else:   # GPU convolutions may be cuDNN custom calls instead
    assert 'f32' not in conv_types, conv_types


def test_real_dataset_not_prepared_names_prepare_and_demo(tmp_path):
  config = chromacmc_config.get_config()
  config.data.data_dir = str(tmp_path / 'empty')
  with pytest.raises(FileNotFoundError) as error:
    train.train_and_evaluate(config, str(tmp_path / 'work'))
  message = str(error.value)
  assert 'colorjax.datasets.prepare --dataset=voc2012_aug' in message
  assert 'configs/chromacmc.py:demo' in message or ':demo' in message


def test_evaluator_with_padded_batches_matches_per_image_reference(tiny_run):
  """clu-reduced eval metrics over batches 3+3+2 (last one padded) equal a
  per-image scikit-image/numpy computation over the 8 validation scenes."""
  from skimage import metrics as skmetrics  # pylint: disable=g-import-not-at-top
  from colorjax import evaluation  # pylint: disable=g-import-not-at-top
  from colorjax import evaluators  # pylint: disable=g-import-not-at-top
  from colorjax import sharding  # pylint: disable=g-import-not-at-top
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top
  workdir, _ = tiny_run
  config = workdir_lib.load_config(workdir)
  method, state = workdir_lib.restore_for_inference(workdir, config)
  mesh = sharding.data_mesh()
  config.data.eval_batch_size = 3
  config.data.eval_max_batches = -1     # the whole split: 3 + 3 + 2
  results = evaluation.flatten(
      evaluation.Evaluation(method, config, mesh).run(state))

  spec = pipeline.LoaderSpec.from_config(
      config.data, config.data.eval_split, train=False, global_batch_size=8,
      keys=('gray', 'l', 'ab', 'segmentation'))
  batch = pipeline.pad_batch(next(iter(pipeline.create_loader(spec))), 8)
  outputs = jax.device_get(jax.jit(method.predict)(state, batch))
  true = np.asarray(evaluators.to_rgb(batch['l'], batch['ab'],
                                      config.data.ab_scale))
  pred = np.asarray(evaluators.to_rgb(batch['l'], outputs['ab'],
                                      config.data.ab_scale))
  psnr = [skmetrics.peak_signal_noise_ratio(t, p, data_range=1.0)
          for t, p in zip(true, pred)]
  ssim = [skmetrics.structural_similarity(
      t, p, data_range=1.0, channel_axis=-1, gaussian_weights=True,
      sigma=1.5, use_sample_covariance=False) for t, p in zip(true, pred)]
  labels = batch['segmentation'][..., 0].reshape(-1)
  predicted = np.argmax(outputs['segmentation'], -1).reshape(-1)
  num_classes = config.data.num_classes
  keep = labels < num_classes
  confusion = np.bincount(labels[keep].astype(np.int64) * num_classes +
                          predicted[keep], minlength=num_classes ** 2)
  confusion = confusion.reshape(num_classes, num_classes)
  inter = np.diag(confusion)
  union = confusion.sum(0) + confusion.sum(1) - inter
  miou = np.mean(inter[union > 0] / union[union > 0])

  assert results['num_images'] == 8
  assert results['psnr'] == pytest.approx(np.mean(psnr), abs=1e-3)
  assert results['ssim'] == pytest.approx(np.mean(ssim), abs=1e-3)
  assert results['miou'] == pytest.approx(miou, abs=1e-6)
