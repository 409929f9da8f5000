"""The suite's report: table rows, tables and the files it writes.

A finished run's record and results become a table row (`run_row`); rows
are grouped by configuration (seeds) with their PSNR against the paper
variant (`group_rows`) and tabulated per evaluation dataset, each checked
to share one protocol (`tables`); `write_outputs` writes suite.md, .csv,
_runs.csv, .json and the figure.
"""

import datetime
import os
import platform
import shlex
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax

from colorjax import results as results_lib
from colorjax.suite import figures
from colorjax.suite import planning

# Table columns after the method/variant/seeds columns: (key, header).
COLUMNS = (
    ('psnr', 'PSNR dB'), ('delta_psnr', 'Δ PSNR vs paper'), ('ssim', 'SSIM'),
    ('rmse_ab', 'ab RMSE'), ('l2ab_auc', 'AuC'),
    ('colorfulness', 'colourfulness'), ('delta_colorfulness', 'dCF'),
    ('miou', 'own mIoU'), ('top1', 'tag/scene top-1'),
    ('train_s', 'train s'), ('train_images_per_s', 'train img/s'),
    ('parameters', 'parameters'), ('gflops', 'GFLOPs/img'),
    ('latency_ms', 'latency ms'))


def run_row(run: planning.Run, record: dict, metrics: dict,
            stage1: Optional[dict] = None) -> Dict[str, Any]:
  """The table's values of one run (one seed)."""
  row = {'method': run.method, 'variant': run.variant, 'seed': run.seed,
         'description': run.description, 'paper': run.paper}
  row.update(results_lib.numbers(metrics))
  tops = list(record.get('aux', {}).values())
  row['top1'] = tops[0] if tops else None
  row['data'] = _data_of(metrics)
  row['step'] = metrics.get('step')
  prof = record.get('profile', {})
  for key in ('parameters', 'gflops', 'latency_ms'):
    row[key] = prof.get(key)
  train_record = record
  if run.eval_only:
    train_record = results_lib.read_json(
        os.path.join(run.source, planning.RUN_RECORD)) or {}
  row['train_s'] = train_record.get('train_s')
  row['resumed_from_step'] = train_record.get('resumed_from_step') or None
  row['train_images_per_s'] = train_record.get('train_images_per_s')
  if stage1 and row['train_s'] is not None and stage1.get('train_s'):
    row['train_s'] += stage1['train_s']
  return {k: v for k, v in row.items() if v is not None}


def _data_of(metrics: dict) -> str:
  entry = metrics.get('protocol', {}).get('colour', {})
  return entry.get('data', '?')


def group_rows(rows: Sequence[dict]) -> Dict[str, List[dict]]:
  """{'method/variant': [row per seed]} in the rows' order, with
  delta_psnr: each seed's PSNR minus the mean PSNR of its method's paper
  variant on the same data."""
  groups: Dict[str, List[dict]] = {}
  for row in rows:
    groups.setdefault(f'{row["method"]}/{row["variant"]}', []).append(row)
  reference = {}
  for label, members in groups.items():
    if members[0].get('paper'):
      mean, _, n = results_lib.mean_std([r.get('psnr') for r in members])
      if n:
        reference[(members[0]['method'], members[0]['data'])] = mean
  for members in groups.values():
    for row in members:
      ref = reference.get((row['method'], row['data']))
      if ref is not None and 'psnr' in row:
        row['delta_psnr'] = row['psnr'] - ref
  return groups


def tables(rows: Sequence[dict], runs_metrics: Dict[str, dict]
           ) -> Tuple[str, str, str]:
  """(markdown, suite.csv, suite_runs.csv): one markdown table per
  evaluation dataset, each checked to share one protocol."""
  by_data: Dict[str, List[dict]] = {}
  for row in rows:
    by_data.setdefault(row['data'], []).append(row)
  # The dataset most runs share first (stable otherwise).
  by_data = dict(sorted(by_data.items(), key=lambda item: -len(item[1])))
  parts = []
  for data, members in by_data.items():
    labelled = {f'{r["method"]}/{r["variant"]}/seed{r["seed"]}':
                runs_metrics[f'{r["method"]}/{r["variant"]}/seed{r["seed"]}']
                for r in members}
    results_lib.check_same_protocol(labelled)
    text, _ = results_lib.seed_tables(
        group_rows(members), COLUMNS,
        label_keys=('method', 'variant', 'description'))
    first = next(iter(labelled.values()))
    gray = results_lib.mean_std(
        [r.get('psnr_gray_baseline') for r in members])
    gt_cf = results_lib.mean_std([r.get('colorfulness_gt') for r in members])
    parts.append(
        f'### {data}\n\n{text}\nProtocol: preset {first.get("preset")}, '
        f'{first.get("num_images")} images of {data}, resolution '
        f'{first["protocol"]["colour"]["resolution"]}; gray baseline '
        f'(ab = 0) PSNR {results_lib.format_number(gray[0])} dB, '
        f'ground-truth colourfulness '
        f'{results_lib.format_number(gt_cf[0])}.\n')
  _, suite_csv = results_lib.seed_tables(
      group_rows(rows), COLUMNS, label_keys=('method', 'variant', 'data'))
  runs_csv = results_lib.runs_csv(
      rows, ('method', 'variant', 'seed', 'data', 'step'))
  return '\n'.join(parts), suite_csv, runs_csv


