"""SceneContext (paper 001: Nguyen-Quynh et al., scene-context colorization).

  # Scene soft labels once per split (section III-B2), then the two stages:
  python -m colorjax.datasets.scene_labels --dataset=coco_stuff/164k \
      --split=train --teacher=vgg16:/weights/vgg16_places365.pth
  python -m colorjax.main --config=configs/scenecontext.py --workdir=runs/sc1 \
      [--config.init_from.model.pretrained=vgg16_bn:/weights/vgg16_bn-6c64b313.pth]
  python -m colorjax.main --config=configs/scenecontext.py:coco_cyclic \
      --workdir=runs/sc2 --config.init_from.model.workdir=runs/sc1
  # The three models of section V-C:
  ... --config.model.variant=regsoft|clasregsoft|segclasregsoft
  # CPU twin on semantic_shapes 2.0.0 (scenes decide the palette):
  python -m colorjax.main --config=configs/scenecontext.py:demo --workdir=DIR

What the paper fixes (sections III-V): a VGG16-style U-Net (encoder of four
blocks of two 3x3 convolutions + BatchNorm, the last strided, filters
doubling; a middle block; four decoder blocks of up-sampling + three
convolutions with skips); heads H_clas (global average pooling, two dense,
softmax over 365 Places scenes), H_reg (1x1, 2, tanh), H_soft (1x1, 313,
softmax), H_seg (1x1, the segmentation classes, softmax); losses eq. 16-20;
scene soft labels = a Places365 VGG16's top-5 renormalised; COCO-Stuff;
224x224 inputs; augmentation by contrast, brightness, flip, rotation, scale,
translation; Adam at 4e-4 with reduce-on-plateau x0.95 after 5 epochs, then a
cyclic rate in [1e-5, 8e-4] with an 8-epoch period; annealed mean T = 0.38;
the output is the regression head's (section V-C).

Choices the paper leaves open (each configurable; see also the model's
docstring for the layer choices: widths 64-512, BatchNorm + ReLU after every
convolution, middle 2 x 1024, nearest up-sampling, skips from each block's
pre-stride activation, H_clas hidden 512):
  * eq. 16 weights a1..a4 (`loss.weights`): all 1 (Keras' default
    loss_weights; the authors used Keras, and the paper gives none). L_reg
    on ab/110 is then about 60x smaller than L_soft (demo, step 800).
    Measured on the demo (README, "Every method on one budget",
    2026-12-07): `loss.weights.reg=100`, which makes the two terms of one
    order, gives SegClasRegSoft +0.77 dB PSNR and +0.064 SSIM but 5.9 less
    colourfulness and 0.09 less own mIoU; the preset keeps Keras' 1.
  * eq. 17: mean over pixels (the paper sums; a scale only); soft encoding
    k = 5, sigma = 5 and rebalancing lambda = 0.5, sigma = 5 (Zhang et al.,
    whom section III-B1 follows) on the prior of `loss.prior_images` train
    images, cached in <workdir>/ab_prior.npy.
  * eq. 19: per-image sums (the paper's sum over p), ignored pixels out,
    smoothing 1 (`loss.dice_per_image`, `loss.dice_smooth`).
  * eq. 20: the raw top-5 teacher probabilities renormalised (sections III-B2
    and V-A; III-C's "by Gaussian distribution" contradicts them).
  * Segmentation classes: COCO-Stuff 164k's 182 ids with 255 (unlabeled)
    ignored (the paper's 183 counts unlabeled as a class).
  * Sizes: resize short side 256 ("at most 256", V-B), random 224 crop
    (V-A); evaluation: short side 224, centre crop.
  * Augmentation magnitudes (not given): contrast x U(0.8, 1.2), brightness
    +-0.1 on RGB before Lab (so targets move with inputs), flip, rotation
    +-15 deg, zoom U(0.8, 1.2), shift +-10%, edges replicated (Keras'
    ImageDataGenerator fill_mode default).
  * Reduce-on-plateau watches the validation ab RMSE (`val/rmse_ab`,
    evaluated once per epoch; Keras' default monitors val_loss, which this
    trainer does not compute); patience 5 epochs, factor 0.95, with Keras'
    rule (section V-A: "Tensorflow Keras 2"): the fifth evaluation without
    an improvement of more than 1e-4 (absolute) cuts the rate, not the
    sixth as PyTorch's ReduceLROnPlateau would (`convention='pytorch'`).
  * Stage 2 (`:coco_cyclic`): Adam, triangular cycle starting at its top
    (the paper's "initial learning rate of 0.0008"), half period 4 epochs,
    initialised from stage 1 (`init_from.model.workdir`).
  * Epochs (not given; "three days" on a GTX 1080): 20 + 16 (two cycles);
    batch 16; no weight decay.
  * Initialisation: random (the paper names VGG16 as back-bone but not its
    weights); `init_from.model.pretrained=vgg16_bn:PATH` copies torchvision
    vgg16_bn's first two convolutions of blocks 1-4 into the encoder.

The `:demo` / `:tiny` twins train on semantic_shapes 2.0.0, whose scene type
(day / sunset / autumn) decides the colours of every class jointly and is the
scene label (3 scenes instead of 365).
"""

import ml_collections

from colorjax import config_lib
from colorjax.datasets import catalog
from colorjax.models import scenecontext as model_lib

