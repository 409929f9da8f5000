"""What every paper's config shares: datasets, schedule, evaluators, twins.

A paper's `configs/<paper>.py` parses its argument with `parse_arg`, starts
from `base_config`, adds its model, loss and optimizer fields, and for its
`:demo` / `:tiny` twins calls `shrink_for_cpu`; so the five papers read the
same datasets the same way, train for "N epochs" the same way, and differ
only where the papers do.

`load_config('configs/chromacmc.py:tiny')` builds a config from its file
(the suite's runs and the benchmarks name their configs so).
"""

import importlib.util
import os
from typing import Optional, Sequence

import ml_collections

from colorjax.datasets import catalog

DATASETS = catalog.DATASETS     # the catalog's table, for configs and tests

CPU_TWINS = ('demo', 'tiny')


def parse_arg(arg: Optional[str], paper: str, variants: Sequence[str],
              default: str) -> str:
  """The config argument (`configs/<paper>.py:<arg>`), validated."""
  variant = arg or default
  known = tuple(variants) + CPU_TWINS
  if variant not in known:
    raise ValueError(f'unknown {paper} variant {variant!r}; known: '
                     f'{", ".join(known)}')
  return variant


def set_dataset(config: ml_collections.ConfigDict, name: str) -> None:
  """Points `config.data` at a catalog entry (splits, classes, labels)."""
  entry = catalog.lookup(name)
  for key in ('dataset', 'train_split', 'eval_split', 'num_classes',
              'label_ops', 'train_images'):
    config.data[key] = entry[key]
  config.data.ignore_label = entry['ignore_label']


def base_config(method: str, dataset: str, image_size: int,
                ab_scale: float, epochs: int = 100
                ) -> ml_collections.ConfigDict:
  """Method name, data section, schedule and evaluators at paper scale.

  `num_train_steps` follows `num_epochs`, `data.batch_size` and the train
  split's size lazily: `--config.data.batch_size=64` keeps 100 epochs true,
  and the trainer replaces `data.train_images` by the prepared split's real
  size. Setting `num_train_steps` directly overrides all that.
  """
  config = ml_collections.ConfigDict()
  config.method = method
  config.seed = 0
  # XLA:CPU's convolution kernels for the train step ('ynn' | 'xla' |
  # 'auto' = ynn with AVX-512, xla without; colorjax.xla_cpu): a speed
  # choice on CPU only, measured per preset. Where they are XLA's, who
  # fuses element-wise ops ('ynn', jaxlib's default, whose fusions also
  # take the convolutions that feed them, or 'xla').
  config.xla_cpu_convolutions = 'auto'
  config.xla_cpu_elementwise = 'ynn'

  config.data = ml_collections.ConfigDict()
  config.data.data_dir = ml_collections.FieldReference(None, field_type=str)
  # A FieldReference so `--config.data.ignore_label=None` stays possible.
  config.data.ignore_label = ml_collections.FieldReference(None,
                                                           field_type=int)
  config.data.image_size = image_size
  config.data.ab_scale = ab_scale
  config.data.batch_size = 16
  config.data.eval_batch_size = 16
  config.data.worker_count = 8
  config.data.seed = 0
  config.data.eval_max_batches = -1     # -1: the whole split
  set_dataset(config, dataset)

  config.num_epochs = epochs
  # ceil(epochs * images / batch), as a lazy reference (see the docstring).
  config.num_train_steps = -((-config.get_ref('num_epochs') *
                              config.data.get_ref('train_images')) //
                             config.data.get_ref('batch_size'))
  config.log_every_steps = 100
  config.eval_every_steps = 5_000
  config.checkpoint_every_steps = 5_000
  config.max_checkpoints_to_keep = 3
  config.num_summary_images = 8
  # Networks copied from another workdir or file before training starts:
  # {network: dict(workdir=DIR | file=PATH, network=..., path=...)}.
  config.init_from = ml_collections.ConfigDict()

  # Evaluators (colorjax.evaluators), each on its own cadence; data fields
  # left out default to config.data's eval split and preprocessing.
  config.evals = default_evals(config.get_ref('eval_every_steps'),
                               config.get_ref('num_summary_images'))
  return config


