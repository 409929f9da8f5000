"""What every PyTorch peer (benchmarks/torch_<method>.py) measures the same
way: its own peak memory and the timed loop."""

import os
import time


def peak_rss_mb():
  """VmHWM: this process's own peak RSS (ru_maxrss is inherited on exec)."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024
  return float('nan')


def timed_steps(step, steps, sync):
  """Runs `step()` `steps` times: (its last result, seconds per step,
  cores kept busy: this process's CPU seconds per wall second, which shows
  how much of the machine the framework's threads used)."""
  cpu = sum(os.times()[:2])
  start = time.perf_counter()
  for _ in range(steps):
    result = step()
  sync()
  elapsed = time.perf_counter() - start
  return result, elapsed / steps, round((sum(os.times()[:2]) - cpu) / elapsed,
                                        2)
