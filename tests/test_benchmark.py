"""The benchmark tools: `colorjax.benchmark train`'s inputs and throughput,
the one-command GPU benchmark (run here in its --cpu form) and its offline
wheel bundle check."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from colorjax import profiling
from colorjax.benchmark import train as train_benchmark
from colorjax.color import quantize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'benchmarks', 'gpu'))

import check_bundle  # pylint: disable=g-import-not-at-top,wrong-import-position
import run as gpu_run  # pylint: disable=g-import-not-at-top,wrong-import-position

_ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
cpu MHz\t\t: 2600.000
flags\t\t: fpu sse avx avx2 fma avx512f avx512bw
"""


def test_random_batch_values_are_in_each_keys_range():
  """A benchmark batch must exercise every loss term: bins in range (a
  float->int cast once made them all 0), weights summing to 1, one-hot
  scenes, {0, 1} tags, class ids below num_classes."""
  rng = np.random.default_rng(0)
  bins = train_benchmark.random_value(rng, 'ab_bins', (2, 8, 8, 5), np.int32,
                                      21)
  assert bins.min() >= 0 and bins.max() < quantize.NUM_AB_BINS
  assert len(np.unique(bins)) > 100
  weights = train_benchmark.random_value(rng, 'ab_weights', (2, 8, 8, 5),
                                        np.float32, 21)
  np.testing.assert_allclose(weights.sum(-1), 1, rtol=1e-6)
  assert weights.min() > 0
  scene = train_benchmark.random_value(rng, 'scene', (4, 7), np.float32, 21)
  np.testing.assert_array_equal(scene.sum(-1), 1)
  assert set(np.unique(scene)) == {0, 1}
  tags = train_benchmark.random_value(rng, 'labels', (64, 20), np.float32, 21)
  assert set(np.unique(tags)) == {0, 1}
  seg = train_benchmark.random_value(rng, 'segmentation', (2, 16, 16, 1),
                                     np.uint8, 21)
  assert seg.max() < 21 and len(np.unique(seg)) == 21
  l = train_benchmark.random_value(rng, 'l', (2, 16, 16, 1), np.float32, 21)
  assert 0 <= l.min() and l.max() <= 100 and l.max() > 50


def test_cpu_peak_flops_from_cpuinfo():
  peak, why = profiling.cpu_peak_flops(_ZEN4, cores=2)
  # Zen 4 runs AVX-512 on 256-bit pipes: 2 pipes x 8 lanes x 2 = 32/cycle.
  assert peak == pytest.approx(2 * 2.6e9 * 32)
  assert 'Zen 4' in why
  intel = _ZEN4.replace('AuthenticAMD', 'GenuineIntel').replace(
      'cpu family\t: 25', 'cpu family\t: 6')
  assert profiling.cpu_peak_flops(intel, cores=1)[0] == pytest.approx(
      2.6e9 * 64)
  avx2 = _ZEN4.replace(' avx512f avx512bw', '')
  assert profiling.cpu_peak_flops(avx2, cores=1)[0] == pytest.approx(
      2.6e9 * 32)
  assert profiling.cpu_peak_flops('no clock here', cores=1)[0] is None


def test_throughput_on_cpu_is_a_fraction_of_the_fp32_peak():
  import jax  # pylint: disable=g-import-not-at-top
  cpu = jax.devices('cpu')[0]
  out = train_benchmark.throughput(1e9, 0.5, cpu)
  assert out['gflop_per_s'] == pytest.approx(2.0)
  peak, _ = profiling.cpu_peak_flops()
  assert profiling.device_peak(cpu) == peak   # the sampler's bound's too
  assert out['fraction_of_fp32_peak'] == pytest.approx(2e9 / peak, abs=6e-4)


def _wheel(directory, name, version, requires=()):
  path = os.path.join(directory, f'{name}-{version}-py3-none-any.whl')
  meta = ''.join([f'Metadata-Version: 2.1\nName: {name}\n'
                  f'Version: {version}\n',
                  *(f'Requires-Dist: {r}\n' for r in requires)])
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr(f'{name}-{version}.dist-info/METADATA', meta)
  return path


