"""Evaluation results: finding, reading, comparing and aggregating them.

The library under the jobs that put results side by side: `colorjax.compare`
(its command line: several workdirs in one table) and `colorjax.suite` (every
method and ablation, means over seeds). A result is the JSON that
`colorjax.evaluate` writes (`<workdir>/eval/<preset>/metrics.json`); results
are compared only when they come from one protocol (`check_same_protocol`):
numbers from different protocols are not comparable.
"""

import csv
import io
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from colorjax import errors
from colorjax import protocols


class ProtocolMismatchError(errors.UserError, ValueError):
  """The results were produced by different evaluation protocols."""


# ------------------------------------------------------------ files
def read_json(path: str) -> Optional[dict]:
  """The JSON file at `path`, None where there is none."""
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def write_json(path: str, value) -> None:
  """`value` as indented JSON at `path` (atomically: a reader sees the old
  file or the new one; numpy numbers and arrays as their values)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=1, sort_keys=True, default=_jsonable)
  os.replace(tmp, path)


def _jsonable(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  return str(value)


def results_path(workdir: str, preset: str) -> str:
  """Where `colorjax.evaluate --preset=<preset>` puts a workdir's results."""
  return os.path.join(workdir, 'eval', preset, 'metrics.json')


def find_results(path: str, preset: Optional[str] = None) -> str:
  """The metrics.json of a workdir (or the file itself)."""
  if os.path.isfile(path):
    return path
  eval_dir = os.path.join(path, 'eval')
  if preset:
    candidate = results_path(path, preset)
    if os.path.isfile(candidate):
      return candidate
    raise FileNotFoundError(
        f'{path}: no {candidate}; run python -m colorjax.evaluate '
        f'--workdir={path} --preset={preset}')
  found = sorted(d for d in (os.listdir(eval_dir) if os.path.isdir(eval_dir)
                             else [])
                 if os.path.isfile(os.path.join(eval_dir, d, 'metrics.json')))
  if len(found) != 1:
    raise FileNotFoundError(
        f'{path}: {"no" if not found else "several"} evaluation results '
        f'under {eval_dir} ({", ".join(found) or "none"}); name one with '
        '--preset or run python -m colorjax.evaluate --workdir=... '
        '[--preset=...]')
  return os.path.join(eval_dir, found[0], 'metrics.json')


# --------------------------------------------------------- protocols
def protocol_key(results: dict) -> Dict[str, object]:
  """The parts of a result's protocol that must match to compare."""
  key = {'preset': results.get('preset'),
         'num_images': results.get('num_images'),
         'weights': sorted(results.get('weights', {}).values())}
  for name, entry in sorted(results.get('protocol', {}).items()):
    key[name] = {f: entry.get(f) for f in protocols.COMPARED_FIELDS
                 if f in entry}
  return key


def check_same_protocol(runs: Dict[str, dict]) -> None:
  """Raises ProtocolMismatchError, naming every difference, unless all the
  results of {label: results} come from one protocol."""
  labels = list(runs)
  reference = protocol_key(runs[labels[0]])
  problems = []
  for label in labels[1:]:
    other = protocol_key(runs[label])
    for field in sorted(set(reference) | set(other)):
      if reference.get(field) != other.get(field):
        problems.append(f'{field}: {labels[0]} has {reference.get(field)}, '
                        f'{label} has {other.get(field)}')
  if problems:
    raise ProtocolMismatchError(
        'results come from different evaluation protocols and are not '
        'comparable:\n  ' + '\n  '.join(problems))


def compare(paths: Sequence[str], preset: Optional[str] = None):
  """{label: results} of the paths, checked to share one protocol."""
  runs: Dict[str, dict] = {}
  for path in paths:
    results = read_json(find_results(path, preset))
    label = os.path.basename(os.path.normpath(
        path if os.path.isdir(path) else results.get('workdir', path)))
    while label in runs:
      label += "'"
    runs[label] = results
  check_same_protocol(runs)
  return runs


# ------------------------------------------------------------ numbers
def is_number(value) -> bool:
  """An int or float result (not a bool)."""
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def numbers(result: dict, exclude: Sequence[str] = ('step',)) -> dict:
  """The numeric results of one evaluation (its step left out)."""
  return {k: v for k, v in result.items()
          if is_number(v) and k not in exclude}