AB_SCALE = 110.0


def _preprocess(size: int, train: bool, num_scenes: int, k: int) -> str:
  if train:
    geometry = (f'resize_short({size * 8 // 7})|random_crop({size})|flip|'
                'random_affine(rotate=15.0, scale=0.2, translate=0.1)|'
                'brightness_contrast(brightness=0.1, contrast=0.2)')
    targets = f'|soft_encode(k={k}, sigma=5.0)'
  else:
    geometry, targets = f'resize_short({size})|center_crop({size})', ''
  return (f'{geometry}|to_lab{targets}|scene_one_hot({num_scenes})'
          f'|normalize_lab(ab_scale={AB_SCALE})')


def get_config(arg: str = 'coco'):
  """arg: 'coco' (stage 1, default), 'coco_cyclic' (stage 2), 'demo', 'tiny'.
  """
  variant = config_lib.parse_arg(arg, 'scenecontext', ('coco', 'coco_cyclic'),
                                 'coco')
  config = config_lib.base_config('scenecontext', 'coco_stuff_164k',
                                  image_size=224, ab_scale=AB_SCALE,
                                  epochs=16 if variant == 'coco_cyclic' else 20)
  # XLA's own convolution kernels for the train step on CPU: measured faster
  # at paper scale, batch 2 (BENCHMARKS.md, colorjax/xla_cpu.py).
  config.xla_cpu_convolutions = 'xla'
  # ... and XLA's element-wise fusions, so that no convolution goes to YNN
  # inside one (colorjax/xla_cpu.py): 4.61 vs 5.06 s per step (Zen 3,
  # 2026-12-07, BENCHMARKS.md).
  config.xla_cpu_elementwise = 'xla'
  config.data.batch_size = 16
  config.data.soft_encode_k = 5
  config.data.num_scenes = model_lib.NUM_SCENES
  config.data.joins = ('scene_labels',)

  config.model = ml_collections.ConfigDict(model_lib.SIZES['paper'])
  config.model.variant = 'segclasregsoft'
  config.model.upsample = 'nearest'
  config.model.dtype = 'float32'

  config.loss = ml_collections.ConfigDict()
  config.loss.weights = dict(soft=1.0, reg=1.0, clas=1.0, seg=1.0)
  config.loss.dice_per_image = True
  config.loss.dice_smooth = 1.0
  config.loss.rebalance = True
  config.loss.rebalance_lambda = 0.5
  config.loss.rebalance_sigma = 5.0
  config.loss.prior_images = 4000
  config.loss.prior_file = ml_collections.FieldReference(None, field_type=str)

  config.decoding = ml_collections.ConfigDict(dict(decode='regression',
                                                   temperature=0.38))

  steps_per_epoch = -(-config.data.get_ref('train_images')
                      // config.data.get_ref('batch_size'))
  config.eval_every_steps = steps_per_epoch
  config.checkpoint_every_steps = steps_per_epoch
  if variant == 'coco_cyclic':
    config.optimizer = ml_collections.ConfigDict(dict(
        name='adam', learning_rate=8e-4,
        schedule=dict(type='cyclic', min_learning_rate=1e-5,
                      step_size_epochs=4, mode='triangular', start='high')))
  else:
    config.optimizer = ml_collections.ConfigDict(dict(
        name='adam', learning_rate=4e-4,
        schedule=dict(type='plateau', metric='val/rmse_ab', mode='min',
                      factor=0.95, patience=5, convention='keras')))

  # Stage 2 starts from stage 1 (`workdir`); stage 1 may start from
  # torchvision vgg16_bn (`pretrained=vgg16_bn:PATH`, encoder only).
  config.init_from.model = ml_collections.ConfigDict(dict(
      workdir=ml_collections.FieldReference(None, field_type=str),
      pretrained=ml_collections.FieldReference(None, field_type=str)))

  if variant in config_lib.CPU_TWINS:
    tiny = variant == 'tiny'
    config_lib.shrink_for_cpu(config, tiny, steps=(6, 800),
                              eval_every=(6, 400), checkpoint_every=(2, 400))
    config_lib.set_dataset(config, 'semantic_scenes')
    config.data.num_scenes = catalog.lookup('semantic_scenes')['num_scenes']
    config.data.joins = ()
    config.data.eval_max_batches = 1 if tiny else -1
    config.model.update(model_lib.SIZES[variant])
    config.optimizer = ml_collections.ConfigDict(dict(
        name='adam', learning_rate=1e-3,
        schedule=dict(type='plateau', metric='train/loss', mode='min',
                      factor=0.95, patience=5)))
    config.loss.prior_images = 64 if tiny else 1024

  config.evals.val_annealed = dict(
      type='colour', every_steps=config.get_ref('eval_every_steps'),
      output='ab_annealed_mean')
  config.evals.val_scene = dict(
      type='classification', every_steps=config.get_ref('eval_every_steps'),
      output='scene', label_key='scene', match='argmax',
      top_k=(1,) if variant in config_lib.CPU_TWINS else (1, 5),
      skip_if_missing=True)

  size = config.data.image_size
  args = (config.data.num_scenes, config.data.soft_encode_k)
  config.data.preprocess_train = _preprocess(size, True, *args)
  config.data.preprocess_eval = _preprocess(size, False, *args)
  return config
