"""Puts evaluation results of several workdirs side by side.

  python -m colorjax.compare W1 W2 ... [--preset=paper004] [--output=DIR]

Each argument is a workdir (its `eval/<preset>/metrics.json`, written by
`python -m colorjax.evaluate --preset=...`) or a metrics.json file. The
results must come from the same protocol -- preset, data and split, the
resolution protocol and canvas, image limit and count, and the same
reference-network files (SHA-256) -- or compare refuses, naming what
differs: numbers from different protocols are not comparable. Writes a
markdown table (the preset's headline metrics) and a CSV (every metric).
"""

import csv
import io
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags

from colorjax import protocols


class ProtocolMismatchError(ValueError):
  """The results were produced by different evaluation protocols."""


def find_results(path: str, preset: Optional[str] = None) -> str:
  """The metrics.json of a workdir (or the file itself)."""
  if os.path.isfile(path):
    return path
  eval_dir = os.path.join(path, 'eval')
  if preset:
    candidate = os.path.join(eval_dir, preset, 'metrics.json')
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
        '--preset or run python -m colorjax.evaluate --preset=...')
  return os.path.join(eval_dir, found[0], 'metrics.json')


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


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def tables(runs: Dict[str, dict]):
  """(markdown, csv text) of the runs."""
  first = next(iter(runs.values()))
  preset = first.get('preset')
  metrics = sorted({k for r in runs.values() for k, v in r.items()
                    if _number(v) and k not in ('step',)})
  headline = ([k for k in protocols.get(preset).headline
               if any(k in r for r in runs.values())] if preset else metrics)
  fmt = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)  # pylint: disable=unnecessary-lambda-assignment
  lines = ['| run | method | step | ' + ' | '.join(headline) + ' |',
           '|---|---|---|' + '---|' * len(headline)]
  for label, r in runs.items():
    lines.append(f'| {label} | {r.get("method")} | {r.get("step")} | ' +
                 ' | '.join(fmt(r[k]) if k in r else '-' for k in headline)
                 + ' |')
  lines += ['', f'Protocol: preset {preset}, {first.get("num_images")} '
            f'images, ' + '; '.join(
                f'{n}: {p["data"]} at {p["resolution"]} resolution'
                for n, p in sorted(first.get('protocol', {}).items()))]
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(['run', 'method', 'step'] + metrics)
  for label, r in runs.items():
    writer.writerow([label, r.get('method'), r.get('step')] +
                    [r.get(k, '') for k in metrics])
  return '\n'.join(lines) + '\n', out.getvalue()


def compare(paths: Sequence[str], preset: Optional[str] = None):
  """{label: results} of the paths, checked to share one protocol."""
  runs: Dict[str, dict] = {}
  for path in paths:
    with open(find_results(path, preset)) as f:
      results = json.load(f)
    label = os.path.basename(os.path.normpath(
        path if os.path.isdir(path) else results.get('workdir', path)))
    while label in runs:
      label += "'"
    runs[label] = results
  check_same_protocol(runs)
  return runs


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_enum('preset', None, protocols.names(), 'which results of '
                    'each workdir (default: its only eval/<preset>)')
  flags.DEFINE_string('output', None, 'folder for comparison.md and .csv')

  def main(argv):
    paths: List[str] = argv[1:]
    if len(paths) < 1:
      raise app.UsageError('name at least one workdir or metrics.json')
    try:
      runs = compare(paths, FLAGS.preset)
    except (ProtocolMismatchError, FileNotFoundError) as e:
      print(f'compare: {e}', file=sys.stderr)
      sys.exit(2)
    text, table = tables(runs)
    print(text)
    if FLAGS.output:
      os.makedirs(FLAGS.output, exist_ok=True)
      with open(os.path.join(FLAGS.output, 'comparison.md'), 'w') as f:
        f.write(text)
      with open(os.path.join(FLAGS.output, 'comparison.csv'), 'w') as f:
        f.write(table)

  app.run(main)
