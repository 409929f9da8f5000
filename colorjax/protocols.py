"""Named evaluation protocols: which data, which resolution, which metrics.

A number is only comparable to another produced by the same protocol, so
`evaluate --preset=NAME` records the preset, each evaluator's data and
resolution, the reference networks' file hashes, the image count and the
colorjax version next to the metrics, and `compare` refuses to put results
of different protocols side by side.

  paper000   000 Table 1: PSNR, SSIM, image entropy on the eval split at
             the model's input (ChromaCMC: 256 centre crop).
  paper001   001 Tables 3-4 and Fig. 12: PSNR / SSIM averaged over RGB
             channels (eq. 21-24), L2 of ab (eq. 23) and the cumulative
             per-pixel ab error curve at the photos' own resolution; LPIPS
             and FID with the weights given; semantic interpretability
             as `top1_agreement` (a VGG16 ImageNet/Places365 classifier's
             top-1 on the colorized photo == its top-1 on the ground
             truth) if given; on a labelled image folder (evaluate
             --images=imagenet/val/ --labels=folders, data.image_folder)
             also the paper's Top1-Acc against the labels (top1,
             top1_gt, top1_gray).
  paper002   002 reports only a user study (Table 1: semantic correctness,
             saturability, edge keeping, naturalness by ten people); on its
             compared images, COCO-Stuff (164k) val (section 3; the paper's
             hand-picked subset and its Unsplash photos are not listed: the
             whole split, or --images=FOLDER), under GridNet's predicted
             maps: PSNR, SSIM, ab RMSE, L2ab, colourfulness and its
             difference to ground truth (the measurable side of
             "saturability") at full resolution, LPIPS / FID with the
             weights given. No segmentation score: GridNet's 60
             PASCAL-Context classes are not COCO-Stuff's 182.
  paper003   003 has only a user study; its issue's protocol: PSNR, SSIM,
             L2ab, colourfulness at full resolution, LPIPS / FID with the
             weights given, and the classification branch's top-1 on the
             image tags.
  paper004   004 Table 3 / Fig. 9 / Fig. 11: mIoU of a reference segmenter
             on gray / colorized / RGB images, PSNR and ab RMSE at the
             original resolution; MS-SSIM diversity of 2 samples per image
             with its histogram (sampling methods).
  fid5k-256  FID and LPIPS of the first 5,000 images of the split (each
             photo's real region resized to 299 for Inception, 256 for
             LPIPS) plus colourfulness and its difference to ground truth.
  suite      the comparison suite (colorjax.suite): colour metrics at the
             model input and the method's own segmentation head, first
             256 images (under it SemanticDriven can be fed the true maps).
  full       everything colorjax computes, at full resolution: colour
             metrics, the method's own segmentation head, perceptual
             metrics, semantic interpretability, reference segmenter,
             diversity -- each one whose inputs are available.
Evaluators that need a weights file or a segmenter run only when one is
given (`--lpips`, `--fid_inception`, `--classifier`, `--segmenter`); the
output lists the others under `skipped` with the reason.
"""

import dataclasses
from typing import Any, Dict, Tuple

import ml_collections


@dataclasses.dataclass(frozen=True)
class Preset:
  description: str
  evals: Dict[str, Dict[str, Any]]
  headline: Tuple[str, ...]         # metrics shown in the markdown table
  max_images: int = -1              # -1: the whole split


_COLOUR_ALL = dict(type='colour', resolution='full')
_PERCEPTUAL = dict(type='perceptual', resolution='full',
                   skip_if_missing=True)
_SEMANTIC = dict(type='semantic_interpretability', resolution='full',
                 skip_if_missing=True)
_REFERENCE = dict(type='reference_segmentation', resolution='full',
                  skip_if_missing=True)
_DIVERSITY = dict(type='diversity', resolution='full', num_samples=2,
                  skip_if_missing=True)
# Paper 002's compared images (section 3): COCO-Stuff's 164k release, val.
_COCO_STUFF_VAL = dict(dataset='coco_stuff/164k', split='val')
_TAGS = dict(type='classification', output='classification',
             label_key='labels', top_k=(1,), skip_if_missing=True)

