"""Running a whole suite: plan, execute every run, report.

`run_suite` is what `python -m colorjax.compare --suite=...` calls: it
plans the runs, prints them (`dry_run`, with `cost` their training FLOPs),
or executes them in order (a run whose dependency failed is not run; one
line of progress per run), then tabulates the finished ones.
"""

import os
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence

from colorjax import protocols
from colorjax import results as results_lib
from colorjax.suite import cost as cost_lib
from colorjax.suite import execution
from colorjax.suite import planning
from colorjax.suite import report

def _summary(run: planning.Run, record: dict,
             metrics: Optional[dict]) -> str:
  """A finished run's progress line: training time and rate, headline
  metrics, latency."""
  parts = []
  if record.get('train_s') is not None and not run.eval_only:
    rate = record.get('train_images_per_s')
    parts.append(f'trained {run.steps} steps in '
                 f'{report.duration(record["train_s"])}' +
                 (f' ({rate:.1f} img/s)' if rate else ''))
  if metrics:
    shown = [f'{k} {results_lib.format_number(metrics[k])}'
             for k in ('psnr', 'ssim', 'miou') if k in metrics]
    parts.append(' '.join(shown))
  prof = record.get('profile', {})
  if 'latency_ms' in prof:
    parts.append(f'{prof["latency_ms"]:.1f} ms/img')
  return ', '.join(parts)


def run_suite(suite: str = 'demo', output: str = 'suite', quick: bool = False,
              images: Optional[int] = None, seeds: int = 1,
              only: Optional[Sequence[str]] = None,
              data_dir: Optional[str] = None, shapes: Optional[str] = None,
              preset: Optional[str] = None, max_images: Optional[int] = None,
              extra: Sequence[str] = (), dry_run: bool = False,
              argv: Optional[Sequence[str]] = None, say=print,
              cost: bool = False
              ) -> Dict[str, Any]:
  """Plans, trains, evaluates and tabulates a suite (colorjax.suite's
  docstring).

  Returns {'runs': [...], 'failed': [run names], 'files': {...}}; with
  dry_run, only prints the plan (with cost, also each run's training FLOPs
  and device-hours, and their totals, as 'costs').
  """
  kind = 'quick' if quick else suite
  preset = preset or planning.SUITE_PRESET
  protocols.get(preset)
  max_images = max_images or planning.DEFAULT_EVAL_IMAGES[kind]
  runs = planning.plan(suite, output, quick, images, seeds, only, data_dir,
                       shapes, extra)
  images = images or planning.DEFAULT_IMAGES[kind]
  left_out = not planning.model_resolution(preset) and any(
      r.eval_only for r in runs)
  if left_out:
    runs = [r for r in runs if not r.eval_only]
  say(f'suite {kind}: {len(runs)} runs, {images:,} training images each, '
      f'seeds 0..{seeds - 1}, evaluation preset {preset} on '
      f'{max_images} images -> {os.path.abspath(output)}')
  if left_out:
    say(f'(gt_maps rows left out: ground-truth maps enter only the model-'
        f'input protocol, and preset {preset} scores at full resolution)')
  if dry_run:
    costs = {}
    for i, run in enumerate(runs, 1):
      what = ('evaluation only' if run.eval_only else
              f'{run.steps} steps of batch {run.batch_size}')
      if cost and not run.eval_only:
        costs[run.name, run.seed] = c = cost_lib.train_cost(run)
        what += (f"; {c['train_gflops_per_image']:.4g} train GFLOP/image, "
                 f"{c['train_pflop']:.4g} PFLOP")
      say(f'[{i:>2}/{len(runs)}] {run.name} seed {run.seed}: {what}')
      say(f'    {run.command()}')
      if run.row:
        say(f'    python -m colorjax.evaluate --workdir={run.workdir} '
            f'--preset={preset} --max_images={max_images}')
    if cost:
      total = {k: sum(c[k] for c in costs.values())
               for k in ('train_pflop', 'hours_at_peak',
                         'hours_at_assumed_mfu')}
      costs['total'] = total
      say(f'training, every run: {total["train_pflop"]:,.0f} PFLOP = '
          f'{total["hours_at_peak"]:,.1f} device-hours at the '
          f'{cost_lib.COST_DEVICE} peak, '
          f'{total["hours_at_assumed_mfu"]:,.1f} at an assumed '
          f'{cost_lib.ASSUMED_MFU:.0%} of it (an estimate: XLA cost analysis '
          'of each train step x its steps; data, evaluation and compilation '
          'not included)')
    return {'runs': runs, 'failed': [], 'files': {}, 'costs': costs}

  started = time.time()
  failed: List[str] = []
  records: Dict[str, dict] = {}
  width = len(str(len(runs)))
  calls = planning.LATENCY_CALLS[kind]
  for i, run in enumerate(runs, 1):
    head = f'[{i:>{width}}/{len(runs)}] {run.name} seed {run.seed}'
    missing = [n for n in run.needs if n in failed]
    if missing:
      say(f'{head}: not run ({", ".join(missing)} failed)')
      failed.append(run.workdir)
      continue
    run_start = time.time()
    # On a terminal the run's name shows while it runs, the line ends when
    # it is done (the run's own output goes to its log meanwhile).
    live = say is print and sys.stdout.isatty()
    if live:
      print(f'{head}: ', end='', flush=True)
    line = (lambda text: print(text[len(head) + 2:])) if live else say  # pylint: disable=unnecessary-lambda-assignment
    try:
      record = execution.execute(run, preset, max_images, calls)
    except Exception as e:  # pylint: disable=broad-except
      os.makedirs(run.workdir, exist_ok=True)
      with open(os.path.join(run.workdir, 'suite.log'), 'a') as f:
        f.write(traceback.format_exc())
      message = str(e).strip().splitlines()
      line(f'{head}: FAILED after '
           f'{report.duration(time.time() - run_start)}: '
           f'{type(e).__name__}: {message[0] if message else ""} (log: '
           f'{os.path.join(run.workdir, "suite.log")})')
      failed.append(run.workdir)
      continue
    records[run.workdir] = record
    metrics = (results_lib.read_json(results_lib.results_path(
        run.workdir, preset)) if run.row else None)
    what = 'done before' if record.get('skipped') else report.duration(
        time.time() - run_start)
    line(f'{head}: {what}; {_summary(run, record, metrics)}')

  rows, runs_metrics = [], {}
  stage1_of = {(r.method, r.seed): r.workdir for r in runs if not r.row}
  for run in runs:
    if not run.row or run.workdir in failed:
      continue
    metrics = results_lib.read_json(results_lib.results_path(run.workdir,
                                                             preset))
    stage1 = None
    if (run.method, run.seed) in stage1_of:
      stage1 = results_lib.read_json(os.path.join(
          stage1_of[run.method, run.seed], planning.RUN_RECORD))
    rows.append(report.run_row(run, records[run.workdir], metrics, stage1))
    runs_metrics[f'{run.name}/seed{run.seed}'] = metrics
  files = {}
  if rows:
    files = report.write_outputs(output, rows, runs_metrics, runs, kind,
                                 images, seeds, preset, max_images, argv,
                                 time.time() - started)
    say(f'wrote {", ".join(sorted(files.values()))}')
  if failed:
    say(f'{len(failed)} run(s) failed: ' + ', '.join(failed))
  return {'runs': runs, 'rows': rows, 'failed': failed, 'files': files}
