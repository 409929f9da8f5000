"""colorjax: JAX/Flax reimplementations of five semantic colorization papers."""

from colorjax import xla_cpu as _xla_cpu

__version__ = '0.1.0'

_xla_cpu.apply()
