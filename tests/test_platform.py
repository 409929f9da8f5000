"""The platform through the real trainer and command lines, on a probe
method (tests/platform_probe.py): an [N, K] target, a classification
evaluator, reduce-on-plateau, a frozen subset, init_from another workdir,
evaluation of an unlabeled photo folder."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from colorjax import evaluation
from colorjax import train
from colorjax import workdir as workdir_lib
from conftest import REPO
from conftest import apply_overrides
import fixtures
import platform_probe


def _probe_config(data_dir, photos=None, **overrides):
  config = platform_probe.get_config()
  config.data.dataset = 'semantic_shapes/test'
  config.data.data_dir = data_dir
  config.evals.photos.path = photos
  return apply_overrides(config, overrides)


def _log(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return {r['step']: r for r in map(json.loads, f) if 'train/loss' in r}


def _photos(folder, rng):
  os.makedirs(folder / 'deeper', exist_ok=True)
  Image.fromarray(rng.integers(0, 256, (300, 500, 3)).astype(np.uint8)).save(
      folder / 'wide.jpg')
  Image.fromarray(rng.integers(0, 256, (90, 40, 3)).astype(np.uint8)).save(
      folder / 'deeper' / 'tall.png')
  Image.fromarray(rng.integers(0, 256, (64, 64)).astype(np.uint8)).save(
      folder / 'gray.png')
  fixtures.write_odd_image(str(folder / 'broken.jpg'), 'truncated', rng, 30,
                           30)
  return folder


@pytest.fixture(scope='module')
def stage_one(shapes_data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('probe_one'))
  result = train.train_and_evaluate(_probe_config(shapes_data_dir), workdir)
  return workdir, result


def test_k_dim_targets_train_and_classification_is_evaluated(stage_one):
  workdir, result = stage_one
  assert np.isfinite(result['train']['loss_labels'])
  tags = result['evals']['tags']
  assert set(tags) == {'top1', 'top3'}
  assert 0.0 <= tags['top1'] <= tags['top3'] <= 1.0
  # The scene has 2+ classes: top-3 holds one of them more often than not.
  assert 'psnr' in result['evals']['val']
  assert 'miou' not in result['eval']      # no segmentation head: skipped


def test_reduce_on_plateau_halves_the_logged_rate(stage_one):
  workdir, _ = stage_one
  log = _log(workdir)
  rates = [log[step]['train/learning_rate'] for step in (2, 4, 6, 8)]
  # Fed train/loss at each log step, never improving (threshold 10x).
  np.testing.assert_allclose(rates, [1e-2, 5e-3, 2.5e-3, 1.25e-3],
                             rtol=1e-6)


def test_init_from_and_frozen_subset_through_the_cli(
    stage_one, shapes_data_dir, tmp_path, rng):
  first, _ = stage_one
  photos = _photos(tmp_path / 'photos', rng)
  second = str(tmp_path / 'probe_two')
  env = {**os.environ,
         'PYTHONPATH': os.path.join(REPO, 'tests') + os.pathsep +
                       os.environ.get('PYTHONPATH', '')}
  run = subprocess.run(
      [sys.executable, '-m', 'colorjax.main',
       '--config=tests/platform_probe.py', f'--workdir={second}',
       '--config.data.dataset=semantic_shapes/test',
       f'--config.data.data_dir={shapes_data_dir}',
       f'--config.evals.photos.path={photos}',
       '--config.evals.photos.every_steps=8',
       "--config.optimizer.frozen=('backbone_.*',)",
       f'--config.init_from.model.workdir={first}'],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
      check=False)
  assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
  # The console: progress lines and an eval table, no library INFO logs.
  assert 'step 8/8' in run.stdout and 'eval at step 8' in run.stdout
  assert 'photos' in run.stdout
  for noise in ('INFO', 'orbax', 'resource_tracker'):
    assert noise not in run.stdout + run.stderr, noise

  _, before = workdir_lib.restore_for_inference(first)
  _, after = workdir_lib.restore_for_inference(second)
  before, after = (jax.device_get(s.params['model']) for s in (before,
                                                               after))
  for name in ('backbone_conv0', 'backbone_conv1'):     # init_from + frozen
    for key in ('kernel', 'bias'):
      np.testing.assert_array_equal(before[name][key], after[name][key])
  assert not np.array_equal(before['head_ab']['kernel'],
                            after['head_ab']['kernel'])   # trained on

  # The photo folder was evaluated during training: 3 readable photos.
  with open(os.path.join(second, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  photo_psnr = [r for r in records if 'photos/psnr' in r]
  assert photo_psnr and photo_psnr[-1]['photos/num_images'] == 3

  # evaluate runs on any folder of photos (at the model's resolution, the
  # training-time protocol, it gives the training-time number); colorize
  # writes every readable.
  out = tmp_path / 'folder.json'
  run = subprocess.run(
      [sys.executable, '-m', 'colorjax.evaluate', f'--workdir={second}',
       f'--image_folder={photos}', f'--output={out}', '--resolution=model'],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
      check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  metrics = json.loads(out.read_text())
  assert metrics['num_images'] == 3 and np.isfinite(metrics['psnr'])
  assert metrics['psnr'] == pytest.approx(photo_psnr[-1]['photos/psnr'],
                                          abs=1e-4)


def test_segmentation_evaluator_on_a_method_without_the_head_fails_clearly(
    stage_one):
  workdir, _ = stage_one
  config = workdir_lib.load_config(workdir)
  method, state = workdir_lib.restore_for_inference(workdir, config)
  from colorjax import sharding  # pylint: disable=g-import-not-at-top
  evals = config.evals
  evals.val_segmentation.skip_if_missing = False
  runner = evaluation.Evaluation(method, config, sharding.data_mesh(),
                                 evals, ['val_segmentation'])
  with pytest.raises(ValueError, match="predicts .*not \\['segmentation'\\]"):
    runner.run(state)


def test_progress_line_shows_losses_and_learning_rates(capsys):
  from colorjax import console  # pylint: disable=g-import-not-at-top
  console.progress_line(10, 20, 2.0, 5.0, {
      'loss': 3.0, 'loss_cmc': 2.5, 'learning_rate_generator': 1e-3,
      'learning_rate_discriminator': 1e-3, 'grad_norm': 7.0})
  line = capsys.readouterr().out
  assert 'loss 3  cmc 2.5  lr 0.001' in line and 'grad_norm' not in line
  console.progress_line(10, 20, 2.0, 5.0, {
      'loss': 3.0, 'learning_rate_generator': 1e-3,
      'learning_rate_discriminator': 4e-3})
  line = capsys.readouterr().out
  assert 'lr_generator 0.001' in line and 'lr_discriminator 0.004' in line
