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

import os
from typing import Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections

from colorjax import config_lib
from colorjax import errors
from colorjax import pretrained
from colorjax.color import quantize
from colorjax.losses import distribution
from colorjax.methods import base
from colorjax.models import instanceaware as models

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


class InstanceAware(base.BinnedColourMethod):
  """Li et al., 'Instance-aware image colorization via deep neural networks'
  (paper 003)."""

  def input_multiple(self):
    # Zhang's network: three stride-2 convolutions. The classification
    # branch's fc1 on the flattened pooled conv5 (the paper's "fully
    # connected", branch_reduce='flatten') fixes the input to the square
    # data.image_size; pooled globally ('mean') it takes any size.
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

  def _trunk_source(self) -> Optional[str]:
    """config.init_from.model's source (pretrained, file or workdir), or
    None; 'none' is the deliberate opt-out."""
    return self._trunk_entry()[1]

  def _trunk_entry(self):
    """(key, value) of config.init_from.model's source, or (None, None)."""
    entry = dict(self.config.get('init_from', {}).get('model') or {})
    for key in ('pretrained', 'file', 'workdir'):
      if entry.get(key):
        return key, entry[key]
    return None, None

  def load_pretrained(self, state):
    """Stops a fresh paper-preset run (`model.expect_pretrained_trunk`)
    that names no weights for Zhang's layers, before its first step; the
    copy itself is config.init_from's."""
    if (self.config.model.get('expect_pretrained_trunk', False)
        and self._trunk_source() is None):
      raise errors.MissingFileError(MISSING_TRUNK_MESSAGE)
    return state

  def pretrained_record(self):
    """Where conv1-conv9 came from (<workdir>/pretrained.json)."""
    key, source = self._trunk_entry()
    chosen = source is not None and source != config_lib.INIT_FROM_OPT_OUT
    path = sha256 = None
    if chosen:
      # A pretrained spec is NAME:PATH (parsed as init_from parses it); a
      # file or workdir is a path, colons and all.
      path = (pretrained.parse_spec(source, 'init_from pretrained')[1]
              if key == 'pretrained' else source)
      path = os.path.abspath(os.path.expanduser(path))
      if os.path.isfile(path):
        sha256 = pretrained.file_sha256(path)
    return {'model/conv1-conv9': {
        'network': 'eccv16', 'pretrained': chosen,
        'expected': bool(self.config.model.get('expect_pretrained_trunk',
                                               False)),
        'source': 'config.init_from.model' if chosen else None,
        'path': path, 'sha256': sha256}}

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