def tables(runs: Dict[str, dict]):
  """(markdown, csv text) of the runs."""
  first = next(iter(runs.values()))
  preset = first.get('preset')
  metrics = sorted({k for r in runs.values() for k in numbers(r)})
  headline = ([k for k in protocols.get(preset).headline
               if any(k in r for r in runs.values())] if preset else metrics)
  fmt = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)  # pylint: disable=unnecessary-lambda-assignment
  lines = ['| run | method | step | ' + ' | '.join(headline) + ' |',
           '|---|---|---|' + '---|' * len(headline)]
  for label, r in runs.items():
    method = r.get('method')
    if r.get('random_init'):     # a part the paper pretrains started random
      method = f'{method} (random init: {", ".join(r["random_init"])})'
    lines.append(f'| {label} | {method} | {r.get("step")} | ' +
                 ' | '.join(fmt(r[k]) if k in r else '-' for k in headline)
                 + ' |')
  lines += ['', f'Protocol: preset {preset}, {first.get("num_images")} '
            f'images, ' + '; '.join(
                f'{n}: {p["data"]} at {p["resolution"]} resolution'
                for n, p in sorted(first.get('protocol', {}).items()))]
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(['run', 'method', 'random_init', 'step'] + metrics)
  for label, r in runs.items():
    writer.writerow([label, r.get('method'),
                     ' '.join(r.get('random_init') or ()), r.get('step')] +
                    [r.get(k, '') for k in metrics])
  return '\n'.join(lines) + '\n', out.getvalue()


# ------------------------------------------------------- means over seeds
def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float], int]:
  """(mean, sample standard deviation (ddof 1; None for one value), count)
  of the finite numbers in `values` (NaN and None left out; an empty list
  gives (nan, None, 0))."""
  finite = [float(v) for v in values
            if is_number(v) and math.isfinite(float(v))]
  n = len(finite)
  if not n:
    return math.nan, None, 0
  mean = sum(finite) / n
  if n == 1:
    return mean, None, 1
  var = sum((v - mean) ** 2 for v in finite) / (n - 1)
  return mean, math.sqrt(var), n


def aggregate(groups: Dict[str, List[dict]], exclude: Sequence[str] = ()
              ) -> Dict[str, Dict[str, Tuple[float, Optional[float], int]]]:
  """{label: {key: (mean, std, count)}} of every numeric key (but
  `exclude`) of each group's results (a group: the runs of one
  configuration, one per seed)."""
  out = {}
  for label, results in groups.items():
    keys = sorted({k for r in results for k in numbers(r, exclude)})
    out[label] = {k: mean_std([r.get(k) for r in results]) for k in keys}
  return out


def format_number(value, digits: int = 4) -> str:
  """4 significant digits; integers of 10,000 and more with separators."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '-'
  if isinstance(value, float) and value.is_integer() and abs(value) >= 1e4:
    value = int(value)
  if isinstance(value, int):
    return f'{value:,}'
  return f'{value:.{digits}g}'


def format_mean_std(stat: Tuple[float, Optional[float], int],
                    digits: int = 4) -> str:
  """'16.75 ± 0.12' over several seeds, '16.75' for one (or no spread:
  a parameter count), '-' for none."""
  mean, std, n = stat
  if not n:
    return '-'
  if not std:
    return format_number(mean, digits)
  return f'{format_number(mean, digits)} ± {std:.2g}'


def seed_tables(groups: Dict[str, List[dict]],
                columns: Sequence[Tuple[str, str]],
                label_keys: Sequence[str] = ('method', 'variant')):
  """(markdown, csv text) of runs grouped by configuration, each cell the
  mean ± sample std over the group's results (its seeds).

  groups: {label: [results, one per seed]} in table order; columns: (key,
  header) of the markdown's numeric columns (a key no result has is left
  out); label_keys: text fields of the first result shown before them.
  The CSV has every numeric key (but seed and step) as <key>_mean and
  <key>_std, and n_seeds.
  """
  stats = aggregate(groups, exclude=('seed', 'step'))
  shown = [(k, h) for k, h in columns
           if any(k in s for s in stats.values())]
  lines = ['| ' + ' | '.join(list(label_keys) + ['seeds'] +
                             [h for _, h in shown]) + ' |',
           '|' + '---|' * (len(label_keys) + 1 + len(shown))]
  for label, results in groups.items():
    first = results[0]
    seeds = len(results)
    cells = [str(first.get(k, '')) for k in label_keys] + [str(seeds)]
    cells += [format_mean_std(stats[label][k]) if k in stats[label] else '-'
              for k, _ in shown]
    lines.append('| ' + ' | '.join(cells) + ' |')
  keys = sorted({k for s in stats.values() for k in s})
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(list(label_keys) + ['n_seeds'] + [
      f'{k}_{part}' for k in keys for part in ('mean', 'std')])
  for label, results in groups.items():
    row = [results[0].get(k, '') for k in label_keys] + [len(results)]
    for k in keys:
      mean, std, n = stats[label].get(k, (math.nan, None, 0))
      row += [repr(mean) if n else '', repr(std) if std is not None else '']
    writer.writerow(row)
  return '\n'.join(lines) + '\n', out.getvalue()


def runs_csv(results: Sequence[dict], first_keys: Sequence[str]) -> str:
  """One CSV row per result (every seed), every numeric key."""
  keys = sorted({k for r in results for k in numbers(r, first_keys)})
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(list(first_keys) + keys)
  for r in results:
    writer.writerow([r.get(k, '') for k in first_keys] +
                    [r.get(k, '') for k in keys])
  return out.getvalue()
