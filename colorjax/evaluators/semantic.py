"""Semantic interpretability and the reference segmenter: do colorized
images carry the semantics a recognition network needs?

semantic_interpretability (paper 001 section V-C, after Zhang 2016 and
Larsson 2016): a classifier from a torchvision file (cfg.classifier =
'vgg16:PATH', ImageNet or Places365 head) classifies the colorized, the
ground-truth and the gray (ab = 0) versions of each image, at 224 after a
256 shorter-side resize and centre crop, ImageNet normalisation.
  top1_agreement[_gray]   the colorized (gray) image gets the ground
                          truth's top-1 class -- needs no labels;
  top1, top1_gt, top1_gray  accuracy against cfg.label_key when the
                          dataset has labels in the classifier's classes.

reference_segmentation (paper 004 Table 3 / Fig. 9: gray 66.9, colorized
70.3, RGB 72.1 mIoU on VOC val): a segmenter trained on RGB segments the
gray, colorized and RGB images; mIoU of each against the label map:
  miou_gray, miou_colorized, miou_rgb (+ pixel accuracies).
cfg.segmenter is a weights file of the paper's DeepLab-v2 ResNet-101
(PATH alone: `cfg.segmenter_network`, default 'deeplabv2_resnet101', the
PyTorch port of the authors' VOC model, MSC, no CRF), NAME:PATH of another
`colorjax.pretrained` segmenter (torchvision's 'deeplabv3_resnet101:PATH'),
or a colorjax `configs/segmenter.py` workdir. Each network gets its own
input normalisation (`pretrained.input_transform`: Caffe's BGR mean for
DeepLab-v2, ImageNet's for DeepLabv3).
The segmenter sees each image's real region resized to cfg.input_size
(default: the workdir's training size, 513 for a DeepLab file: the test
size of both DeepLabs); its logits (DeepLab-v2's at 1/8, resized to the
input bilinearly, as its port's evaluation does) are resized back onto the
label map of cfg.resolution's protocol.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import metrics as metrics_lib
from colorjax import workdir as workdir_lib
from colorjax.evaluators import base
from colorjax import pretrained
from colorjax.models.imagenet import imagenet_normalize
from colorjax.pretrained import deeplab as deeplab_files
from colorjax.pretrained import parse_spec


class SemanticInterpretabilityEvaluator(base.Evaluator):
  needs_keys = ('l', 'ab')
  needs_outputs = ('ab',)
  uses_resolution = True

  def __init__(self, name, cfg, method, config, mesh):
    super().__init__(name, cfg, method, config, mesh)
    self.classifier = None
    if cfg.get('classifier'):
      network, path = parse_spec(cfg.classifier, f'evals.{name}.classifier')
      self.classifier = self.load_network('classifier', network, path)
    self.label_key = cfg.get('label_key')
    if self.label_key:
      self.needs_keys = tuple(self.needs_keys) + (self.label_key,)

  missing_network_hint = ('no classifier file given (evals.<name>.'
                          'classifier=NAME:PATH; evaluate --classifier)')

  def has_network(self):
    return self.classifier is not None

  def batch_metrics(self, state, batch, outputs, rng, networks):
    del state, rng
    s = self.scored(batch, outputs['ab'])
    hw = s.hw

    def top1(ab):
      image = base.crop_resize(s.rgb(ab), hw, 224, mode='center')
      logits = self.classifier.apply(networks['classifier'],
                                     imagenet_normalize(image))
      return jnp.argmax(logits, -1)

    pred, true = top1(s.ab_pred), top1(s.ab_true)
    gray = top1(jnp.zeros_like(s.ab_true))
    values = {'top1_agreement': (pred == true).astype(jnp.float32),
              'top1_agreement_gray': (gray == true).astype(jnp.float32)}
    if self.label_key:
      labels = batch[self.label_key]
      if labels.ndim > 1:
        labels = jnp.argmax(labels, -1)
      for key, guess in (('top1', pred), ('top1_gt', true),
                         ('top1_gray', gray)):
        values[key] = (guess == labels).astype(jnp.float32)
    return metrics_lib.averages(list(values)).single_from_model_output(
        **values, mask=batch['mask'] > 0)


# Paper 004's segmenter (section 4.4): what a weights file without NAME: is.
DEFAULT_SEGMENTER = 'deeplabv2_resnet101'


def segmenter_file(spec: str, default: str = DEFAULT_SEGMENTER):
  """'NAME:PATH' (NAME a `colorjax.pretrained` network) or 'PATH' (the
  `default` network's file) -> (network, path)."""
  name, sep, path = spec.partition(':')
  if sep and name in pretrained.names():
    return name, os.path.expanduser(path)
  return default, os.path.expanduser(spec)


class ReferenceSegmentationEvaluator(base.Evaluator):
  needs_keys = ('l', 'ab', 'segmentation')
  needs_outputs = ('ab',)
  uses_resolution = True

  def __init__(self, name, cfg, method, config, mesh):
    super().__init__(name, cfg, method, config, mesh)
    if self.resolution == 'full':
      self.needs_keys = tuple(self.needs_keys) + ('segmentation_full',)
    spec = cfg.get('segmenter')
    self.segment = None
    self.num_classes = config.data.num_classes
    self.ignore_label = config.data.get('ignore_label')
    if not spec:
      return
    if not os.path.isdir(os.path.expanduser(spec)):   # [NAME:]PATH
      network, path = segmenter_file(
          spec, cfg.get('segmenter_network') or DEFAULT_SEGMENTER)
      module = self.load_network('segmenter', network, path)
      self.input_size = size = int(cfg.get('input_size') or 513)
      transform = pretrained.input_transform(network)

      def segment(nets, rgb):
        logits = module.apply(nets['segmenter'], transform(rgb))
        if logits.shape[1:3] != (size, size):      # DeepLab-v2: at 1/8
          logits = jax.image.resize(
              logits, (logits.shape[0], size, size, logits.shape[-1]),
              'bilinear')
        return logits
      self.segment = segment
      self.source = f'{network}:{path}'
    else:
      seg_method, seg_state = workdir_lib.restore_for_inference(
          os.path.expanduser(spec))
      if 'rgb' not in seg_method.predict_keys:
        raise ValueError(f'evals.{name}.segmenter: {spec} is a '
                         f'{seg_method.config.method} workdir, not a '
                         'segmenter (configs/segmenter.py)')
      self.networks['segmenter'] = seg_state
      self.input_size = int(cfg.get('input_size') or
                            seg_method.config.data.image_size)
      self.segment = lambda nets, rgb: seg_method.predict(
          nets['segmenter'], {'rgb': rgb})['segmentation']
      self.source = f'{spec} (step {int(seg_state.step)})'

  missing_network_hint = (
      'no reference segmenter given (evaluate --segmenter=PATH of paper '
      f"004's DeepLab-v2, {deeplab_files.V2_VOC_FILE} from "
      f'{deeplab_files.V2_VOC_URL}; or deeplabv3_resnet101:PATH, or a '
      'configs/segmenter.py workdir; evals.<name>.segmenter in a config)')

  def has_network(self):
    return self.segment is not None

  def batch_metrics(self, state, batch, outputs, rng, networks):
    del state, rng
    s = self.scored(batch, outputs['ab'])
    hw = s.hw
    labels = (batch['segmentation_full'] if self.resolution == 'full'
              else batch['segmentation'])[..., 0]
    confusions = {}
    for key, ab in (('gray', jnp.zeros_like(s.ab_true)),
                    ('colorized', s.ab_pred), ('rgb', s.ab_true)):
      image = base.crop_resize(s.rgb(ab), hw, self.input_size)
      logits = self.segment(networks, image).astype(jnp.float32)
      if hw is None:
        logits = jax.image.resize(logits, labels.shape + logits.shape[-1:],
                                  'linear')
      else:
        logits = base.upsample_to_canvas(logits, hw,
                                         tuple(labels.shape[1:3]))
      confusions[key] = metrics_lib.confusion_matrix(
          labels, jnp.argmax(logits, -1), self.num_classes,
          self.ignore_label, weights=s.mask)
    return (metrics_lib.averages(['images']).single_from_model_output(
        images=jnp.ones_like(batch['mask']), mask=batch['mask'] > 0),
            {'sum': confusions})

  def finish(self, writer=None, step=None, samples_dir=None):
    if self._totals is None:
      return {}
    results = {'num_images': int(self._totals.images.count)}
    for key in ('gray', 'colorized', 'rgb'):
      confusion = self._sums[key]
      results[f'miou_{key}'] = metrics_lib.mean_iou(confusion)
      results[f'pixel_accuracy_{key}'] = float(
          np.trace(confusion) / max(confusion.sum(), 1.0))
    return results
