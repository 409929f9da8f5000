"""What a suite's training costs, estimated before it runs (`--cost`).

Each run's train step is lowered on abstract arrays of its config's batch
(nothing allocated or compiled, so paper-scale configs are priced on a
laptop); XLA's cost analysis of it, times the run's steps, gives its FLOPs
and the device-hours they take at a device's peak.
"""

from typing import Dict

import jax

from colorjax import config_lib
from colorjax import methods
from colorjax import profiling
from colorjax.suite import planning

# Device-hours in `--cost`: dense bf16 peak FLOP/s and an assumed share of
# it (a utilisation typical of convnets on GPUs, not one measured here).
COST_DEVICE = 'H100/H200 bf16'
ASSUMED_MFU = 0.3


def abstract_train_step(run: planning.Run):
  """(method, state, batch) of a run's config (with its overrides) at its
  batch size, state and batch abstract (`methods.abstract_train_step`:
  nothing allocated, a uniform ab prior), to lower its train step."""
  config = planning.apply_overrides(
      config_lib.load_config(run.config, planning.REPO), run.overrides)
  return methods.abstract_train_step(config, run.batch_size)


def train_cost(run: planning.Run) -> Dict[str, float]:
  """Training FLOPs of one run: XLA's cost analysis of its train step
  (forward, backward, every network the step updates, the optimizer),
  lowered on abstract arrays of the config's batch, x its steps."""
  method, state, batch = abstract_train_step(run)
  lowered = jax.jit(method.train_step).lower(state, batch,
                                             jax.random.PRNGKey(0))
  step_flops = profiling.compiled_flops(lowered)
  total = step_flops * run.steps
  peak = profiling.PEAK_BF16_FLOPS['H200']
  return {'train_gflops_per_image': step_flops / run.batch_size / 1e9,
          'train_pflop': total / 1e15,
          'hours_at_peak': total / peak / 3600,
          'hours_at_assumed_mfu': total / (peak * ASSUMED_MFU) / 3600}
