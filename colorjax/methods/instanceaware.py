"""InstanceAware (paper 003): 313-bin colour classification + image classes.

Loss = L_color (eq. 3) + alpha * L_ls (eq. 1-2):
  eq. 3  L_color = -mean_{n,h,w} w(q*_{h,w}) sum_q T_{h,w,q} log softmax(Z)_{h,w,q}
         T: one-hot on the pixel's nearest bin (the paper), or Zhang's soft
         encoding over the k nearest bins (`data.soft_encode_k`); w: the
         class-rebalancing weight of the nearest bin (Zhang et al. eq. 3-4,
         lambda 0.5, sigma 5) from the training split's ab prior.
  eq. 1-2 L_ls = -sum_j t_j log softmax(z)_j with t the image's normalised
         multi-hot tag vector (= the paper's one-hot for one-class images;
         images without a tag are left out), or a per-class sigmoid
         cross-entropy (`loss.classification='sigmoid'`).
Decoding: the annealed mean of Zhang et al. (T = 0.38), or the mode / mean.
"""

from typing import Dict

import jax
import jax.numpy as jnp
import ml_collections

from colorjax import errors
from colorjax import pretrained
from colorjax.color import quantize
from colorjax.losses import distribution
from colorjax.methods import base
from colorjax.models import instanceaware as models
from colorjax.pretrained import vgg as vgg_weights

DECODINGS = quantize.DECODINGS
decode_ab = quantize.decode_ab_logits
colour_loss = distribution.binned_colour_loss                   # eq. 3
classification_loss = distribution.label_cross_entropy          # eq. 1-2


MISSING_TRUNK_MESSAGE = (
    'the paper initialises conv1-conv9 from Zhang et al.\'s ECCV16 '
    'network (section 3.1), and no weights were given.\n'
    '  Get the release\'s colorization_release_v2-9b330a0b.pth '
    '(richzhang/colorization, https://colorizers.s3.us-east-2.amazonaws.com/'
    'colorization_release_v2-9b330a0b.pth) and pass\n'
    '  --config.init_from.model.pretrained=eccv16:PATH\n'
    '  or train from random init on purpose with '
    '--config.init_from.model.pretrained=none (recorded as such in '
    '<workdir>/pretrained.json and in compare\'s tables).')

MISSING_BRANCH_MESSAGE = (
    'the paper initialises the classification branch from an ImageNet '
    'classifier (section 3.1, Russakovsky et al.): VGG16\'s fc6-fc8, whose '
    'pool5 -> fc6 -> fc7 -> fc8 on 512-channel conv5 features the branch '
    'is, and no weights were given.\n'
    f'  Get torchvision\'s {vgg_weights.VGG16_FILE} ({vgg_weights.VGG16_URL}) '
    'and pass\n'
    '  --config.init_from.branch.pretrained=vgg16:PATH\n'
    '  or train the branch from random init on purpose with '
    '--config.init_from.branch.pretrained=none (recorded as such in '
    '<workdir>/pretrained.json and in compare\'s tables).')


