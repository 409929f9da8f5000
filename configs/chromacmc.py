"""ChromaCMC (paper 000: Kong et al., IEEE Access 2021).

  python -m colorjax.main --config=configs/chromacmc.py --workdir=DIR
  python -m colorjax.main --config=configs/chromacmc.py:ade20k --workdir=DIR
  python -m colorjax.main --config=configs/chromacmc.py:demo --workdir=DIR

Paper settings: 256x256 gray input, histogram equalisation + random flip,
eq. 9 with lambda = 0.99, CMC(2:1), pixel cross-entropy, Adam
b1 = 0.5, b2 = 0.999; PASCAL VOC 2012 aug (21 classes) or ADE20K (150).
Choices the paper leaves open (documented in colorjax/models/chromacmc.py):
learning rate 2e-4 and batch 16 (pix2pix defaults), 100 epochs of
train_aug; images resized to short side 256 and cropped to 256 (random for
training, centre for evaluation); FRB = 1x1 conv + BN + ReLU; ADE20K's
label 0 ('other') is ignored and 1..150 become classes 0..149.

Size, measured by `python -m colorjax.benchmark model --config=...`:
generator 86,164,207 parameters = 328.7 MB in float32 (paper: 328.29 MB);
34.96 GFLOPs per 256x256 image (XLA cost analysis; paper: 37.596 GFLOPs);
PatchGAN discriminator 2,762,049 parameters, 16x16 patch map.
"""

import ml_collections

from colorjax import config_lib

AB_SCALE = 110.0


def _preprocess(size: int, train: bool, extra: str = '') -> str:
  keys = '("gray", "l", "ab", "segmentation")'
  geometry = (f'resize_short({size})|random_crop({size})|flip' if train else
              f'resize_short({size})|center_crop({size})')
  return (f'{geometry}|{extra}to_lab|equalize_l|'
          f'normalize_lab(ab_scale={AB_SCALE})|keep({keys})')


def get_config(arg: str = 'voc'):
  """arg: 'voc' (default), 'ade20k', 'demo' (CPU minutes), 'tiny' (tests)."""
  variant = arg or 'voc'
  if variant not in ('voc', 'ade20k', 'demo', 'tiny'):
    raise ValueError(f'unknown chromacmc variant {variant!r}')
  config = config_lib.base_config(
      'chromacmc', 'ade20k' if variant == 'ade20k' else 'voc',
      image_size=256, ab_scale=AB_SCALE)
  # ADE20K's label 0 ('other') is ignored; 1..150 become classes 0..149.
  remap = 'remap_labels({0: 255}, shift=-1)|' if variant == 'ade20k' else ''

  config.model = ml_collections.ConfigDict()
  config.model.dtype = 'float32'
  config.model.trunk_channels = (64, 128, 256, 512, 512, 512, 512, 512)
  config.model.frb_channels = 512
  config.model.branch_width = 64
  config.model.branch_blocks = (3, 4, 6, 3)
  config.model.use_branch = True
  config.model.dropout = 0.0
  config.model.discriminator_channels = (64, 128, 256, 512)
  # Local path of timm's seresnext50_32x4d ImageNet weights (.pth/.npz).
  config.model.pretrained_branch = ml_collections.FieldReference(
      None, field_type=str)

  config.loss = ml_collections.ConfigDict()
  config.loss.lambda_cmc = 0.99
  config.loss.cmc_l = 2.0
  config.loss.cmc_c = 1.0
  config.loss.seg_weight = 1.0

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 2e-4
  config.optimizer.b1 = 0.5
  config.optimizer.b2 = 0.999

  config.num_train_steps = config_lib.steps_for_epochs(config, 100)

  if variant in ('demo', 'tiny'):
    # Same architecture family, shrunk, on the embedded dataset.
    tiny = variant == 'tiny'
    config_lib.shrink_for_cpu(config, tiny)
    config.data.eval_max_batches = 2 if tiny else -1
    config.model.trunk_channels = ((16, 32, 32, 32, 32) if tiny else
                                   (32, 64, 128, 128, 128, 128))
    config.model.frb_channels = 32 if tiny else 64
    config.model.branch_width = 16
    config.model.branch_blocks = (1, 1, 1, 1)
    config.model.discriminator_channels = ((16, 32) if tiny else
                                           (32, 64, 128))
    config.optimizer.learning_rate = 1e-3 if not tiny else 2e-4
    config.num_train_steps = 6 if tiny else 600
    config.eval_every_steps = 6 if tiny else 200
    config.checkpoint_every_steps = 2 if tiny else 200

  size = config.data.image_size
  config.data.preprocess_train = _preprocess(size, True, remap)
  config.data.preprocess_eval = _preprocess(size, False, remap)
  return config
