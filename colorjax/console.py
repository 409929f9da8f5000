"""What a person running colorjax sees: short, readable, process 0 only.

Library logs (orbax, grain, tfds, absl INFO) are silenced by
`quiet_libraries` unless --verbosity >= 1; the trainer prints what it
prepares, one line per log step, evaluation tables and where files went.
"""

import logging as std_logging
import os
import sys
import time
import warnings
from typing import Dict, Mapping

from absl import logging

_LIBRARY_LOGGERS = ('absl', 'orbax', 'grain', 'tensorflow_datasets',
                    'jax._src', 'etils', 'tensorflow')


QUIET_ENV = 'COLORJAX_QUIET'


def quiet_libraries(verbosity: int) -> None:
  """Below verbosity 1, library logs below ERROR stay off the terminal, in
  this process and (through the environment) in grain's worker processes;
  colorjax's own messages are printed by `say`."""
  if verbosity >= 1:
    return
  os.environ[QUIET_ENV] = '1'
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  logging.set_verbosity(logging.ERROR)
  apply_quiet_from_env()


def apply_quiet_from_env() -> None:
  """Called where worker processes import colorjax (the preprocessing)."""
  if not os.environ.get(QUIET_ENV):
    return
  for name in _LIBRARY_LOGGERS:
    std_logging.getLogger(name).setLevel(std_logging.ERROR)
  warnings.filterwarnings('ignore', category=DeprecationWarning)


def say(message: str) -> None:
  import jax  # pylint: disable=g-import-not-at-top  (workers never need it)
  if jax.process_index() == 0:
    print(message, file=sys.stdout, flush=True)


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  if seconds >= 60:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds}s'


class Progress:
  """steps/s over the last log window and the ETA from it."""

  def __init__(self, total: int, start_step: int):
    self.total = total
    self.last_step = start_step
    self.last_time = time.time()
    self.rate = 0.0

  def update(self, step: int) -> float:
    now = time.time()
    self.rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    return self.rate

  def eta_seconds(self, step: int) -> float:
    return (self.total - step) / max(self.rate, 1e-9)


def _main_values(scalars: Mapping[str, float], limit: int = 6):
  # A loss's `_weighted` copy (its share of the objective) stays in the
  # metrics files, off the line.
  keys = [k for k in scalars
          if k.startswith('loss') and not k.endswith('_weighted')]
  keys += [k for k in scalars if k.startswith('bits_per_dim')]
  values = [(k, scalars[k]) for k in keys[:limit]]
  rates = {k: v for k, v in scalars.items() if k.startswith('learning_rate')}
  if len(set(rates.values())) == 1:     # one rate for every network: 'lr'
    values.append(('learning_rate', next(iter(rates.values()))))
  elif rates:
    values += list(rates.items())[:2]
  return values


def _number(value: float) -> str:
  if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
    return f'{value:.2e}'
  return f'{value:.4g}'


def _short(key: str) -> str:
  """'loss_cmc' -> 'cmc', 'learning_rate_generator' -> 'lr_generator'."""
  if key.startswith('loss_'):
    return key[len('loss_'):]
  return key.replace('learning_rate', 'lr').replace('bits_per_dim', 'bpd')


def progress_line(step: int, total: int, rate: float, eta: float,
                  scalars: Mapping[str, float]) -> None:
  width = len(str(total))
  values = '  '.join(f'{_short(k)} {_number(v)}'
                     for k, v in _main_values(scalars))
  say(f'step {step:>{width}}/{total}  {rate:6.2f} steps/s  '
      f'ETA {_duration(eta):>7}  {values}')


def eval_table(step: int, results: Mapping[str, Dict[str, float]],
               seconds: float) -> None:
  """One row per evaluator: name, then its metrics."""
  rows = {name: values for name, values in results.items() if values}
  if not rows:
    return
  say(f'eval at step {step} ({seconds:.1f} s)')
  width = max(len(name) for name in rows)
  for name, values in rows.items():
    cells = '  '.join(f'{k} {_number(v)}' for k, v in values.items())
    say(f'  {name:<{width}}  {cells}')