PRESETS: Dict[str, Preset] = {
    'paper000': Preset(
        'Paper 000 Table 1: PSNR, SSIM, image entropy at the model input',
        {'colour': dict(type='colour', resolution='model')},
        ('psnr', 'ssim', 'entropy')),
    'paper001': Preset(
        'Paper 001 Tables 3-4, Fig. 12: channel-mean PSNR, SSIM, L2ab, '
        'cumulative ab error, LPIPS, FID, semantic interpretability; full '
        'resolution',
        {'colour': _COLOUR_ALL, 'perceptual': _PERCEPTUAL,
         'semantic': _SEMANTIC},
        ('psnr_channel_mean', 'ssim', 'l2_ab', 'l2ab_auc', 'lpips', 'fid',
         'top1_agreement')),
    'paper002': Preset(
        'Paper 002 (only a user study, Table 1): on its compared images, '
        "COCO-Stuff val, under GridNet's maps: PSNR, SSIM, ab RMSE, L2ab, "
        'colourfulness and dCF at full resolution, LPIPS / FID',
        {'colour': dict(_COLOUR_ALL, **_COCO_STUFF_VAL),
         'perceptual': dict(_PERCEPTUAL, **_COCO_STUFF_VAL)},
        ('psnr', 'ssim', 'rmse_ab', 'l2_ab', 'colorfulness',
         'delta_colorfulness', 'lpips', 'fid')),
    'paper003': Preset(
        'Paper 003 (no quantitative table in the paper): PSNR, SSIM, L2ab, '
        'colourfulness at full resolution, LPIPS / FID, image-tag top-1',
        {'colour': _COLOUR_ALL, 'perceptual': _PERCEPTUAL,
         'classification': _TAGS},
        ('psnr', 'ssim', 'l2_ab', 'colorfulness', 'delta_colorfulness',
         'lpips', 'fid', 'top1')),
    'paper004': Preset(
        'Paper 004 Table 3, Fig. 9, Fig. 11: reference-segmenter mIoU on '
        'gray/colorized/RGB, PSNR and ab RMSE at the original resolution, '
        'MS-SSIM diversity',
        {'colour': _COLOUR_ALL, 'reference': _REFERENCE,
         'diversity': _DIVERSITY},
        ('miou_gray', 'miou_colorized', 'miou_rgb', 'psnr', 'rmse_ab',
         'diversity_msssim')),
    'fid5k-256': Preset(
        'FID and LPIPS on the first 5,000 images, colourfulness and its '
        'difference to ground truth',
        {'colour': _COLOUR_ALL, 'perceptual': dict(_PERCEPTUAL,
                                                   lpips_size=256)},
        ('fid', 'lpips', 'colorfulness', 'delta_colorfulness'),
        max_images=5000),
    'suite': Preset(
        "The comparison suite (colorjax.suite): colour metrics at the model "
        "input and the method's own segmentation head",
        {'colour': dict(type='colour', resolution='model'),
         'segmentation': dict(type='segmentation', skip_if_missing=True)},
        ('psnr', 'ssim', 'rmse_ab', 'l2ab_auc', 'colorfulness',
         'delta_colorfulness', 'miou'),
        max_images=256),
    'full': Preset(
        'Every metric whose inputs are available, full resolution',
        {'colour': _COLOUR_ALL,
         'segmentation': dict(type='segmentation', skip_if_missing=True),
         'classification': _TAGS,
         'perceptual': _PERCEPTUAL, 'semantic': _SEMANTIC,
         'reference': _REFERENCE, 'diversity': _DIVERSITY},
        ('psnr', 'ssim', 'rmse_ab', 'l2ab_auc', 'colorfulness',
         'delta_colorfulness', 'miou', 'miou_colorized', 'top1', 'lpips',
         'fid', 'diversity_msssim')),
}

# Evaluator option each reference-network flag fills, by evaluator type.
NETWORK_OPTIONS = {
    'lpips': ('perceptual', 'diversity'),
    'fid_inception': ('perceptual',),
    'classifier': ('semantic_interpretability',),
    'segmenter': ('reference_segmentation',),
}

# Protocol fields that must match for two results to be compared (the
# model's own input transform may differ between methods).
COMPARED_FIELDS = ('preset', 'data', 'resolution', 'canvas', 'max_images',
                   'weights')


# The results of `evaluate` without --preset (the config's own evaluators)
# go to WORKDIR/eval/default/, where `compare` finds them as a preset's.
DEFAULT_RESULTS = 'default'


def names():
  return sorted(PRESETS)


def get(name: str) -> Preset:
  if name not in PRESETS:
    raise ValueError(f'unknown evaluation preset {name!r}; known: '
                     f'{", ".join(names())}')
  return PRESETS[name]


def evals_for(name: str, **networks) -> ml_collections.ConfigDict:
  """The preset's `config.evals`, with the reference files given
  (lpips=PATH, fid_inception=PATH, classifier=NAME:PATH,
  segmenter=WORKDIR|NAME:PATH) filled into the evaluators that use them."""
  preset = get(name)
  evals = {}
  for key, cfg in preset.evals.items():
    cfg = dict(cfg)
    for option, types in NETWORK_OPTIONS.items():
      if networks.get(option) and cfg['type'] in types:
        cfg[option] = networks[option]
    if preset.max_images > 0:
      cfg['max_images'] = preset.max_images
    evals[key] = cfg
  return ml_collections.ConfigDict(evals)
