"""Registry of the methods, by the name configs use (`config.method`)."""

import importlib

_METHODS = {
    'chromacmc': 'colorjax.methods.chromacmc:ChromaCMC',
    'pixsem': 'colorjax.methods.pixsem:PixSemMethod',
}


def get_method(config):
  """Instantiates the method named by `config.method`."""
  if config.method not in _METHODS:
    raise ValueError(f'unknown method {config.method!r}; known: '
                     f'{sorted(_METHODS)}')
  module, name = _METHODS[config.method].split(':')
  return getattr(importlib.import_module(module), name)(config)
