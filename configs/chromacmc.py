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
label 0 ('other') is ignored and 1..150 become classes 0..149 (the dataset
catalog's label_ops).

Size, measured by `python -m colorjax.benchmark model --config=...`:
generator 86,164,207 parameters = 328.7 MB in float32 (paper: 328.29 MB);
34.96 GFLOPs per 256x256 image (XLA cost analysis; paper: 37.596 GFLOPs);
PatchGAN discriminator 2,762,049 parameters, 16x16 patch map.
"""

import ml_collections

from colorjax import config_lib
from colorjax.models import chromacmc as model_lib

AB_SCALE = 110.0


def _preprocess(size: int, train: bool) -> str:
  geometry = (f'resize_short({size})|random_crop({size})|flip' if train else
              f'resize_short({size})|center_crop({size})')
  return f'{geometry}|to_lab|equalize_l|normalize_lab(ab_scale={AB_SCALE})'


def get_config(arg: str = 'voc'):
  """arg: 'voc' (default), 'ade20k', 'demo' (CPU minutes), 'tiny' (tests)."""
  variant = config_lib.parse_arg(arg, 'chromacmc', ('voc', 'ade20k'), 'voc')
  config = config_lib.base_config(
      'chromacmc', 'ade20k' if variant == 'ade20k' else 'voc',
      image_size=256, ab_scale=AB_SCALE)

  config.model = ml_collections.ConfigDict(model_lib.SIZES['paper'])
  config.model.dtype = 'float32'
  config.model.use_branch = True
  config.model.dropout = 0.0
  # 'auto': the CPU workarounds on CPU (transposed conv as an adjoint with a
  # custom VJP; grouped conv as slices + batched matmul), XLA's ops on
  # GPU/TPU; 'adjoint'|'xla' and 'matmul'|'xla' force one (benchmarks).
  config.model.upconv = 'auto'
  config.model.grouped_conv = 'auto'
  # Local path of timm's seresnext50_32x4d ImageNet weights (.pth/.npz).
  config.model.pretrained_branch = ml_collections.FieldReference(
      None, field_type=str)

  config.loss = ml_collections.ConfigDict()
  config.loss.lambda_cmc = 0.99
  config.loss.cmc_l = 2.0
  config.loss.cmc_c = 1.0
  config.loss.seg_weight = 1.0

  # One Adam per network (generator, discriminator); colorjax.optimizers.
  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=2e-4, kwargs=dict(b1=0.5, b2=0.999),
      schedule=dict(type='constant')))

  if variant in config_lib.CPU_TWINS:
    tiny = variant == 'tiny'
    config_lib.shrink_for_cpu(config, tiny, steps=(6, 600),
                              eval_every=(6, 200), checkpoint_every=(2, 200))
    config.data.eval_max_batches = 2 if tiny else -1
    config.model.update(model_lib.SIZES[variant])
    config.optimizer.learning_rate = 2e-4 if tiny else 1e-3

  size = config.data.image_size
  config.data.preprocess_train = _preprocess(size, True)
  config.data.preprocess_eval = _preprocess(size, False)
  return config
