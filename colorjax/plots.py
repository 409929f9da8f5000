"""The evaluation's figures as PNG files (matplotlib, no display needed)."""

import os
from typing import Sequence

import numpy as np


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def curve(path: str, x: Sequence[float], y: Sequence[float], title: str,
          xlabel: str, ylabel: str) -> str:
  """A line plot; also writes the points as `<path>.csv`. Returns path."""
  plt = _pyplot()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
  ax.plot(x, y)
  ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
  ax.set_ylim(0, 1.01)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  np.savetxt(os.path.splitext(path)[0] + '.csv', np.stack([x, y], 1),
             delimiter=',', header=f'{xlabel},{ylabel}', comments='')
  return path


def histogram(path: str, values: Sequence[float], title: str, xlabel: str,
              bins: int = 20, value_range=(0.0, 1.0)) -> str:
  """A histogram of per-pair/per-image values; also `<path>.csv` of the
  values. Returns path."""
  plt = _pyplot()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
  ax.hist(np.asarray(values), bins=bins, range=value_range)
  ax.set(title=title, xlabel=xlabel, ylabel='count')
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  np.savetxt(os.path.splitext(path)[0] + '.csv', np.asarray(values),
             delimiter=',', header=xlabel, comments='')
  return path
