"""Empirical ab prior of a dataset split (paper 001 eq. 11), streamed.

  python -m colorjax.data.prior --dataset=coco_stuff --split=train \
      --output=coco_prior.npy [--size=64] [--max_images=N]

Pixels are assigned to their nearest of the 313 bins (hard assignment, as
Zhang et al.) while images stream through the grain pipeline, so memory
does not grow with the split. Images are resized (short side `size`) first:
the prior is a histogram, and downsampling barely changes it.
"""

import logging
import os
from typing import Optional

from absl import flags
import grain
import jax
import numpy as np

from colorjax import cli
from colorjax import sharding
from colorjax.color import quantize
from colorjax.data import pipeline


def compute_split_prior(dataset: str, split: str,
                        data_dir: Optional[str] = None, size: int = 64,
                        batch_size: int = 16, worker_count: int = 0,
                        max_images: Optional[int] = None,
                        shuffle: bool = False, seed: int = 0) -> np.ndarray:
  """P(q) [313] over (at most `max_images` of) a split, streaming.

  Every process reads the same images (no sharding), so all hosts of a
  multi-host run get the same prior. `shuffle` draws the `max_images` from
  the whole split (seeded) rather than taking the first ones.
  """
  spec = pipeline.LoaderSpec.one_pass(
      dataset, split, batch_size,
      f'resize_short({size})|center_crop({size})|to_lab|keep(("ab",))',
      data_dir=data_dir, shuffle=shuffle, seed=seed,
      worker_count=worker_count)
  local_batch = sharding.process_batch_size(batch_size)
  max_batches = None if max_images is None else -(-max_images // local_batch)
  loader = pipeline.create_loader(spec,
                                  shard_options=grain.sharding.NoSharding())
  return quantize.empirical_ab_prior(loader, max_batches=max_batches)



def uniform_prior_file() -> str:
  """A [313] uniform prior in a temporary .npy file (for `loss.prior_file`):
  a train step traced without a dataset (benchmarks, cost estimates) keeps
  the rebalancing gather, with uniform weights."""
  import tempfile  # pylint: disable=g-import-not-at-top
  path = os.path.join(tempfile.mkdtemp(), 'uniform_prior.npy')
  np.save(path, np.full(quantize.NUM_AB_BINS, 1.0 / quantize.NUM_AB_BINS))
  return path


def rebalance_for(config, workdir: Optional[str] = None
                  ) -> Optional[np.ndarray]:
  """Class-rebalancing weights w [313] (Zhang et al. eq. 3-4; paper 001 eq.
  11-12) of `config.data`'s training split, or None if `loss.rebalance` is
  off.

  The prior is streamed once from `loss.prior_images` images drawn with the
  data seed (the same on every host) and cached in `loss.prior_file`
  (default <workdir>/ab_prior.npy), so a resumed run reuses it; the file is
  written atomically by process 0.
  """
  loss, data = config.loss, config.data
  if not loss.rebalance:
    return None
  path = loss.get('prior_file') or (
      os.path.join(workdir, 'ab_prior.npy') if workdir else None)
  if path:
    path = os.path.expanduser(path)
    path = path if path.endswith('.npy') else path + '.npy'
  if path and os.path.exists(path):
    prior, source = np.load(path), path
  else:
    prior = compute_split_prior(
        data.dataset, data.train_split, data.get('data_dir'),
        max_images=loss.prior_images, shuffle=True, seed=data.seed)
    source = (f'{data.dataset}/{data.train_split} '
              f'({loss.prior_images} images drawn with seed {data.seed})')
    if path and jax.process_index() == 0:
      os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
      partial = path + f'.{os.getpid()}.tmp.npy'
      np.save(partial, prior)
      os.replace(partial, path)       # readers never see half a file
  weights = quantize.rebalance_weights(prior, loss.rebalance_lambda,
                                       loss.rebalance_sigma)
  logging.info('class rebalancing from the ab prior of %s: %d bins used, '
               'weights %.2f..%.2f', source, int(np.count_nonzero(prior)),
               weights.min(), weights.max())
  return weights

if __name__ == '__main__':
  flags.DEFINE_string('dataset', 'semantic_shapes/64', 'tfds name')
  flags.DEFINE_string('split', 'train', 'split')
  flags.DEFINE_string('data_dir', None, 'tfds data_dir')
  flags.DEFINE_string('output', None, '.npy file for the [313] prior')
  flags.DEFINE_integer('size', 64, 'short side images are resized to')
  flags.DEFINE_integer('max_images', None, 'stop after this many images')
  flags.DEFINE_integer('workers', 2, 'grain worker processes')
  flags.mark_flag_as_required('output')

  def main(argv):
    del argv
    f = flags.FLAGS
    prior = compute_split_prior(f.dataset, f.split, f.data_dir, f.size,
                                worker_count=f.workers,
                                max_images=f.max_images)
    np.save(f.output, prior)
    print(f'saved {f.output}: {np.count_nonzero(prior)} of 313 bins used')

  cli.run(main)
