"""Registry of the methods, by the name configs use (`config.method`).

`config.method` is a registered name ('chromacmc') or the import path of
any Method subclass ('my_package.my_module:MyMethod'), so a new method runs
through the same trainer, evaluate and colorize without editing colorjax.
"""

import importlib

import jax

from colorjax.data import prior
from colorjax.methods import base

_METHODS = {
    'chromacmc': 'colorjax.methods.chromacmc:ChromaCMC',
    'instanceaware': 'colorjax.methods.instanceaware:InstanceAware',
    'pixsem': 'colorjax.methods.pixsem:PixSemMethod',
    'scenecontext': 'colorjax.methods.scenecontext:SceneContext',
    'segmenter': 'colorjax.methods.segmenter:Segmenter',
    'semanticdriven': 'colorjax.methods.semanticdriven:SemanticDriven',
}


def get_method(config) -> base.Method:
  """Instantiates the method named by `config.method`."""
  target = _METHODS.get(config.method, config.method)
  if ':' not in target:
    raise ValueError(f'unknown method {config.method!r}; known: '
                     f'{sorted(_METHODS)}, or module.path:ClassName')
  module, name = target.split(':')
  cls = getattr(importlib.import_module(module), name)
  if not (isinstance(cls, type) and issubclass(cls, base.Method)):
    raise TypeError(f'{target} is not a colorjax.methods.base.Method')
  return cls(config)


def abstract_train_step(config, batch_size: int):
  """(method, state, batch) of `config`'s train step at `batch_size`, state
  and batch abstract (jax.ShapeDtypeStruct: nothing allocated), to lower the
  step for XLA's cost analysis. A config that rebalances by a dataset's ab
  prior gets a uniform one (no dataset read; the step keeps the same
  gather): `config.loss.prior_file` is set in place."""
  if config.get('loss') and config.loss.get('rebalance'):
    config.loss.prior_file = prior.uniform_prior_file()
  method = get_method(config)
  method.prepare_training(None)
  batch = method.batch_spec(batch_size)
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  return method, state, batch