def test_bundle_check_finds_a_missing_requirement(tmp_path, capsys):
  image = tmp_path / 'image.txt'
  image.write_text('# the GPU image\nnumpy jax\n')
  bundle = tmp_path / 'whl'
  bundle.mkdir()
  _wheel(bundle, 'grain', '0.2', ['numpy>=1.2', 'cloudpickle',
                                  'pywin32; sys_platform == "win32"',
                                  'pytest; extra == "test"'])
  _wheel(bundle, 'cloudpickle', '3.0')
  check_bundle.main(str(bundle), str(image))          # closed: no exit
  assert '2 wheels' in capsys.readouterr().out
  _wheel(bundle, 'clu', '0.1', ['etils[epath]', 'numpy'])
  with pytest.raises(SystemExit, match=r'etils \(for clu\)'):
    check_bundle.main(str(bundle), str(image))


def test_gpu_plan_covers_every_method_in_both_dtypes():
  for cpu in (False, True):
    names = [name for name, _ in gpu_run.plan(cpu)]
    for method in ('chromacmc', 'scenecontext', 'semanticdriven_stage1',
                   'semanticdriven_stage2', 'instanceaware', 'pixsem'):
      for dtype in ('bfloat16', 'float32'):
        assert f'train_{method}_{dtype}' in names
    assert {'sample_pixsem_8', 'pipeline'} <= set(names)
  # The CPU table: every paper-scale step in float32 at batch 2.
  paper_cpu = dict(gpu_run.plan(False, paper_cpu=True))
  assert len(paper_cpu) == 6 and all(
      '--batch_size=2' in a and '--dtype=float32' in a and
      not any(':tiny' in x for x in a) for a in paper_cpu.values())
  # On the GPU: paper configs at the paper's batch size.
  args = dict(gpu_run.plan(False))['train_pixsem_bfloat16']
  assert '--config=configs/pixsem.py' in args and not any(
      a.startswith('--batch_size') for a in args)


def _this_python():
  """gpu.sh runs $PYTHON (default python3): here, the suite's own (the
  .venv that setup.sh made), as the GPU machine's python3 has jax."""
  return {**os.environ, 'PYTHON': sys.executable}


def test_gpu_script_runs_end_to_end_on_the_cpu(tmp_path):
  """`bash benchmarks/gpu.sh OUT --cpu` as on the GPU machine (one train run:
  JAX against its PyTorch peer); the summary holds its numbers."""
  out = tmp_path / 'out'
  result = subprocess.run(
      ['bash', 'benchmarks/gpu.sh', str(out), '--cpu',
       '--only=train_instanceaware_float32'],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
      env=_this_python())
  assert result.returncode == 0, result.stderr[-3000:]
  with open(out / 'results.json') as f:
    results = json.load(f)
  (run,) = results['runs']
  assert run['status'] == 'ok', run
  report = run['report']
  assert report['jax']['images_per_s'] > 0
  assert report['torch']['images_per_s'] > 0
  assert report['torch']['params'] == report['parameters']
  assert report['ratio_jax_over_torch'] == pytest.approx(
      report['jax']['images_per_s'] / report['torch']['images_per_s'],
      rel=0.01)
  summary = (out / 'summary.md').read_text()
  assert '| train_instanceaware_float32 | ok |' in summary


def test_gpu_script_rejects_an_unknown_run(tmp_path):
  result = subprocess.run(
      ['bash', 'benchmarks/gpu.sh', str(tmp_path), '--cpu',
       '--only=train_nope'], cwd=REPO, capture_output=True, text=True,
      timeout=120, check=False, env=_this_python())
  assert result.returncode == 2
  assert 'no run named train_nope' in result.stderr
  assert 'Traceback' not in result.stderr


def test_sampler_scaling_reports_steps_against_the_flop_bound():
  """`benchmark sample_scaling` on PixSem's tiny twin: one row per size
  and sample count; the teacher-forced bound grows with pixels x samples
  and the per-pixel step is measured against it."""
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.benchmark', 'sample_scaling',
       '--config=configs/pixsem.py:tiny', '--sizes=32,64',
       '--sample_counts=2', '--num_samples=1', '--steps=1'],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout[result.stdout.index('{'):])
  rows = {(r['image_size'], r['num_samples']): r for r in report['rows']}
  assert set(rows) == {(32, 1), (64, 1), (32, 2)}
  for row in rows.values():
    assert row['pixel_steps'] == row['chroma_size'] ** 2
    # The loop's time less the conditioning's: noise-sized at tiny scale.
    assert row['seconds_per_pixel_step'] >= 0
    assert row['times_flop_bound'] >= 0 and row['flop_bound_seconds'] > 0
  flops = {k: r['generator_flops_teacher_forced'] for k, r in rows.items()}
  assert flops[64, 1] == pytest.approx(4 * flops[32, 1], rel=0.1)
  assert flops[32, 2] == pytest.approx(2 * flops[32, 1], rel=1e-6)