def write_outputs(output, rows, runs_metrics, runs, kind, images, seeds,
                  preset, max_images, argv, seconds) -> Dict[str, str]:
  """suite.md, suite.csv, suite_runs.csv, suite.json and suite.png in
  `output`: {kind: path}."""
  text, suite_csv, runs_csv = tables(rows, runs_metrics)
  command = ' '.join(shlex.quote(a) for a in (argv or ['python', '-m',
                                                       'colorjax.compare']))
  date = datetime.datetime.now().isoformat(timespec='seconds')
  stage1 = [r for r in runs if not r.row]
  notes = [f'Every run trained on {images:,} images '
           f'(num_train_steps = images / batch), seeds 0..{seeds - 1} '
           '(mean ± sample std over seeds).']
  if stage1:
    notes.append('SemanticDriven: stage 1 (GridNet) trains on the same '
                 'budget and is shared by its variants; its wall-clock is '
                 'in their "train s" (their "train img/s" is stage 2\'s), '
                 'its mIoU is "own mIoU"; gt_maps is the paper colorizer '
                 'scored under the ground-truth maps.')
  resumed = [f'{r["method"]}/{r["variant"]} seed {r["seed"]} (from step '
             f'{r["resumed_from_step"]})' for r in rows
             if r.get('resumed_from_step')]
  if resumed:
    notes.append('Resumed from a checkpoint, "train s" covers the last '
                 'attempt only: ' + ', '.join(resumed) + '.')
  notes.append('train s: wall-clock of the trainer (data, compilation, '
               'steps, checkpoints); train img/s: median of the logged '
               'windows; GFLOPs: XLA cost analysis of predict at batch 1 '
               '(PixSem: of its teacher-forced forward pass, the work its '
               'sampling loop spreads over pixels); latency: jitted '
               'predict, one image, after warm-up.')
  header = (f'# Suite {kind}\n\nCommand: `{command}`  \nDate: {date}  \n'
            f'Machine: {machine()}  \nTotal wall-clock: '
            f'{duration(seconds)}\n\n')
  os.makedirs(output, exist_ok=True)
  files = {'markdown': os.path.join(output, 'suite.md'),
           'csv': os.path.join(output, 'suite.csv'),
           'runs_csv': os.path.join(output, 'suite_runs.csv'),
           'json': os.path.join(output, 'suite.json')}
  with open(files['markdown'], 'w') as f:
    f.write(header + text + '\n' + '\n'.join(f'- {n}' for n in notes) + '\n')
  with open(files['csv'], 'w') as f:
    f.write(suite_csv)
  with open(files['runs_csv'], 'w') as f:
    f.write(runs_csv)
  results_lib.write_json(files['json'], {
      'suite': kind, 'images': images, 'seeds': seeds, 'preset': preset,
      'max_images': max_images, 'date': date, 'machine': machine(),
      'command': command, 'rows': rows})
  path = figures.figure(os.path.join(output, 'suite.png'), runs)
  if path:
    files['figure'] = path
  return files


def machine() -> str:
  """The accelerators and the host CPU that ran the suite."""
  device = jax.devices()[0]
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      names = [l.split(':', 1)[1].strip() for l in f
               if l.startswith('model name')]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  return (f'{jax.device_count()} x {device.device_kind} '
          f'({device.platform}); host {os.cpu_count()} cores, {cpu}')


def duration(seconds: float) -> str:
  """'42s', '3m07s' (minutes past the hour too: '75m00s')."""
  seconds = int(round(seconds))
  return (f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else
          f'{seconds}s')
