"""PixSem (paper 004: Zhao et al., "Pixelated Semantic Colorization", IJCV 2020).

  python -m colorjax.main --config=configs/pixsem.py --workdir=DIR
  python -m colorjax.main --config=configs/pixsem.py:coco_stuff --workdir=DIR
  python -m colorjax.main --config=configs/pixsem.py:demo --workdir=DIR
  variants: --config.model.variant=embedding | semantic_embedding |
            semantic_generator (default, the full model) | feature_transform

Paper settings: gray rescaled to 128x128, colour at 32x32; Table 1/2 widths
(64, 128, 256, 512), 160 embedding channels; mixture of 10 logistics;
lambda1:lambda2:lambda3 = 1:100:1; Adam lr 1e-3, b1 0.95, b2 0.9995;
Polyak averaging. Choices it leaves open: generator width 160 and 5 gated
blocks (PixelCNN++ uses 160 filters), batch 16, EMA decay 0.9995, 100
epochs, random horizontal flip; ab normalised by 128 (Lab's range) onto
the DMoL's [-1, 1] grid; COCO-Stuff's 'unlabeled' (255) ignored.
"""

import ml_collections

from colorjax import config_lib

AB_SCALE = 128.0
FACTOR = 4


def _preprocess(size: int, train: bool) -> str:
  keys = ('("gray", "l", "ab", "ab_small", "segmentation", '
          '"segmentation_small")')
  flip = '|flip' if train else ''
  return (f'resize({size}){flip}|to_lab|downsample_targets({FACTOR})|'
          f'normalize_lab(ab_scale={AB_SCALE})|keep({keys})')


def get_config(arg: str = 'voc'):
  """arg: 'voc' (default), 'coco_stuff', 'demo' (CPU minutes), 'tiny'."""
  variant = arg or 'voc'
  if variant not in ('voc', 'coco_stuff', 'demo', 'tiny'):
    raise ValueError(f'unknown pixsem variant {variant!r}')
  config = config_lib.base_config(
      'pixsem', 'coco_stuff' if variant == 'coco_stuff' else 'voc',
      image_size=128, ab_scale=AB_SCALE)
  config.data.downsample = FACTOR

  config.model = ml_collections.ConfigDict()
  config.model.variant = 'semantic_generator'
  config.model.dtype = 'float32'
  config.model.widths = (64, 128, 256, 512)
  config.model.blocks = (2, 2, 2, 3, 3)
  config.model.embedding_channels = 160
  config.model.generator_channels = 160
  config.model.generator_blocks = 5
  config.model.num_mixtures = 10

  config.loss = ml_collections.ConfigDict()
  config.loss.embedding = 1.0
  config.loss.segmentation = 100.0
  config.loss.generator = 1.0

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 1e-3
  config.optimizer.b1 = 0.95
  config.optimizer.b2 = 0.9995
  config.optimizer.ema_decay = 0.9995

  config.sampling = ml_collections.ConfigDict()
  config.sampling.temperature = 1.0
  config.sampling.seed = 0

  config.num_train_steps = config_lib.steps_for_epochs(config, 100)

  if variant in ('demo', 'tiny'):
    tiny = variant == 'tiny'
    config_lib.shrink_for_cpu(config, tiny)
    config.data.eval_max_batches = 1 if tiny else 2
    config.model.widths = (8, 8, 16, 16) if tiny else (16, 32, 48, 64)
    config.model.blocks = (1, 1, 1, 1, 1)
    config.model.embedding_channels = 8 if tiny else 32
    config.model.generator_channels = 8 if tiny else 32
    config.model.generator_blocks = 1 if tiny else 3
    config.model.num_mixtures = 2 if tiny else 5
    config.loss.segmentation = 1.0
    config.optimizer.ema_decay = 0.9 if tiny else 0.99
    config.num_train_steps = 6 if tiny else 800
    config.eval_every_steps = 6 if tiny else 400
    config.checkpoint_every_steps = 2 if tiny else 400

  size = config.data.image_size
  config.data.preprocess_train = _preprocess(size, True)
  config.data.preprocess_eval = _preprocess(size, False)
  return config
