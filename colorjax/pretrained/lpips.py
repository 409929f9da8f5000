"""lpips `LPIPS(net='alex', version='0.1')` state dicts -> LPIPSAlex.

The network, `colorjax.models.lpips.LPIPSAlex`, is named like the state
dict and converts with the shared machinery (`common.underscore_key`).
`prepare_state` here checks and drops the entries that have no Flax
parameter: the `scaling_layer` buffers (fixed constants in the network) and
the `lins.K` duplicates of the `linK` layers.
"""

from typing import Dict, Mapping

import numpy as np

from colorjax.models import lpips as lpips_net
from colorjax.pretrained import common


def prepare_state(state: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Checks and drops the entries that have no Flax parameter.

  `scaling_layer.shift/scale` (optional) must hold the fixed constants;
  `lins.K.model.1.weight` (optional duplicates of `linK.model.1.weight`)
  must equal them, or stand in for them when those are absent.
  """
  state = dict(state)
  problems = []
  for name, value in (('shift', lpips_net.SHIFT),
                      ('scale', lpips_net.SCALE)):
    key = f'scaling_layer.{name}'
    if key in state:
      got = common.to_numpy(state.pop(key))
      if got.size != 3 or not np.allclose(got.reshape(-1), value, atol=1e-6):
        problems.append(f'{key} = {got.reshape(-1).tolist()} (expected '
                        f'{list(value)})')
  for key in [k for k in state if k.startswith('lins.')]:
    alias = 'lin' + key[len('lins.'):]       # lins.0.model... -> lin0.model...
    duplicate = state.pop(key)
    if alias not in state:
      state[alias] = duplicate
    elif not np.array_equal(common.to_numpy(state[alias]),
                            common.to_numpy(duplicate)):
      problems.append(f'{key} differs from {alias}')
  if problems:
    raise common.CheckpointMismatchError(
        'state dict does not match lpips lpips_alex: ' + '; '.join(problems))
  return state
