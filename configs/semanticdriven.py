"""SemanticDriven (paper 002: Ho et al., "Semantic-Driven Colorization").

  # Stage 1, GridNet segmentation of the gray image; stage 2, the
  # two-stream U-Net colorizer with stage 1's GridNet (fixed) inside:
  python -m colorjax.main --config=configs/semanticdriven.py:segmentation \
      --workdir=runs/sd_seg
  python -m colorjax.main --config=configs/semanticdriven.py:colorization \
      --workdir=runs/sd --config.init_from.gridnet.workdir=runs/sd_seg
  # Ablation (section 4.1): without instance normalisation
  ... --config.model.instance_norm=none
  # CPU twins on semantic_shapes: both stages in one run (':demo'), or
  # each stage alone (':segmentation_demo', ':colorization_demo'):
  python -m colorjax.main --config=configs/semanticdriven.py:demo --workdir=DIR
  # Colorize under a user's map; write the predicted map to edit it:
  python -m colorjax.colorize --workdir=runs/sd --input=photo.jpg \
      --output=out/ --save_segmentation
  python -m colorjax.colorize --workdir=runs/sd --input=photo.jpg \
      --output=out/ --segmentation=out/photo_segmentation.png
  python -m colorjax.editor --workdir=runs/sd

What the paper fixes (sections 2-3): GridNet with 5 rows x 6 columns, row
depths [16, 32, 64, 128, 256], 3x3 convolutions, stride-2 convolutions down
and stride-2 transposed convolutions up, cross-entropy; a U-Net whose
encoder ([32, 64, 128, 256, 512], two 3x3 convolutions per layer, LeakyReLU
0.01, the first strided except in the first and last layers) is shared by
the gray stream and the semantic-map stream, gray features instance-
normalised before the concatenation, decoder [1024, 512, 256, 128, 64] with
transposed convolutions and skips; Huber loss (delta 1) on ab; Lab
normalised to [-1, 1]; PASCAL-Context, 59 classes; images scaled to
360x360, random 352x352 crops and flips; Adam 1e-4 (0.9, 0.999), batch 16,
1000 epochs.

Choices the paper leaves open (each configurable; the layer-level ones are
in colorjax/models/semanticdriven.py's docstring):
  * Classes: the catalog's PASCAL-Context, 59 classes + 0 = background
    (everything else), 60 in all, so every pixel of a map has a class the
    user can paint; the ignore label (none here) and out-of-range labels
    enter the colorizer as background.
  * The map enters as one channel (the paper's S in R^{HxWx1}): class c ->
    2c / 59 - 1 (`model.map_input='index'`); `'embedding'` (a learned scalar
    per class, still one channel so the encoder stays shared) is a
    deviation offered for comparison.
  * Instance normalisation (no affine parameters, PyTorch's default) of the
    gray features at every level where the streams are concatenated, the
    bottleneck and the four skips (`model.instance_norm='all'`);
    'bottleneck' normalises only the deepest; 'none' is section 4.1's
    ablation.
  * ab / 110 (normalised to [-1, 1] like the other configs); tanh output.
  * Stage 2 trains on ground-truth maps (`train_maps='ground_truth'`, the
    paper's S); 'predicted' (stage 1's argmax) or 'mix' (predicted with
    probability `train_maps_mix`) are options.
  * Split (section 4, "Training dataset"): the paper trains on
    PASCAL-Context trainval, 10,103 images, 59 classes -- the paper presets
    ('segmentation', 'colorization') train on `train+val`. The paper scores
    on other images (COCO-Stuff val and Unsplash photos, "Compared images"),
    so their periodic evaluation on PASCAL-Context val (5,105 of those
    10,103) is in-sample: a training-set monitor, not a result. Held-out
    numbers come from '<stage>_heldout': train (4,998) only, val held out
    (what the comparison suite trains and scores).
  * Evaluation at 352x352 (the whole image resized, as colorize does):
    colours with GridNet's maps (`val`), with ground-truth maps
    (`val_gt_maps`), GridNet's mIoU (`val_segmentation`).
  * 1000 epochs for both stages, constant learning rate, no weight decay.
"""

import ml_collections

from colorjax import config_lib
from colorjax.models import semanticdriven as model_lib

AB_SCALE = 110.0
RESIZE, CROP = 360, 352
STAGES = ('segmentation', 'colorization')
HELDOUT = 'heldout'
# Section 4: "10,103 images in trainval set" (PASCAL-Context train + val).
PAPER_TRAIN_SPLIT, PAPER_TRAIN_IMAGES = 'train+val', 10_103