# An init_from source set to this ('--config.init_from.model.pretrained=none')
# starts that network from random init on purpose: a paper preset that needs
# weights stops without them, and the run records the choice.
INIT_FROM_OPT_OUT = 'none'
# The keys of an init_from entry that name where its weights come from.
INIT_FROM_SOURCES = ('pretrained', 'file', 'workdir')


def default_evals(every_steps=None, num_summary_images=4,
                  sampling: bool = False) -> ml_collections.ConfigDict:
  """The evaluators every config starts from: colour metrics, segmentation
  (where the method predicts labels), sample images; a sampling method
  adds diversity. every_steps None: the evaluator's own default (configs
  written before `config.evals` existed)."""
  cadence = {} if every_steps is None else {'every_steps': every_steps}
  evals = {'val': dict(type='colour', **cadence),
           'val_segmentation': dict(type='segmentation',
                                    skip_if_missing=True, **cadence),
           'samples': dict(type='summary', num_images=num_summary_images,
                           **cadence)}
  if sampling:
    evals['diversity'] = dict(type='diversity', num_samples=2, every_steps=0)
  return ml_collections.ConfigDict(evals)


def shrink_for_cpu(config: ml_collections.ConfigDict, tiny: bool, *,
                   steps: Sequence[int], eval_every: Sequence[int],
                   checkpoint_every: Sequence[int]) -> None:
  """The `:demo` (CPU minutes) or `:tiny` (tests, seconds) twin's data and
  cadence: the embedded `semantic_shapes`, small images and batches.

  steps / eval_every / checkpoint_every: (tiny, demo) values. The paper
  config shrinks its own model (the model's size presets).
  """
  pick = lambda pair: pair[0] if tiny else pair[1]  # pylint: disable=unnecessary-lambda-assignment
  set_dataset(config, 'semantic_shapes')
  config.data.image_size = 32 if tiny else 64
  config.data.batch_size = 4 if tiny else 16
  config.data.eval_batch_size = 4 if tiny else 32
  config.data.worker_count = 0 if tiny else 1
  config.log_every_steps = 2 if tiny else 50
  config.num_summary_images = 4
  config.num_train_steps = pick(steps)
  # Kernels by ISA, as the paper configs: the demo steps ran faster with
  # YNN's convolutions on an AVX-512 Zen 4 (batch 16: PixSem 0.51 vs 0.55 s,
  # ChromaCMC 0.43 vs 0.46 s) and slower on an AVX2 Zen 3 (PixSem 0.476 vs
  # 0.334 s, ChromaCMC 0.374 vs 0.315 s); 2026-12-07, BENCHMARKS.md.
  # YNN's element-wise fusions, unlike the paper presets': without them
  # the ChromaCMC demo step ran 0.368 vs 0.331 s and compiled in 22.5 vs
  # 17.7 s (PixSem 0.348 vs 0.366 s, compile 15.8 vs 12.5 s), Zen 3.
  config.xla_cpu_convolutions = 'auto'
  config.xla_cpu_elementwise = 'ynn'
  config.eval_every_steps = pick(eval_every)
  config.checkpoint_every_steps = pick(checkpoint_every)


def steps_for_epochs(config: ml_collections.ConfigDict, epochs: int) -> int:
  """Train steps for `epochs` passes over the configured train split."""
  images = catalog.lookup(config.data.dataset)['train_images']
  return -(-epochs * images // config.data.batch_size)


def load_config(spec: str, root: Optional[str] = None
                ) -> ml_collections.ConfigDict:
  """'configs/<file>.py[:arg]' -> its `get_config(arg)` (arg None when
  left out). A relative path is read from `root` (default: the current
  directory)."""
  path, _, arg = spec.partition(':')
  if root is not None and not os.path.isabs(path):
    path = os.path.join(root, path)
  module_spec = importlib.util.spec_from_file_location(
      'colorjax_config_' + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)
