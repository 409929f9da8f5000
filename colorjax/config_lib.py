"""What every paper's config shares: datasets, trainer schedule, CPU twins.

A paper's `configs/<paper>.py` starts from `base_config`, adds its model,
loss and optimizer fields, and for its `:demo` / `:tiny` twins calls
`shrink_for_cpu`, so the five papers read the same datasets the same way
and differ only where the papers do.
"""

import ml_collections

# Per dataset: tfds name, splits, classes and the label the losses ignore.
# `train_images` sizes the schedules of the papers that count in epochs.
DATASETS = {
    'voc': dict(dataset='voc2012_aug', train_split='train_aug',
                eval_split='val', num_classes=21, ignore_label=255,
                train_images=10_582),
    'coco_stuff': dict(dataset='coco_stuff/10k', train_split='train',
                       eval_split='test', num_classes=182, ignore_label=255,
                       train_images=9_000),
    'ade20k': dict(dataset='ade20k', train_split='train',
                   eval_split='validation', num_classes=150,
                   ignore_label=255, train_images=20_210),
    'semantic_shapes': dict(dataset='semantic_shapes/64', train_split='train',
                            eval_split='validation', num_classes=7,
                            ignore_label=None, train_images=4_096),
}


def set_dataset(config: ml_collections.ConfigDict, name: str) -> None:
  """Points `config.data` at one of `DATASETS` (splits, classes, ignore)."""
  if name not in DATASETS:
    raise ValueError(f'unknown dataset {name!r}; known: {sorted(DATASETS)}')
  entry = DATASETS[name]
  for key in ('dataset', 'train_split', 'eval_split', 'num_classes'):
    config.data[key] = entry[key]
  config.data.ignore_label = entry['ignore_label']


def base_config(method: str, dataset: str, image_size: int,
                ab_scale: float) -> ml_collections.ConfigDict:
  """Method name, data section and trainer schedule at paper scale."""
  config = ml_collections.ConfigDict()
  config.method = method
  config.seed = 0

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

  config.log_every_steps = 100
  config.eval_every_steps = 5_000
  config.checkpoint_every_steps = 5_000
  config.max_checkpoints_to_keep = 3
  config.num_summary_images = 8
  return config


def shrink_for_cpu(config: ml_collections.ConfigDict, tiny: bool) -> None:
  """The `:demo` (CPU minutes) or `:tiny` (tests, seconds) twin's data and
  logging: the embedded `semantic_shapes`, small images and batches.

  The paper config shrinks its own model widths and sets its own
  num_train_steps / eval / checkpoint cadence.
  """
  set_dataset(config, 'semantic_shapes')
  config.data.image_size = 32 if tiny else 64
  config.data.batch_size = 4 if tiny else 16
  config.data.eval_batch_size = 4 if tiny else 32
  config.data.worker_count = 0 if tiny else 1
  config.log_every_steps = 2 if tiny else 50
  config.num_summary_images = 4


def steps_for_epochs(config: ml_collections.ConfigDict, epochs: int) -> int:
  """Train steps for `epochs` passes over the configured dataset's train split."""
  for entry in DATASETS.values():
    if entry['dataset'] == config.data.dataset:
      images = entry['train_images']
      return -(-epochs * images // config.data.batch_size)
  raise ValueError(f'no train split size known for {config.data.dataset!r}')
