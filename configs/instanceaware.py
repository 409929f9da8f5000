"""InstanceAware (paper 003: Li et al., instance-aware colorization).

  python -m colorjax.main --config=configs/instanceaware.py --workdir=DIR
  python -m colorjax.main --config=configs/instanceaware.py:demo --workdir=DIR
  # Zhang et al.'s network alone (the ablation: no classification branch):
  python -m colorjax.main --config=configs/instanceaware.py:demo \
      --config.model.use_classifier=False --workdir=DIR
  # The paper's initialisation: Zhang's published ECCV16 weights and an
  # ImageNet VGG16 for the branch (both required by the paper preset: a
  # fresh run without them stops before its first step; `...pretrained=
  # none` trains that part from random on purpose, and
  # <workdir>/pretrained.json and compare's tables say so):
  python -m colorjax.main --config=configs/instanceaware.py --workdir=DIR \
      --config.init_from.model.pretrained=eccv16:/weights/colorization_release_v2-9b330a0b.pth \
      --config.init_from.branch.pretrained=vgg16:/weights/vgg16-397923af.pth

What the paper fixes (section 2, 3.1): Zhang et al.'s conv1-conv8 trunk with
conv9 = 313 ab-bin logits at 1/4 resolution; a classification branch at
conv5 (2x down-sampling, fc1-fc3, classifier, eq. 1-2) whose fc3 is tiled
and concatenated with conv5 (Iizuka et al.'s fusion); eq. 3 rebalanced
cross-entropy with a one-hot target on the pixel's bin; Adam; PASCAL VOC;
conv1-conv9 initialised from Zhang et al., the other layers Gaussian.

Choices the paper leaves open (each configurable):
  * Trunk widths/dilations/BatchNorm and the 313 bins: Zhang et al. 2016.
  * Branch = VGG16's head (`model.branch_reduce='vgg16'`): the paper's
    2x2 down-sampling is VGG's pool5, then torchvision's adaptive average
    pool to 7x7 and fc1-fc3 = VGG16's fc6-fc8 (4096, 4096, 1000), so the
    ImageNet classifier section 3.1 names fits it (below); a ReLU after
    fc3 as after fc1-fc2, no dropout. The CPU twins use 'flatten' (fc1 on
    the flattened pooled map, small widths; 'mean' pools it globally).
    A 1x1 fusion convolution back to 512 channels so Zhang's conv6 weights
    fit, linear and initialised to pass conv5 through (`model.fusion=
    'identity'`: with Zhang's weights the network starts as Zhang's;
    'relu' is Iizuka's random-init + ReLU form). Classes: VOC's 20 object classes (background is not a tag:
    `multi_hot(21, first=1)`).
  * Eq. 1-2 on multi-label VOC images: the normalised multi-hot target
    (the paper's one-hot when one class is present; untagged images are
    left out); `loss.classification='sigmoid'` is the multi-label option.
  * Total loss L_color + alpha L_ls with alpha = 1 (both are per-sample mean
    cross-entropies; the paper gives no weight).
  * Rebalancing: Zhang's lambda = 0.5, sigma = 5 on the ab prior of the
    training split (`loss.prior_images` images drawn with the data seed,
    streamed once before training and cached in `loss.prior_file`, default
    <workdir>/ab_prior.npy); targets at 1/4 resolution by subsampling.
  * Hard one-hot targets (`data.soft_encode_k=1`, the paper); Zhang's soft
    encoding is `soft_encode_k=5`.
  * Decoding: Zhang's annealed mean, T = 0.38 (`decoding.*`).
  * Initialisation (section 3.1: "the weights trained by Zhang et al.
    and Russakovsky et al. to initialize the classification network and
    ... the shallow layers"): conv1-conv9 from Zhang's ECCV16 release
    (`init_from.model.pretrained=eccv16:PATH`) and the branch's fc1-fc3
    from an ImageNet (Russakovsky et al.) classifier. The paper names no
    network; VGG16 is the one whose head is this branch: pool5 -> fc6 ->
    fc7 -> fc8 on 512-channel conv5 features, the layout Zhang's trunk
    copies from VGG (`init_from.branch.pretrained=vgg16:PATH`, torchvision's
    vgg16-397923af.pth). Its fc6 was trained on VGG's conv5_3 features, not
    Zhang's: the copy is a starting point, as the paper's is. The
    classifier (20 VOC classes) and the fusion convolution are Gaussian.
    Both files are required by the paper preset; either may be `none`
    (random on purpose, recorded in <workdir>/pretrained.json).
  * Training: Zhang's Adam (b1 0.9, b2 0.99) with his weight decay value
    1e-3, applied decoupled (AdamW: lr x 1e-3 per step, not Caffe's L2
    gradient term), learning rate 3e-5, batch 40; 256x256 crops (the
    issue's size) of images resized to short side 292 (Zhang's 8:7 crop
    ratio, for scale jitter), flips; 30 epochs of VOC 2012 train_aug (the paper's 10,821 training
    images are not a standard split; train_aug has 10,582).

Size, measured by `python -m colorjax.benchmark model --config=...` (the
paper gives none; tests/test_instanceaware.py guards these): 156,672,917
parameters, of which Zhang's network is 32,235,385 (=
richzhang/colorization's ECCVGenerator without model_out) and fc1-fc3
123,642,856 (= torchvision VGG16's classifier); 81.45 GFLOPs per 256x256
image (XLA cost analysis of predict).
"""

