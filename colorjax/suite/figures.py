"""The suite's figure: every run's colours on the same validation images.

`figure_images` colorizes a run's first evaluation images with its latest
checkpoint (cached in the workdir per step); `figure` lays seed 0 of every
table run out in one image, a block per evaluation dataset.
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import jax
import numpy as np

from colorjax import plots
from colorjax import workdir as workdir_lib
from colorjax.evaluators import base
from colorjax.suite import execution
from colorjax.suite import planning

FIGURE_IMAGES = 6                     # validation images per row
FIGURE_FILE = 'suite_figure.npz'      # a workdir's cached images


def figure_images(workdir: str, count: int) -> Dict[str, np.ndarray]:
  """sRGB [count, H, W, 3] in [0, 1] of a run's latest checkpoint on the
  first `count` evaluation images ('colorized'), with the gray input and
  ground truth; cached in the workdir per checkpoint step."""
  cache = os.path.join(workdir, FIGURE_FILE)
  step = execution.latest_step(workdir)
  if os.path.isfile(cache):
    with np.load(cache) as cached:
      if int(cached['step']) == step and int(cached['count']) == count:
        return {k: cached[k] for k in ('gray', 'truth', 'colorized')}
  config = workdir_lib.load_config(workdir)
  method, state = workdir_lib.restore_for_inference(workdir, config)
  _, batch = execution.example_batch(config, count)
  inputs = {k: v for k, v in batch.items()
            if k in method.predict_keys or k in method.predict_optional_keys}
  ab = jax.jit(method.predict)(state, inputs)['ab']
  ab = np.asarray(base.resize_like(ab, batch['l']))
  scale = config.data.ab_scale
  images = {
      'gray': base.to_rgb(batch['l'], np.zeros_like(batch['ab']), scale),
      'truth': base.to_rgb(batch['l'], batch['ab'], scale),
      'colorized': base.to_rgb(batch['l'], ab, scale)}
  images = {k: np.clip(np.asarray(v, np.float32), 0, 1)
            for k, v in images.items()}
  np.savez(cache, step=step, count=count, **images)
  jax.clear_caches()
  return images


def figure(path: str, runs: Sequence[planning.Run],
           count: int = FIGURE_IMAGES) -> Optional[str]:
  """Seed 0 of every row run on the same first `count` validation images
  of its evaluation data: a block per dataset, gray input and ground truth
  first, one row per run."""
  blocks: Dict[str, List[Tuple[str, np.ndarray]]] = {}
  for run in runs:
    if not run.row or run.seed != 0:
      continue
    config = workdir_lib.load_config(run.workdir)
    images = figure_images(run.workdir, count)
    data = f'{config.data.dataset}:{config.data.eval_split}'
    block = blocks.setdefault(data, [])
    if not block:
      block += [('gray input', images['gray']),
                ('ground truth', images['truth'])]
    block.append((run.name, images['colorized']))
  if not blocks:
    return None
  blocks = dict(sorted(blocks.items(), key=lambda item: -len(item[1])))
  plt = plots._pyplot()  # pylint: disable=protected-access
  # One grid row per image row, a thin empty row between dataset blocks.
  layout = []
  for b, block in enumerate(blocks.values()):
    layout += ([None] if b else []) + [(b, i) for i in range(len(block))]
  cols = max(len(images) for b in blocks.values() for _, images in b)
  tile, label, gap = 1.0, 2.3, 0.3      # inches
  ratios = [gap if cell is None else tile for cell in layout]
  width, height = label + tile * cols, sum(ratios) + 0.25
  fig, axes = plt.subplots(len(layout), cols, figsize=(width, height),
                           squeeze=False, dpi=100,
                           gridspec_kw={'height_ratios': ratios})
  fig.subplots_adjust(left=label / width, right=0.995, bottom=0.005,
                      top=1 - 0.22 / height, wspace=0.04, hspace=0.06)
  names = list(blocks)
  for r, cell in enumerate(layout):
    for c in range(cols):
      ax = axes[r, c]
      ax.set_xticks([])
      ax.set_yticks([])
      for spine in ax.spines.values():
        spine.set_visible(False)
      if cell is not None and c < len(blocks[names[cell[0]]][cell[1]][1]):
        ax.imshow(blocks[names[cell[0]]][cell[1]][1][c],
                  interpolation='nearest')
    if cell is None:
      continue
    axes[r, 0].set_ylabel(blocks[names[cell[0]]][cell[1]][0], rotation=0,
                          ha='right', va='center', fontsize=8)
    if cell[1] == 0:
      axes[r, 0].set_title(names[cell[0]], loc='left', fontsize=8)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path)
  plt.close(fig)
  return path
