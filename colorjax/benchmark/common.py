"""What every benchmark shares: the config it loads (with --dtype and --set
overrides), the checkout's paths (configs/, the PyTorch peers in
benchmarks/), timing, the CPU share of other processes while a section was
timed, and peak memory.

Kept apart from the benchmarks so that each of them (pipeline, train,
sample, infer, editor) reads the same way and `__main__` only maps flags to
arguments.
"""

import ast
import importlib.util
import os
import sys
import time
from typing import Callable, Iterable, Optional

import jax
import jax.numpy as jnp

from colorjax import config_lib
from colorjax import errors

# Warm-up batches or steps before a timed section (compilation, caches).
WARMUP_BATCHES = 2

# The checkout: configs/ and benchmarks/ (the PyTorch peers are not part of
# the installed package).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def load_config(spec: str, dtype: Optional[str] = None,
                overrides: Iterable[str] = ()):
  """configs/<paper>.py[:arg] -> its config, with `model.dtype` = dtype
  (if given) and each KEY=VALUE override (--set) applied."""
  path = spec.partition(':')[0]
  config = config_lib.load_config(spec)
  if dtype:
    config.model.dtype = dtype
  for item in overrides:
    key, eq, value = item.partition('=')
    *parents, leaf = key.split('.')
    target = config
    for parent in parents:
      target = target.get(parent) if hasattr(target, 'get') else None
    if not eq or target is None or leaf not in target:
      raise errors.ConfigError(f'--set={item}: expected KEY=VALUE with KEY a '
                               f'field of {path}')
    try:
      target[leaf] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      target[leaf] = value
  return config


def peer_path(name: str) -> str:
  """benchmarks/<name>.py of this checkout (a PyTorch peer)."""
  return os.path.join(REPO, 'benchmarks', f'{name}.py')


def torch_peer_module(name: str):
  """benchmarks/<name>.py of this checkout, imported (benchmark peers are
  not part of the installed package)."""
  spec = importlib.util.spec_from_file_location(name, peer_path(name))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def time_calls(fn: Callable[[], object], steps: int) -> float:
  """Seconds per call of fn() after two warm-up calls."""
  for _ in range(2):
    fn()
  start = time.perf_counter()
  for _ in range(steps):
    fn()
  return (time.perf_counter() - start) / steps


class CpuShare:
  """Share of the machine's CPU time used by *other* processes while the
  block ran (/proc/stat minus this process and its waited-for children)."""

  def __enter__(self):
    self._start = (_machine_busy_s(), _own_cpu_s(), time.perf_counter())
    return self

  def __exit__(self, *unused):
    busy, own, wall = (b - a for a, b in zip(
        self._start, (_machine_busy_s(), _own_cpu_s(), time.perf_counter())))
    capacity = wall * (os.cpu_count() or 1)
    # Cores this process (and its waited-for children) kept busy.
    self.cores_used = round(own / wall, 2) if wall > 0 else None
    # None where /proc/stat cannot be read (not Linux).
    self.other = None if busy != busy else round(
        max(busy - own, 0.0) / capacity, 3)


def _machine_busy_s():
  try:
    with open('/proc/stat') as f:
      fields = [int(v) for v in f.readline().split()[1:]]
  except (OSError, ValueError):
    return float('nan')
  idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
  return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def _own_cpu_s():
  times = os.times()
  return times.user + times.system + times.children_user + \
      times.children_system


def warn_if_busy(section, share):
  if share is not None and share > 0.1:
    print(f'warning: other processes used {share:.0%} of the CPU while '
          f'{section} was timed; ratios taken on a busy machine are not '
          'comparable', file=sys.stderr)


def peak_memory_mb():
  """(peak MB, what it measures): the device's peak_bytes_in_use, or this
  process's peak RSS where the device reports none (CPU)."""
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return stats['peak_bytes_in_use'] / 2 ** 20, 'device peak_bytes_in_use'
  return peak_rss_mb(), 'process peak RSS (VmHWM)'


def peak_rss_mb() -> float:
  """This process's own peak RSS (VmHWM; unlike ru_maxrss it is not
  inherited from a parent across fork/exec)."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024
  raise OSError('VmHWM not in /proc/self/status')


def random_state(method, batch_size: int = 1):
  """(a random-init TrainState of `method`, the zero batch it was built
  from): what a benchmark times when no workdir is given.
  `method.init_state` is already one compiled program (`compiled_init`,
  with its init compiler options), so it is called directly: an outer jit
  would make it a nested trace and drop them."""
  zeros = {k: jnp.zeros(v.shape, v.dtype)
           for k, v in method.batch_spec(batch_size).items()}
  return method.init_state(jax.random.PRNGKey(0), zeros), zeros