def _preprocess(size: int, train: bool) -> str:
  geometry = (f'resize({size * RESIZE // CROP})|random_crop({size})|flip'
              if train else f'resize({size})')
  return f'{geometry}|to_lab|normalize_lab(ab_scale={AB_SCALE})'


def _parse(arg):
  """'segmentation' | 'colorization' | 'demo' | 'tiny' |
  '<stage>_demo' | '<stage>_tiny' -> (stage, twin or None)."""
  arg = arg or 'colorization'
  stage, _, twin = arg.partition('_')
  if arg in config_lib.CPU_TWINS:
    return 'joint', arg
  if stage in STAGES and twin in ('', HELDOUT) + config_lib.CPU_TWINS:
    return stage, twin or None
  known = (list(STAGES) + list(config_lib.CPU_TWINS) +
           [f'{s}_{t}' for s in STAGES
            for t in (HELDOUT,) + config_lib.CPU_TWINS])
  raise ValueError(f'unknown semanticdriven variant {arg!r}; known: '
                   f'{", ".join(known)}')


def get_config(arg: str = 'colorization'):
  """arg: 'segmentation' (stage 1), 'colorization' (stage 2, default),
  both on the paper's trainval; '<stage>_heldout' (train only, val held
  out); 'demo' / 'tiny' (both stages in one CPU run), or '<stage>_demo',
  '<stage>_tiny'."""
  stage, twin = _parse(arg)
  config = config_lib.base_config('semanticdriven', 'pascal_context',
                                  image_size=CROP, ab_scale=AB_SCALE,
                                  epochs=1000)
  config.stage = stage
  # XLA's own convolution kernels for stage 2's train step on CPU (its
  # decoder's stride-1 weight gradients: 2x faster); stage 1's GridNet runs
  # faster with YNN's on an AVX-512 CPU and with XLA's on an AVX2 one:
  # 'auto' (BENCHMARKS.md, colorjax/xla_cpu.py).
  config.xla_cpu_convolutions = ('xla' if stage == 'colorization'
                                 else 'auto')
  # Where they are XLA's, XLA's element-wise fusions too, so that no
  # convolution goes to YNN inside one (colorjax/xla_cpu.py): stage 1 3.71 vs
  # 4.04 s per step, stage 2 16.13 vs 17.15 s (Zen 3, 2026-12-07,
  # BENCHMARKS.md).
  config.xla_cpu_elementwise = 'xla'
  config.train_maps = 'ground_truth'
  config.train_maps_mix = 0.5

  config.model = ml_collections.ConfigDict(model_lib.SIZES['paper'])
  config.model.map_input = 'index'
  config.model.instance_norm = 'all'
  config.model.dtype = 'float32'

  config.loss = ml_collections.ConfigDict(dict(delta=1.0))
  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-4, kwargs=dict(b1=0.9, b2=0.999),
      schedule=dict(type='constant')))

  # Stage 2 takes GridNet from stage 1's workdir (kept fixed: stage 2 has
  # no optimizer for it).
  config.init_from.gridnet = ml_collections.ConfigDict(dict(
      workdir=ml_collections.FieldReference(None, field_type=str),
      network='gridnet'))

  if twin is None:
    config.data.train_split = PAPER_TRAIN_SPLIT
    config.data.train_images = PAPER_TRAIN_IMAGES
  if twin in config_lib.CPU_TWINS:
    tiny = twin == 'tiny'
    config_lib.shrink_for_cpu(config, tiny, steps=(6, 800),
                              eval_every=(6, 400), checkpoint_every=(2, 400))
    config.data.eval_max_batches = 1 if tiny else -1
    config.model.update(model_lib.SIZES[twin])
    config.optimizer.learning_rate = 1e-3

  size = config.data.image_size
  config.data.preprocess_train = _preprocess(size, True)
  config.data.preprocess_eval = _preprocess(size, False)
  every = config.get_ref('eval_every_steps')
  if stage == 'segmentation':
    config.evals = ml_collections.ConfigDict({
        'val_segmentation': dict(type='segmentation', every_steps=every)})
  else:
    label_ops = config.data.get('label_ops')
    gt_maps = f'{config.data.preprocess_eval}|semantic_map'
    config.evals.val_gt_maps = dict(
        type='colour', every_steps=every,
        preprocess=f'{label_ops}|{gt_maps}' if label_ops else gt_maps)
  return config
