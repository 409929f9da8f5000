"""The comparison suite (`python -m colorjax.compare --suite=...`,
colorjax/suite/): its plan of runs and config overrides, the mean ± std
over seeds, and the quick suite end to end on a subset with resume."""

import csv
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from colorjax import config_lib
from colorjax import profiling
from colorjax import protocols
from colorjax import results
from colorjax import suite

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ seeds
def test_mean_std_over_seeds():
  mean, std, n = results.mean_std([10.0, 12.0, 14.0])
  assert (mean, n) == (12.0, 3)
  assert std == pytest.approx(2.0)            # sample std (ddof 1)
  assert results.mean_std([7.5]) == (7.5, None, 1)
  mean, std, n = results.mean_std([1.0, float('nan'), None, 3.0])
  assert (mean, n) == (2.0, 2) and std == pytest.approx(math.sqrt(2))
  mean, std, n = results.mean_std([])
  assert math.isnan(mean) and std is None and n == 0
  assert results.format_mean_std((16.75, 0.1234, 2)) == '16.75 ± 0.12'
  assert results.format_mean_std((16.75, None, 1)) == '16.75'
  assert results.format_mean_std((1000.0, 0.0, 2)) == '1000'
  assert results.format_mean_std((math.nan, None, 0)) == '-'
  assert results.format_number(1267570.0) == '1,267,570'


def test_seed_tables_and_delta_to_the_paper_variant():
  def row(variant, seed, psnr, ssim, paper=False, **extra):
    return dict(method='m', variant=variant, seed=seed, data='d',
                description=variant, paper=paper, psnr=psnr, ssim=ssim,
                **extra)
  rows = [row('paper', 0, 16.0, 0.80, paper=True, parameters=1000),
          row('paper', 1, 18.0, 0.90, paper=True, parameters=1000),
          row('ablation', 0, 15.0, 0.70, parameters=900),
          row('ablation', 1, 15.5, 0.72, parameters=900)]
  groups = suite.group_rows(rows)
  assert list(groups) == ['m/paper', 'm/ablation']
  # Each seed's PSNR minus the paper variant's mean PSNR (17.0).
  assert [r['delta_psnr'] for r in groups['m/ablation']] == [-2.0, -1.5]
  text, table = results.seed_tables(
      groups, [('psnr', 'PSNR'), ('delta_psnr', 'dPSNR'), ('ssim', 'SSIM'),
               ('fid', 'FID')], label_keys=('method', 'variant'))
  lines = text.splitlines()
  assert lines[0] == '| method | variant | seeds | PSNR | dPSNR | SSIM |'
  assert lines[2] == '| m | paper | 2 | 17 ± 1.4 | 0 ± 1.4 | 0.85 ± 0.071 |'
  assert lines[3] == ('| m | ablation | 2 | 15.25 ± 0.35 | -1.75 ± 0.35 | '
                      '0.71 ± 0.014 |')
  parsed = list(csv.DictReader(io.StringIO(table)))
  assert [r['variant'] for r in parsed] == ['paper', 'ablation']
  assert float(parsed[0]['psnr_mean']) == 17.0
  assert float(parsed[0]['psnr_std']) == pytest.approx(math.sqrt(2))
  assert float(parsed[1]['ssim_mean']) == pytest.approx(0.71)
  assert parsed[1]['n_seeds'] == '2'
  assert parsed[0]['parameters_std'] == '0.0'
  text, _ = results.seed_tables(groups, [('parameters', 'params')])
  assert '| m | paper | 2 | 1000 |' in text          # no spread shown
  # One seed: no spread, and the CSV leaves the std empty.
  text, table = results.seed_tables({'m/paper': rows[:1]},
                                    [('psnr', 'PSNR')])
  assert '| m | paper | 1 | 16 |' in text
  assert list(csv.DictReader(io.StringIO(table)))[0]['psnr_std'] == ''


def test_train_rate_leaves_out_the_compilation_window(tmp_path):
  with open(tmp_path / 'metrics.jsonl', 'w') as f:
    for step, rate in ((50, 0.1), (100, 5.0), (150, 7.0), (200, 6.0),
                       (250, 0.2), (300, 4.0), (350, 4.0)):
      f.write(json.dumps({'step': step, 'train/steps_per_sec': rate}) + '\n')
    f.write(json.dumps({'step': 200, 'val/psnr': 16.0}) + '\n')
  # Median of 5, 7, 6, 0.2, 4, 4 (the first window left out) x batch 16.
  assert suite.train_images_per_s(str(tmp_path), 0, 16) == 72.0
  # A resumed attempt (from step 200): its own windows, first left out.
  assert suite.train_images_per_s(str(tmp_path), 200, 2) == 8.0
  assert suite.train_images_per_s(str(tmp_path), 300, 2) is None


