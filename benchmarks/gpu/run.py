"""Every GPU figure in one short run: `bash benchmarks/gpu.sh OUTDIR [--cpu]`
calls this after installing the wheel bundle.

Runs, in priority order, each as its own `python -m colorjax.benchmark`
process (a fresh device and allocator per run) under a per-run timeout and
one overall time budget, so a run that does not fit is recorded as skipped
rather than cutting the whole session short:
  1. every method's paper-scale train step in bfloat16, JAX and its PyTorch
     peer on CUDA (MFU against the chip's bf16 peak);
  2. PixSem's cached sampler: 8 samples of one 128x128 image (latency);
  3. the input pipeline's images/s per host core;
  4. every train step again in float32.
Writes OUTDIR/<run>.json (the benchmark's own report), OUTDIR/results.json
(all runs, the machine, versions, the date) and OUTDIR/summary.md (tables).

--cpu: the same runs at the configs' tiny twins on the CPU, one timed step:
the form CI runs (tests/test_gpu_benchmark.py), so the script is known to
work before a GPU is ever used.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# (name, config at paper scale, its CPU twin).
TRAIN = (
    ('chromacmc', 'configs/chromacmc.py', 'configs/chromacmc.py:tiny'),
    ('scenecontext', 'configs/scenecontext.py', 'configs/scenecontext.py:tiny'),
    ('semanticdriven_stage1', 'configs/semanticdriven.py:segmentation',
     'configs/semanticdriven.py:segmentation_tiny'),
    ('semanticdriven_stage2', 'configs/semanticdriven.py:colorization',
     'configs/semanticdriven.py:colorization_tiny'),
    ('instanceaware', 'configs/instanceaware.py',
     'configs/instanceaware.py:tiny'),
    ('pixsem', 'configs/pixsem.py', 'configs/pixsem.py:tiny'),
)


def plan(cpu: bool, paper_cpu: bool = False):
  """[(run name, benchmark args)] in priority order. paper_cpu: every
  paper-scale train step in float32 at batch 2 on this CPU (the table in
  BENCHMARKS.md), three timed steps each."""
  if paper_cpu:
    return [(f'train_{name}_float32', [
        'train', f'--config={paper}', '--dtype=float32', '--steps=3',
        '--batch_size=2']) for name, paper, _ in TRAIN]
  steps = ['--steps=1'] if cpu else ['--steps=10']
  small = ['--batch_size=2'] if cpu else []   # paper batch sizes on a GPU
  runs = []
  for dtype in ('bfloat16', 'float32'):
    for name, paper, tiny in TRAIN:
      runs.append((f'train_{name}_{dtype}', [
          'train', f'--config={tiny if cpu else paper}', f'--dtype={dtype}',
          *steps, *small]))
    if dtype == 'bfloat16':
      runs.append(('sample_pixsem_8', [
          'sample', f'--config=configs/pixsem.py{":tiny" if cpu else ""}',
          '--num_samples=8', '--naive=false',
          '--steps=1' if cpu else '--steps=3']))
      workers = 2 if cpu else max(1, min(8, (os.cpu_count() or 2) - 2))
      runs.append(('pipeline', [
          'pipeline', f'--workers={workers}',
          '--dataset=semantic_shapes/64' if cpu else
          '--dataset=semantic_shapes/256',
          '--config=configs/chromacmc.py' + (':tiny' if cpu else ''),
          '--num_batches=3' if cpu else '--num_batches=20',
          '--batch_size=8' if cpu else '--batch_size=32']))
  return runs


def machine():
  info = {'host': platform.node(), 'cpu_cores': os.cpu_count(),
          'python': sys.version.split()[0]}
  try:
    gpu = subprocess.run(
        ['nvidia-smi', '--query-gpu=name,memory.total,driver_version',
         '--format=csv,noheader'], capture_output=True, text=True,
        timeout=30, check=True).stdout.strip()
    info['gpu'] = gpu
  except (OSError, subprocess.SubprocessError):
    info['gpu'] = None
  for module in ('jax', 'jaxlib', 'flax', 'torch'):
    try:
      info[module] = subprocess.run(
          [sys.executable, '-c', f'import {module}; print({module}.__version__)'],
          capture_output=True, text=True, timeout=120).stdout.strip() or None
    except subprocess.SubprocessError:
      info[module] = None
  return info


def run_one(name, args, outdir, timeout):
  output = os.path.join(outdir, f'{name}.json')
  command = [sys.executable, '-m', 'colorjax.benchmark', *args,
             f'--output={output}']
  start = time.perf_counter()
  record = {'name': name, 'command': ' '.join(command[1:])}
  try:
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT, check=False)
    record['wall_s'] = round(time.perf_counter() - start, 1)
    if result.returncode == 0 and os.path.exists(output):
      with open(output) as f:
        record['report'] = json.load(f)
      record['status'] = 'ok'
      peer = record['report'].get('torch')
      if isinstance(peer, str):
        record['status'] = 'ok, peer: ' + peer[:200]
    else:
      record['status'] = f'failed (exit {result.returncode})'
      record['stderr_tail'] = result.stderr[-2000:]
  except subprocess.TimeoutExpired:
    record['wall_s'] = round(time.perf_counter() - start, 1)
    record['status'] = f'timed out after {timeout:.0f} s'
  return record


def _fmt(value, digits=2):
  if value is None:
    return ''
  if isinstance(value, float):
    return f'{value:.{digits}f}' if abs(value) < 1000 else f'{value:,.0f}'
  return str(value)


def summary(results) -> str:
  title = {'gpu': 'GPU benchmark', 'cpu': 'GPU benchmark, CPU form',
           'paper_cpu': 'Paper-scale train steps on the CPU'}[
               results.get('mode', 'gpu')]
  lines = [f'# {title}, {results["date"]}', '',
           f'machine: {json.dumps(results["machine"])}', '',
           '| run | status | wall s | JAX img/s | PyTorch img/s | ratio | '
           'JAX GFLOP/s | JAX MFU / peak | PyTorch MFU / peak | '
           'JAX peak MB | PyTorch peak MB | step GFLOPs | batch |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  others = []
  for run in results['runs']:
    report = run.get('report') or {}
    if report.get('benchmark') != 'train':
      if report:
        others.append(run)
      else:
        lines.append(f'| {run["name"]} | {run["status"]} | '
                     f'{_fmt(run.get("wall_s"), 0)} |' + ' |' * 10)
      continue
    jax_r = report['jax']
    peer = report.get('torch') if isinstance(report.get('torch'), dict) \
        else {}
    memory = next((v for k, v in jax_r.items()
                   if k.startswith('peak_memory_mb')), None)
    fraction = lambda r: r.get('mfu_bf16_peak', r.get('fraction_of_fp32_peak'))
    lines.append(
        f'| {run["name"]} | {run["status"][:40]} | {_fmt(run["wall_s"], 0)} | '
        f'{_fmt(jax_r["images_per_s"])} | {_fmt(peer.get("images_per_s"))} | '
        f'{_fmt(report.get("ratio_jax_over_torch"))} | '
        f'{_fmt(jax_r.get("gflop_per_s"), 0)} | {_fmt(fraction(jax_r), 3)} | '
        f'{_fmt(fraction(peer), 3)} | {_fmt(memory, 0)} | '
        f'{_fmt(peer.get("peak_device_mb") or peer.get("peak_rss_mb"), 0)} | '
        f'{_fmt(report.get("train_step_gflops"), 1)} | '
        f'{report.get("batch_size")} |')
  for run in others:
    report = dict(run['report'])
    for key in ('date', 'command'):
      report.pop(key, None)
    lines += ['', f'## {run["name"]} ({run["status"]}, {run["wall_s"]} s)',
              '', '```', json.dumps(report, indent=1), '```']
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('outdir')
  parser.add_argument('--cpu', action='store_true',
                      help='tiny twins on the CPU (the CI form)')
  parser.add_argument('--paper_cpu', action='store_true',
                      help='paper-scale train steps, float32, batch 2, on '
                      'the CPU (BENCHMARKS.md\'s CPU table; about 15 min on '
                      '2 cores)')
  parser.add_argument('--budget_s', type=float, default=None,
                      help='overall time budget (default 450 s on a GPU, '
                      '900 s with --cpu)')
  parser.add_argument('--only', default='',
                      help='comma-separated run names (default: all)')
  args = parser.parse_args()
  os.makedirs(args.outdir, exist_ok=True)
  budget = args.budget_s or (3600.0 if args.paper_cpu else
                             900.0 if args.cpu else 450.0)
  deadline = time.perf_counter() + budget
  runs = plan(args.cpu, args.paper_cpu)
  if args.only:
    wanted = set(args.only.split(','))
    unknown = sorted(wanted - {name for name, _ in runs})
    if unknown:
      parser.error(f'--only: no run named {", ".join(unknown)}; the runs are '
                   + ', '.join(name for name, _ in runs))
    runs = [r for r in runs if r[0] in wanted]
  results = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec='seconds'), 'mode': ('paper_cpu' if args.paper_cpu else
                                   'cpu' if args.cpu else 'gpu'),
             'budget_s': budget, 'machine': machine(), 'runs': []}
  for name, bench_args in runs:
    left = deadline - time.perf_counter()
    if left < 20:
      results['runs'].append({'name': name, 'status':
                              f'skipped: the {budget:.0f} s budget was spent'})
      continue
    record = run_one(name, bench_args, args.outdir,
                     timeout=min(left, 900 if args.paper_cpu else 240))
    results['runs'].append(record)
    print(f'{name:32s} {record["status"][:60]:60s} {record["wall_s"]:6.1f} s',
          flush=True)
    with open(os.path.join(args.outdir, 'results.json'), 'w') as f:
      json.dump(results, f, indent=1, default=str)
  results['total_s'] = round(budget - (deadline - time.perf_counter()), 1)
  with open(os.path.join(args.outdir, 'results.json'), 'w') as f:
    json.dump(results, f, indent=1, default=str)
  text = summary(results)
  with open(os.path.join(args.outdir, 'summary.md'), 'w') as f:
    f.write(text)
  print(text)
  failed = [r['name'] for r in results['runs']
            if not r['status'].startswith(('ok', 'skipped'))]
  if failed:
    sys.exit(f'failed: {", ".join(failed)}')


if __name__ == '__main__':
  main()