class InstanceAware(base.BinnedColourMethod):
  """Li et al., 'Instance-aware image colorization via deep neural networks'
  (paper 003)."""

  def input_multiple(self):
    # Zhang's network: three stride-2 convolutions. The classification
    # branch's fc1 on the flattened pooled conv5 (the paper's "fully
    # connected", branch_reduce='flatten') fixes the input to the square
    # data.image_size; pooled globally ('mean') it takes any size.
    # 'vgg16' (adaptive pool to 7x7, as torchvision's VGG) takes any size.
    if self.num_classes and self.config.model.branch_reduce == 'flatten':
      return None
    return 8

  def __init__(self, config):
    super().__init__(config)
    model = config.model
    # Image tags: the dataset's classes from data.first_class on.
    self.num_classes = (config.data.num_classes - config.data.first_class
                        if model.use_classifier else 0)
    self.ab_scale = config.data.ab_scale
    self.network = lambda train: models.InstanceAware(
        widths=tuple(model.widths), depths=tuple(model.depths),
        fc_features=tuple(model.fc_features), num_classes=self.num_classes,
        branch_reduce=model.branch_reduce,
        fusion=model.get('fusion', 'identity'),
        upconv=model.get('upconv', 'auto'),
        train=train, dtype=base.compute_dtype(model.dtype))
    self.optimizer = self.make_optimizer('model')

  target_stride = 4      # Zhang's 313-bin logits at 1/4 resolution

  def _missing_weights(self):
    """The messages of the parts the config expects pretrained weights for
    (`model.expect_pretrained_trunk` / `_branch`) and no init_from source
    names ('none', the opt-out, is a source)."""
    model, missing = self.config.model, []
    if (model.get('expect_pretrained_trunk', False)
        and base.init_from_source(self.config, 'model')[1] is None):
      missing.append(MISSING_TRUNK_MESSAGE)
    if (self.num_classes and model.get('expect_pretrained_branch', False)
        and base.init_from_source(self.config, 'branch')[1] is None):
      missing.append(MISSING_BRANCH_MESSAGE)
    return missing

  def load_pretrained(self, state):
    """Stops a fresh paper-preset run that names no weights for Zhang's
    layers or for the classification branch, before its first step, with
    one message for what is missing; the copy itself is config.init_from's
    ('model': conv1-conv9, 'branch': fc1-fc3 into the same network)."""
    missing = self._missing_weights()
    if missing:
      raise errors.MissingFileError('\n'.join(missing))
    return state

  def _record(self, entry: str, network: str, expected: bool):
    path = base.init_from_path(*base.init_from_source(self.config, entry))
    return base.weights_record(
        network, expected, f'config.init_from.{entry}' if path else None,
        path)

  def pretrained_record(self):
    """Where conv1-conv9 and the branch's fc1-fc3 came from
    (<workdir>/pretrained.json)."""
    model = self.config.model
    record = {'model/conv1-conv9': self._record(
        'model', 'eccv16', model.get('expect_pretrained_trunk', False))}
    if self.num_classes:
      record['model/fc1-fc3'] = self._record(
          'branch', 'vgg16', model.get('expect_pretrained_branch', False))
    return record

  def batch_spec(self, batch_size):
    spec = super().batch_spec(batch_size)
    if self.num_classes:
      spec['labels'] = jax.ShapeDtypeStruct((batch_size, self.num_classes),
                                            jnp.float32)
    return spec

  def losses(self, outputs, batch, rebalance) -> Dict[str, jax.Array]:
    terms = {'color': colour_loss(outputs['logits'], batch['ab_bins'],
                                  batch['ab_weights'], rebalance)}
    if self.num_classes:
      terms['classification'], terms['tagged_images'] = classification_loss(
          outputs['classification'], batch['labels'],
          self.config.loss.classification)
    return terms

  def total_loss(self, terms):
    return (terms['color'] + self.config.loss.classification_weight *
            terms.get('classification', 0.0))

  def train_metrics(self, outputs, batch, terms):
    metrics = {'loss_color': terms['color']}
    if self.num_classes:
      metrics['loss_classification'] = terms['classification']
      top1 = jnp.argmax(outputs['classification'], -1)
      hit = jnp.take_along_axis(batch['labels'], top1[:, None], -1)[:, 0]
      # Over the tagged images (an untagged image has no right answer).
      metrics['train_top1'] = (jnp.sum((hit > 0).astype(jnp.float32))
                               / jnp.maximum(terms['tagged_images'], 1.0))
    return metrics

  def predict(self, state, batch):
    """ab (annealed mean by default) upsampled bilinearly to the input size
    (Zhang's 4x upsampling), the 313-bin logits, the image-class logits."""
    decoding = self.config.decoding
    outputs = self.outputs(state, batch['gray'])
    ab = decode_ab(outputs['logits'], decoding.decode,
                   decoding.temperature) / self.ab_scale
    n, h, w = batch['gray'].shape[:3]
    result = {'ab': jax.image.resize(ab, (n, h, w, 2), 'bilinear'),
              'ab_logits': outputs['logits']}
    if 'classification' in outputs:
      result['classification'] = outputs['classification']
    return result


def published_eccv16_config(image_size: int = 256) -> ml_collections.ConfigDict:
  """The config of Zhang et al.'s published ECCV16 network (`colorize
  --pretrained=eccv16:PATH`): no classification branch; the demo's 256x256
  resize; the plain expectation over the bins ('mean'), which is what the
  PyTorch release computes (`model_out(softmax(model8))`: its model_out is
  the bin centres / 110, checked on load).

  Why not the paper's annealed mean (T = 0.38): the Caffe release applies it
  as a Scale layer of 2.606 = 1/0.38 on the logits (deploy prototxt,
  `conv8_313_rh`), a layer the PyTorch port has no counterpart of; whether
  its converted weights fold that scale into model8's last conv is
  published nowhere (richzhang/colorization issue #93 asks, unanswered).
  If they do, T = 0.38 on them anneals twice (an effective T of 0.14).
  `--decode=annealed_mean --temperature=0.38` remains available; it is
  the Caffe release's colours only if the file is unfolded."""
  config = ml_collections.ConfigDict()
  config.method = 'instanceaware'
  config.data = ml_collections.ConfigDict(dict(
      image_size=image_size, ab_scale=110.0, soft_encode_k=1,
      preprocess_eval=f'resize({image_size})|to_lab|'
                      'normalize_lab(ab_scale=110.0)'))
  config.model = ml_collections.ConfigDict(dict(
      models.SIZES['paper'], use_classifier=False,
      branch_reduce='flatten', upconv='auto', dtype='float32'))
  config.decoding = ml_collections.ConfigDict(dict(decode='mean',
                                                   temperature=0.38))
  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=0.0, schedule=dict(type='constant')))
  config.num_train_steps = 1
  config.loss = ml_collections.ConfigDict(dict(rebalance=False))
  return config


def state_from_pretrained(method: InstanceAware, spec: str) -> base.TrainState:
  """A TrainState holding a converted published network ('eccv16:PATH')."""
  name, path = pretrained.parse_spec(
      spec, '--pretrained', 'eccv16:colorization_release_v2-9b330a0b.pth')
  if name != 'eccv16':
    raise ValueError(f'--pretrained must be eccv16:PATH, not {spec!r}')
  variables = pretrained.load_embedded('eccv16', path)
  return base.TrainState(step=jnp.zeros((), jnp.int32),
                         params={'model': variables['params']}, opt_state={},
                         model_state={'model': variables['batch_stats']})