# ------------------------------------------------------------------- plan
def _by_name(runs):
  return {(r.name, r.seed): r for r in runs}


def test_train_cost_is_the_compiled_train_step(tmp_path):
  """`--cost`'s FLOPs (the train step lowered on abstract arrays, never
  compiled) are the compiled step's, per image whatever the batch, and
  hold the backward pass: more than twice the forward (`predict`) FLOPs."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  # InstanceAware without its branch: BatchNorm, the rebalanced 313-bin
  # loss, a transposed conv, in a fraction of ChromaCMC's compile.
  run, = suite.plan('demo', str(tmp_path), quick=True,
                    only=['instanceaware/no_classifier'])
  cost = suite.train_cost(run)
  method, state, batch = suite.abstract_train_step(run)
  rng = jax.random.PRNGKey(0)
  compiled = profiling.compiled_flops(jax.jit(method.train_step).lower(
      state, batch, rng).compile()) / run.batch_size / 1e9
  assert cost['train_gflops_per_image'] == pytest.approx(compiled, rel=0.1)
  doubled = suite.train_cost(dataclasses.replace(
      run, batch_size=2 * run.batch_size))
  assert doubled['train_gflops_per_image'] == pytest.approx(
      cost['train_gflops_per_image'], rel=0.1)
  inputs = {k: v for k, v in batch.items() if k in method.predict_keys}
  forward = profiling.compiled_flops(jax.jit(method.predict).lower(
      state, inputs)) / run.batch_size / 1e9
  assert 2 * forward < cost['train_gflops_per_image'] < 12 * forward
  assert cost['train_pflop'] == pytest.approx(
      cost['train_gflops_per_image'] * run.batch_size * run.steps / 1e6)
  assert cost['hours_at_peak'] == pytest.approx(
      cost['train_pflop'] * 1e15 / 989e12 / 3600)
  lines = []
  result = suite.run_suite('demo', str(tmp_path), quick=True,
                           only=['chromacmc/no_segmentation', 'pixsem/embedding'],
                           dry_run=True, cost=True, say=lines.append)
  total = result['costs'].pop('total')
  assert len(result['costs']) == 2
  assert total['train_pflop'] == pytest.approx(
      sum(c['train_pflop'] for c in result['costs'].values()))
  assert 'device-hours' in lines[-1] and 'estimate' in lines[-1]
  assert not os.path.exists(tmp_path / 'runs')          # nothing trained


def test_paper_suite_plan_same_budget_every_variant(tmp_path):
  runs = suite.plan('paper', str(tmp_path), seeds=2, data_dir='/data/tfds')
  names = [r.name for r in runs if r.seed == 0]
  assert names == [
      'chromacmc/paper', 'chromacmc/no_segmentation', 'chromacmc/l2',
      'chromacmc/cmc_lab', 'scenecontext/regsoft', 'scenecontext/clasregsoft',
      'scenecontext/segclasregsoft', 'semanticdriven/segmentation',
      'semanticdriven/paper', 'semanticdriven/gt_maps',
      'semanticdriven/no_instance_norm', 'instanceaware/paper',
      'instanceaware/no_classifier', 'pixsem/embedding',
      'pixsem/semantic_embedding', 'pixsem/semantic_generator',
      'pixsem/feature_transform']
  assert len(runs) == 2 * len(names)
  images = suite.DEFAULT_IMAGES['paper']
  by = _by_name(runs)
  for run in runs:
    assert run.workdir == str(tmp_path / 'runs' / run.method / run.variant /
                              f'seed{run.seed}')
    if run.eval_only:
      continue
    # Same images seen: steps follow each config's own batch size.
    assert run.overrides['num_train_steps'] == -(-images // run.batch_size)
    assert run.overrides['seed'] == run.overrides['data.seed'] == run.seed
    assert run.overrides['data.data_dir'] == '/data/tfds'
    assert 'eval_every_steps' not in run.overrides   # paper cadence kept
    assert ':tiny' not in run.config and ':demo' not in run.config
    # Every override names a real field of that config, of its type.
    config = suite.apply_overrides(
        config_lib.load_config(run.config, suite.REPO), run.overrides)
    assert config.num_train_steps == run.steps
  assert by['instanceaware/paper', 0].batch_size == 40
  assert by['instanceaware/paper', 0].steps == -(-images // 40)
  assert by['chromacmc/paper', 0].steps == -(-images // 16)
  assert by['chromacmc/no_segmentation', 1].overrides[
      'model.use_segmentation'] is False
  assert by['chromacmc/l2', 0].overrides['loss.colour'] == 'l2'
  assert by['scenecontext/regsoft', 0].overrides['model.variant'] == 'regsoft'
  assert by['pixsem/feature_transform', 0].overrides[
      'model.variant'] == 'feature_transform'
  assert by['instanceaware/no_classifier', 0].overrides[
      'model.use_classifier'] is False
  stage1 = by['semanticdriven/segmentation', 1]
  # Paper scale trains the held-out presets (val is inside the paper's
  # trainval).
  assert stage1.config == 'configs/semanticdriven.py:segmentation_heldout'
  assert not stage1.row
  for variant in ('paper', 'no_instance_norm'):
    run = by[f'semanticdriven/{variant}', 1]
    assert run.config == 'configs/semanticdriven.py:colorization_heldout'
    assert run.overrides['init_from.gridnet.workdir'] == stage1.workdir
    assert run.needs == (stage1.workdir,)
  assert by['semanticdriven/no_instance_norm', 0].overrides[
      'model.instance_norm'] == 'none'
  gt = by['semanticdriven/gt_maps', 0]
  assert gt.eval_only and gt.source == by['semanticdriven/paper', 0].workdir
  assert runs.index(gt) > runs.index(by['semanticdriven/paper', 0])


def test_demo_and_quick_plans(tmp_path):
  demo = _by_name(suite.plan('demo', str(tmp_path)))
  run = demo['pixsem/embedding', 0]
  assert run.config == 'configs/pixsem.py:demo' and run.steps == 800
  assert run.overrides['eval_every_steps'] == 0
  assert demo['semanticdriven/segmentation', 0].config == (
      'configs/semanticdriven.py:segmentation_demo')
  quick = suite.plan('demo', str(tmp_path), quick=True, images=20,
                     only=['pixsem/embedding', 'semanticdriven/gt_maps'],
                     shapes='test', extra=['pixsem:model.ema_decay=0.5'])
  assert [r.name for r in quick] == [
      'semanticdriven/segmentation', 'semanticdriven/paper',
      'semanticdriven/gt_maps', 'pixsem/embedding']
  pix = quick[-1]
  assert pix.config == 'configs/pixsem.py:tiny'
  assert pix.steps == 5 and pix.overrides['model.ema_decay'] == 0.5
  assert pix.overrides['data.dataset'] == 'semantic_shapes/test:1.0.0'
  for run in quick:
    if not run.eval_only:
      suite.apply_overrides(config_lib.load_config(run.config, suite.REPO),
                            run.overrides)
  # A full-resolution preset cannot feed ground-truth maps: no gt_maps row.
  lines = []
  result = suite.run_suite('demo', str(tmp_path), preset='full',
                           only=['semanticdriven'], dry_run=True,
                           say=lines.append)
  assert [r.variant for r in result['runs']] == [
      'segmentation', 'paper', 'no_instance_norm']
  assert any('gt_maps rows left out' in l for l in lines)
  with pytest.raises(ValueError, match='no variant'):
    suite.plan('demo', str(tmp_path), only=['pixsem/purple'])
  with pytest.raises(ValueError, match='unknown method'):
    suite.plan('demo', str(tmp_path), only=['zhang'])


def test_paper_dry_run_prints_the_commands(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.compare', '--suite=paper',
       '--data_dir=/data/tfds', '--dry_run', '--only=instanceaware',
       f'--output={tmp_path}'],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout
  assert 'instanceaware/no_classifier seed 0: 26455 steps of batch 40' in out
  assert ('python -m colorjax.main --config=configs/instanceaware.py:voc '
          f'--workdir={tmp_path}/runs/instanceaware/no_classifier/seed0 '
          '--config.num_train_steps=26455 --config.seed=0 '
          '--config.data.seed=0 --config.data.data_dir=/data/tfds '
          '--config.model.use_classifier=False') in out
  assert f'--preset={suite.SUITE_PRESET}' in out
  assert not os.path.exists(tmp_path / 'runs')      # nothing ran


# ---------------------------------------------------------- end to end
def test_quick_suite_end_to_end_and_resume(shapes_data_dir, tmp_path,
                                           capfd):
  """Two methods' quick runs (SemanticDriven's two stages and its
  ground-truth-map row, InstanceAware without its branch): table, CSV and
  figure with their rows; a rerun skips every finished run; a run whose
  evaluation is missing is evaluated again, not retrained."""
  output = str(tmp_path / 'suite')
  only = ['semanticdriven/gt_maps', 'instanceaware/no_classifier']
  lines = []
  # 4 steps of batch 4: two log windows, the second gives the rate.
  kwargs = dict(suite='demo', output=output, quick=True, images=16,
                only=only, shapes='test', data_dir=shapes_data_dir,
                max_images=8, say=lines.append)
  result = suite.run_suite(**kwargs)
  assert result['failed'] == [], lines
  progress = [l for l in lines if l.startswith('[')]
  assert len(progress) == 4, lines                   # one line per run
  assert all('FAILED' not in l for l in progress), lines
  assert protocols.get(suite.SUITE_PRESET).evals['colour'][
      'resolution'] == 'model'
  # The trainers' lines went to each run's log, not to the terminal.
  out, err = capfd.readouterr()
  assert 'steps/s' not in out + err and 'checkpoint' not in out + err
  log = open(os.path.join(output, 'runs/instanceaware/no_classifier/seed0/'
                          'suite.log')).read()
  assert 'steps/s' in log and 'checkpoint 4 ->' in log

  rows = list(csv.DictReader(open(os.path.join(output, 'suite.csv'))))
  assert [(r['method'], r['variant']) for r in rows] == [
      ('semanticdriven', 'paper'), ('semanticdriven', 'gt_maps'),
      ('instanceaware', 'no_classifier')]
  for row in rows:
    for key in ('psnr', 'ssim', 'rmse_ab', 'train_images_per_s',
                'parameters', 'gflops', 'latency_ms', 'train_s'):
      assert np.isfinite(float(row[f'{key}_mean'])), (row['variant'], key)
    assert row['n_seeds'] == '1' and row['data'].startswith(
        'semantic_shapes/test:1.0.0')
    assert float(row['gflops_mean']) > 0
  paper, gt, ia = rows
  # GridNet's mIoU is the same network's in both rows; the colours differ
  # (other maps), the cost columns of the gt row are the paper run's.
  assert float(paper['miou_mean']) == pytest.approx(float(gt['miou_mean']))
  assert paper['psnr_mean'] != gt['psnr_mean']
  assert gt['train_s_mean'] == paper['train_s_mean']
  assert paper['parameters_mean'] == gt['parameters_mean']
  assert ia['miou_mean'] == ''                         # no segmentation head
  # SemanticDriven's time includes its stage 1.
  record = json.load(open(os.path.join(
      output, 'runs/semanticdriven/paper/seed0', suite.RUN_RECORD)))
  stage1 = json.load(open(os.path.join(
      output, 'runs/semanticdriven/segmentation/seed0', suite.RUN_RECORD)))
  assert float(paper['train_s_mean']) == pytest.approx(
      record['train_s'] + stage1['train_s'])
  assert record['trained_steps'] == 4 and record['batch_size'] == 4

  markdown = open(os.path.join(output, 'suite.md')).read()
  assert '| semanticdriven | gt_maps |' in markdown
  assert '| instanceaware | no_classifier |' in markdown
  assert 'semanticdriven | segmentation |' not in markdown   # not a row
  assert 'Machine: ' in markdown and 'Command: ' in markdown
  table_rows = [l for l in markdown.splitlines() if l.startswith('| ')]
  assert len(table_rows) == 1 + 3
  figure = Image.open(os.path.join(output, 'suite.png'))
  assert figure.size[1] > figure.size[0] / 3        # 5 rows of images
  runs_csv = list(csv.DictReader(open(os.path.join(output,
                                                   'suite_runs.csv'))))
  assert len(runs_csv) == 3 and {r['seed'] for r in runs_csv} == {'0'}

  # Rerun: everything is done, nothing is trained or evaluated again.
  def stamp(*parts):
    return os.path.getmtime(os.path.join(output, 'runs', *parts))
  before = {p: stamp(*p) for p in (
      ('semanticdriven', 'paper', 'seed0', 'metrics.jsonl'),
      ('instanceaware', 'no_classifier', 'seed0', 'eval', 'suite',
       'metrics.json'))}
  lines.clear()
  assert suite.run_suite(**kwargs)['failed'] == []
  assert sum('done before' in l for l in lines) == 4, lines
  assert before == {p: stamp(*p) for p in before}

  # A run without its evaluation is evaluated, not retrained.
  os.remove(os.path.join(output, 'runs/instanceaware/no_classifier/seed0/'
                         'eval/suite/metrics.json'))
  jsonl = os.path.join(output, 'runs/instanceaware/no_classifier/seed0/'
                       'metrics.jsonl')
  trained = os.path.getmtime(jsonl)
  lines.clear()
  assert suite.run_suite(**kwargs)['failed'] == []
  assert sum('done before' in l for l in lines) == 3, lines
  assert os.path.getmtime(jsonl) == trained
  assert os.path.isfile(os.path.join(
      output, 'runs/instanceaware/no_classifier/seed0/eval/suite/'
      'metrics.json'))


def test_every_quick_suite_run_reads_its_batch_and_traces_its_steps(
    shapes_data_dir, tmp_path):
  """What the whole quick suite (below, `-m release`) checks of each of its
  17 runs, without training them: the run's config with its overrides
  reads a batch from the shapes build through the real pipeline, the batch
  is what the method declares, and its train step and `predict` trace on
  it (jax.eval_shape: nothing compiled) to a finite-shaped scalar loss and
  an ab image. test_quick_suite_end_to_end_and_resume runs the suite code
  (train, evaluate, table, resume) on two methods; every method's own tiny
  twin trains and evaluates in its test file."""
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  from colorjax import train  # pylint: disable=g-import-not-at-top
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top
  from colorjax.suite import planning  # pylint: disable=g-import-not-at-top
  runs = suite.plan('demo', output=str(tmp_path), quick=True, images=16,
                    shapes='test', data_dir=shapes_data_dir)
  assert sum(run.row for run in runs) == 16 and len(runs) == 17
  traced = []
  for run in runs:
    config = planning.apply_overrides(
        config_lib.load_config(run.config, REPO), run.overrides)
    assert config.data.data_dir == shapes_data_dir, run.name
    method, state, spec = methods.abstract_train_step(
        config, config.data.batch_size)
    loader = pipeline.LoaderSpec.from_config(
        config.data, config.data.train_split, train=True,
        keys=tuple(sorted(spec)))
    source = pipeline.data_source(loader.dataset, loader.split,
                                  loader.data_dir, loader.joins)
    batch = next(iter(pipeline.create_loader(loader, source)))
    train.check_batch(batch, spec)
    rng = jax.random.PRNGKey(0)
    _, metrics = jax.eval_shape(method.train_step, state, spec, rng)
    assert metrics['loss'].shape == (), run.name
    inputs = {k: v for k, v in spec.items() if k in method.predict_keys}
    outputs = jax.eval_shape(method.predict, state, inputs)
    ab = outputs['ab']
    assert ab.shape[-1] == 2 and ab.shape[0] == config.data.batch_size, (
        run.name, ab.shape)
    traced.append(run.name)
  assert len(set(traced)) == 17


@pytest.mark.slow
@pytest.mark.release
def test_whole_quick_suite_every_method_and_ablation(shapes_data_dir,
                                                     tmp_path):
  """`compare --suite=demo --quick`: all 17 runs (16 table rows;
  SemanticDriven's stage 1 is not one) train, evaluate and land in the
  table, the CSV and the figure with finite colour metrics and costs.
  Left out of test.sh (`pytest -m release` runs it: 7 min under CI's
  load): test_every_quick_suite_run_reads_its_batch_and_traces_its_steps
  checks each run's data and steps, test_quick_suite_end_to_end_and_resume
  the suite code end to end on two methods."""
  output = str(tmp_path / 'suite')
  lines = []
  result = suite.run_suite(suite='demo', output=output, quick=True,
                           images=16, shapes='test',
                           data_dir=shapes_data_dir, max_images=8,
                           say=lines.append)
  assert result['failed'] == [], lines
  rows = list(csv.DictReader(open(os.path.join(output, 'suite.csv'))))
  expected = {(run.method, run.variant) for run in suite.plan(
      'demo', output=output, quick=True, shapes='test',
      data_dir=shapes_data_dir) if run.row}
  assert len(expected) == 16
  assert {(r['method'], r['variant']) for r in rows} == expected
  for row in rows:
    for key in ('psnr', 'ssim', 'parameters', 'gflops', 'latency_ms',
                'train_s'):
      assert np.isfinite(float(row[f'{key}_mean'])), (row['variant'], key)
  assert os.path.getsize(os.path.join(output, 'suite.png')) > 10_000
