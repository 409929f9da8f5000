"""colorjax: JAX/Flax reimplementations of five semantic colorization papers."""

__version__ = '0.1.0'