import ml_collections

from colorjax import config_lib
from colorjax.models import instanceaware as model_lib

AB_SCALE = 110.0


def _preprocess(size: int, train: bool, k: int, classes: int,
                first: int) -> str:
  geometry = (f'resize_short({size * 8 // 7})|random_crop({size})|flip'
              if train else f'resize_short({size})|center_crop({size})')
  targets = f'|soft_encode(k={k}, stride=4)' if train else ''
  return (f'{geometry}|to_lab{targets}|multi_hot({classes}, first={first})'
          f'|normalize_lab(ab_scale={AB_SCALE})')


def get_config(arg: str = 'voc'):
  """arg: 'voc' (default), 'demo' (CPU minutes), 'tiny' (tests)."""
  variant = config_lib.parse_arg(arg, 'instanceaware', ('voc',), 'voc')
  config = config_lib.base_config('instanceaware', 'voc', image_size=256,
                                  ab_scale=AB_SCALE, epochs=30)
  config.data.batch_size = 40
  config.data.soft_encode_k = 1
  # Image tags: the dataset's classes from `first_class` on.
  config.data.first_class = 1
  # The train step's convolution kernels on CPU: 'auto' (the base config's:
  # YNN's with AVX-512, XLA's without); where they are XLA's, XLA's
  # element-wise fusions too, so that no convolution goes to YNN inside one
  # (colorjax/xla_cpu.py): 4.11 vs 4.46 s per step (Zen 3, 2026-12-07,
  # BENCHMARKS.md).
  config.xla_cpu_elementwise = 'xla'

  config.model = ml_collections.ConfigDict(model_lib.SIZES['paper'])
  config.model.use_classifier = True
  config.model.branch_reduce = 'vgg16'
  config.model.fusion = 'identity'
  config.model.dtype = 'float32'
  config.model.upconv = 'auto'

  config.loss = ml_collections.ConfigDict()
  config.loss.classification = 'softmax'
  config.loss.classification_weight = 1.0
  config.loss.rebalance = True
  config.loss.rebalance_lambda = 0.5
  config.loss.rebalance_sigma = 5.0
  config.loss.prior_images = 4000
  config.loss.prior_file = ml_collections.FieldReference(None, field_type=str)

  config.decoding = ml_collections.ConfigDict(dict(decode='annealed_mean',
                                                   temperature=0.38))

  config.optimizer = ml_collections.ConfigDict(dict(
      name='adamw', learning_rate=3e-5,
      kwargs=dict(b1=0.9, b2=0.99, weight_decay=1e-3),
      schedule=dict(type='constant')))

  # Paper section 3.1: Zhang et al.'s weights for conv1-conv9; layers only
  # this network has (branch, fusion) keep their Gaussian init.
  config.init_from.model = ml_collections.ConfigDict(dict(
      pretrained=ml_collections.FieldReference(None, field_type=str)))
  # A fresh run without them stops (`pretrained=none`: random on purpose).
  config.model.expect_pretrained_trunk = True
  # Section 3.1's ImageNet classifier for the branch: VGG16's fc6-fc8 as
  # fc1-fc3, copied into the same network (the same rule: required, 'none'
  # is the opt-out).
  config.init_from.branch = ml_collections.ConfigDict(dict(
      target='model',
      pretrained=ml_collections.FieldReference(None, field_type=str)))
  config.model.expect_pretrained_branch = True

  if variant in config_lib.CPU_TWINS:
    tiny = variant == 'tiny'
    config_lib.shrink_for_cpu(config, tiny, steps=(6, 800),
                              eval_every=(6, 400), checkpoint_every=(2, 400))
    config.data.eval_max_batches = 1 if tiny else -1
    config.data.first_class = 2           # sky and grass are in every scene
    config.model.update(model_lib.SIZES[variant])
    config.optimizer.learning_rate = 1e-3
    config.optimizer.kwargs.weight_decay = 0.0
    config.model.expect_pretrained_trunk = False  # shrunk: fits no file
    config.model.expect_pretrained_branch = False
    config.model.branch_reduce = 'flatten'
    config.loss.prior_images = 64 if tiny else 1024

  del config.evals['val_segmentation']
  config.evals.val_classification = dict(
      type='classification', every_steps=config.get_ref('eval_every_steps'),
      output='classification', label_key='labels', top_k=(1,),
      skip_if_missing=True)

  size = config.data.image_size
  args = (config.data.soft_encode_k, config.data.num_classes,
          config.data.first_class)
  config.data.preprocess_train = _preprocess(size, True, *args)
  config.data.preprocess_eval = _preprocess(size, False, *args)
  return config
