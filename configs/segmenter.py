"""Reference segmenter (paper 004's Table 3 / Fig. 9 scorer).

  python -m colorjax.main --config=configs/segmenter.py --workdir=DIR \\
      --config.model.pretrained=/path/deeplabv3_resnet101_coco-586e9e4e.pth
  python -m colorjax.main --config=configs/segmenter.py:coco_stuff \\
      --workdir=DIR --config.model.pretrained=...
  python -m colorjax.main --config=configs/segmenter.py:demo --workdir=DIR

What it is: a semantic segmentation network trained on RGB images, used by
evaluation to report the mIoU of gray, colorized and true colour versions of
the validation images (`Segmenter.predict(state, {'rgb': x})`, x in [0, 1]
of any size).

What paper 004 says (Zhao et al., IJCV 2020, section 4.4, Fig. 9 and
Table 3): "Deeplab-ResNet101 (Chen et al. 2018) without conditional random
field as post-processing, trained on the Pascal VOC2012 training set";
VOC 2012 val mIoU 66.9 on gray images, 70.3 on the paper's colorizations,
72.1 on the original colour images (Table 3 also: Iizuka 67.6, Larsson
68.8, Zhang 68.1). It gives no training details for it.

The paper's network itself needs no training here: its VOC model, the
PyTorch port of the authors' Caffe file (deeplabv2_resnet101_msc-vocaug-
20000.pth), loads through `colorjax.pretrained` ('deeplabv2_resnet101')
and is what `evaluate --segmenter=PATH` uses by default. This config
trains a segmenter of one's own (another dataset, e.g. COCO-Stuff, or a
check of the protocol):

Choices made (all configurable):
  * Network: torchvision's DeepLabV3-ResNet101 (`colorjax.models.deeplab`:
    output stride 8, ASPP 12/24/36 + image pooling, no auxiliary
    classifier), because its official ImageNet/COCO weights exist to
    fine-tune from: `model.pretrained` = torchvision's
    COCO-with-VOC-labels file, loaded through `colorjax.pretrained.load`
    (same 21 classes for VOC; for COCO-Stuff's 182 classes the classifier
    keeps its initial values, everything else is copied).
  * BatchNorm frozen: running statistics from the pretrained file, used in
    training too (per-device batches of a few 321x321 crops cannot estimate
    them); the BN scale/bias train (`optimizer.frozen` can freeze them).
  * Crops of 321 (DeepLab-v2's VOC recipe, the paper's network; 513 is
    DeepLabv3's and costs 2.5x): training resize_short(321) + random 321
    crop + flip; evaluation resize_short(321) + centre crop (fixed-size
    batches: the border beyond the crop is not scored, so numbers are not
    strictly full-image mIoU). No random scaling (no such op).
  * SGD momentum 0.9, lr 1e-3 (fine-tuning from weights that already
    segment these classes; a tenth of torchvision's 0.02 per 32 images
    scaled to batch 16), cosine decay to 0 (the closest to DeepLab's poly
    schedule colorjax.optimizers has), weight decay 1e-4 on kernels, batch
    16, 30 epochs of VOC train_aug (19,842 steps; DeepLab-v2: 20K iterations
    of batch 10).
  * Labels: the dataset catalog's (VOC: 21 classes, 255 ignored;
    COCO-Stuff 10k: 182 classes, 255 ignored).
  * Evaluators: `val_segmentation` (colour images) and
    `val_segmentation_gray` (the same images as Lab (L, 0, 0) -> RGB): the
    Fig. 9 gray/RGB pair during training. The colour/summary evaluators of
    the colorization configs are dropped (no l/ab in these batches).

Parameters: the paper network has 58,630,997 (torchvision's 60,996,202
minus its auxiliary FCN head's 2,365,205), tests/test_segmenter.py.

CPU twins: `:demo` trains `SmallSegNet` (width 16, depth 3, 439,495
parameters) on semantic_shapes RGB 64x64, 400 Adam steps of batch 16 (lr
3e-3, cosine); measured on 2 shared CPU cores: 1m42s wall in all, val
(256 images) mIoU 0.912 / pixel accuracy 0.989 on colour, 0.064 / 0.446 on
the gray versions (the small net segments these scenes by colour alone).
`:tiny` is 6 steps of a width-8, depth-2 net (27,047 parameters) for tests.
"""

import ml_collections

from colorjax import config_lib
from colorjax.models import segmenter as model_lib

PAPER_SIZE = 321


def _preprocess(size: int, train: bool, gray: bool = False) -> str:
  geometry = (f'resize_short({size})|random_crop({size})|flip' if train else
              f'resize_short({size})|center_crop({size})')
  return f'{geometry}|to_rgb' + ('(gray=True)' if gray else '')


def get_config(arg: str = 'voc'):
  """arg: 'voc' (default), 'coco_stuff', 'demo' (CPU minutes), 'tiny'."""
  variant = config_lib.parse_arg(arg, 'segmenter', ('voc', 'coco_stuff'),
                                 'voc')
  config = config_lib.base_config(
      'segmenter', 'coco_stuff' if variant == 'coco_stuff' else 'voc',
      image_size=PAPER_SIZE, ab_scale=110.0, epochs=30)

  config.model = ml_collections.ConfigDict(model_lib.SIZES['paper'])
  config.model.dtype = 'float32'      # of the small net (DeepLab: float32)
  # Local path of torchvision's deeplabv3_resnet101 COCO_WITH_VOC_LABELS_V1
  # weights (.pth / .safetensors / .npz); None: random initialisation.
  config.model.pretrained = ml_collections.FieldReference(None,
                                                          field_type=str)

  config.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=1e-3, kwargs=dict(momentum=0.9),
      schedule=dict(type='cosine'), weight_decay=1e-4))

  if variant in config_lib.CPU_TWINS:
    tiny = variant == 'tiny'
    config_lib.shrink_for_cpu(config, tiny, steps=(6, 400),
                              eval_every=(6, 200), checkpoint_every=(2, 200))
    config.data.eval_max_batches = 1 if tiny else -1
    config.model.update(model_lib.SIZES[variant])
    config.optimizer = ml_collections.ConfigDict(dict(
        name='adam', learning_rate=3e-3, kwargs={},
        schedule=dict(type='cosine'), weight_decay=0.0))

  size = config.data.image_size
  config.data.preprocess_train = _preprocess(size, True)
  config.data.preprocess_eval = _preprocess(size, False)
  label_ops = config.data.get('label_ops')
  gray_eval = _preprocess(size, False, gray=True)
  every = config.get_ref('eval_every_steps')
  config.evals = ml_collections.ConfigDict({
      'val_segmentation': dict(type='segmentation', every_steps=every),
      'val_segmentation_gray': dict(
          type='segmentation', every_steps=every,
          preprocess=f'{label_ops}|{gray_eval}' if label_ops else gray_eval),
  })
  return config
