"""PixSem (paper 004: Zhao et al., "Pixelated Semantic Colorization", IJCV 2020).

  python -m colorjax.main --config=configs/pixsem.py --workdir=DIR
  python -m colorjax.main --config=configs/pixsem.py:coco_stuff --workdir=DIR
  python -m colorjax.main --config=configs/pixsem.py:demo --workdir=DIR
  python -m colorjax.main --config=configs/pixsem.py:voc_small --workdir=DIR
  variants: --config.model.variant=embedding | semantic_embedding |
            semantic_generator (default, the full model) | feature_transform

Paper settings: gray rescaled to 128x128, colour at 32x32; Table 1/2 widths
(64, 128, 256, 512), 160 embedding channels; mixture of 10 logistics;
lambda1:lambda2:lambda3 = 1:100:1; Adam lr 1e-3, b1 0.95, b2 0.9995;
Polyak averaging. Choices it leaves open:
- The generator "follows PixelCNN++" (section 3.1): its multi-scale
  layout with the reference implementation's defaults (Salimans et al.
  2017, pixel_cnn_pp/train.py): 3 scales (32, 16, 8), 5 gated blocks per
  scale (nr_resnet), 160 filters, dropout 0.5, concat_elu; the
  conditioning map average-pooled to each scale. `:voc_small` /
  `:coco_stuff_small` (model.generator='small') keep the earlier
  single-scale stack of 5 full-resolution blocks (no dropout).
- "An initial learning rate equal to 0.001" (section 4.1) implies a decay:
  PixelCNN++'s exponential decay, x 0.999995 per step
  (optimizer.schedule.type='exponential', decay_rate); about x 0.72 over
  the 100 VOC epochs.
- Batch 16, EMA decay 0.9995, 100 epochs, random horizontal flip; ab
  normalised by 128 (Lab's range) onto the DMoL's [-1, 1] grid;
  COCO-Stuff's 'unlabeled' (255) ignored.
The twins use the same multi-scale generator, shrunk (no dropout: their
runs are far too short to overfit).

Size, measured by `python -m colorjax.benchmark model --config=...` (the
paper gives no parameter count; tests/test_methods.py guards these):
VOC (21 classes) embedding 108,688,568; semantic_embedding 132,577,015;
semantic_generator 133,007,095 (of which the generator 57,337,820);
feature_transform 133,068,535 parameters; COCO-Stuff (182 classes)
semantic_generator 138,530,522. `:voc_small` semantic_generator
80,240,695 (generator 4,571,420).
"""

import ml_collections

from colorjax import config_lib
from colorjax.models import pixsem as model_lib

AB_SCALE = 128.0
FACTOR = 4


def _preprocess(size: int, train: bool) -> str:
  flip = '|flip' if train else ''
  return (f'resize({size}){flip}|to_lab|downsample_targets({FACTOR})|'
          f'normalize_lab(ab_scale={AB_SCALE})')


def get_config(arg: str = 'voc'):
  """arg: 'voc' (default), 'coco_stuff', '<either>_small' (single-scale
  generator), 'demo' (CPU minutes), 'tiny'."""
  variant = config_lib.parse_arg(
      arg, 'pixsem', ('voc', 'coco_stuff', 'voc_small', 'coco_stuff_small'),
      'voc')
  config = config_lib.base_config(
      'pixsem', 'coco_stuff' if variant.startswith('coco_stuff') else 'voc',
      image_size=128, ab_scale=AB_SCALE)
  config.data.downsample = FACTOR
  # The train step's convolution kernels on CPU by its vector units: at
  # paper scale, batch 2, YNN's 8.68 s per step against XLA's 8.99 s on an
  # AVX-512 Zen 4, XLA's 11.33 s against YNN's 13.3 s on an AVX2 Zen 3
  # (2026-12-07; BENCHMARKS.md, colorjax/xla_cpu.py).
  config.xla_cpu_convolutions = 'auto'
  # Where they are XLA's, XLA's element-wise fusions too, so that no
  # convolution goes to YNN inside one (colorjax/xla_cpu.py): 10.03 vs 10.68 s
  # per step (Zen 3, 2026-12-07, BENCHMARKS.md).
  config.xla_cpu_elementwise = 'xla'

  config.model = ml_collections.ConfigDict(model_lib.SIZES['paper'])
  if variant.endswith('_small'):
    config.model.update(model_lib.SIZES['small'])
  config.model.variant = 'semantic_generator'
  config.model.dtype = 'float32'
  config.model.ema_decay = 0.9995       # Polyak averaging

  config.loss = ml_collections.ConfigDict()
  config.loss.embedding = 1.0
  config.loss.segmentation = 100.0
  config.loss.generator = 1.0

  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3, kwargs=dict(b1=0.95, b2=0.9995),
      schedule=dict(type='exponential', decay_rate=0.999995)))

  config.sampling = ml_collections.ConfigDict()
  config.sampling.temperature = 1.0
  config.sampling.seed = 0
  # Paper 004 section 4.5: SSIM between samples of the same input; run by
  # `colorjax.evaluate` (every_steps=0: not during training).
  config.evals.diversity = dict(type='diversity', num_samples=2,
                                every_steps=0)

  if variant in config_lib.CPU_TWINS:
    tiny = variant == 'tiny'
    config_lib.shrink_for_cpu(config, tiny, steps=(6, 800),
                              eval_every=(6, 400), checkpoint_every=(2, 400))
    config.data.eval_max_batches = 1 if tiny else 2
    config.model.update(model_lib.SIZES[variant])
    config.model.ema_decay = 0.9 if tiny else 0.99
    config.loss.segmentation = 1.0

  size = config.data.image_size
  config.data.preprocess_train = _preprocess(size, True)
  config.data.preprocess_eval = _preprocess(size, False)
  return config
