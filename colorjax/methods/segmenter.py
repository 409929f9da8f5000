"""Reference segmenter: the network that scores colorizations (paper 004).

Paper 004 (Table 3, Fig. 9) measures how well a DeepLab-ResNet101 trained on
colour images segments gray (66.9 mIoU), colorized (70.3) and true colour
(72.1) VOC 2012 validation images. This method trains that network with the
shared trainer: per-pixel softmax cross-entropy (float32, the dataset's
ignore label masked), one network 'segmenter', the optimizer of the config.

`predict(state, {'rgb': x})` takes RGB in [0, 1] of any H x W, normalises it
with the ImageNet mean / std itself (as torchvision segmenters expect), and
returns {'segmentation': float32 logits [N, H, W, C]} at that resolution, so
evaluation can feed it gray-as-RGB, colorized and true RGB images alike.
"""

from typing import Dict

from absl import logging
import jax
import jax.numpy as jnp
import optax

from colorjax import pretrained
from colorjax import trees
from colorjax.losses import segmentation as seg_losses
from colorjax.methods import base
from colorjax.models import segmenter as models
from colorjax.models.imagenet import imagenet_normalize


def graft(reference, loaded, what: str):
  """`trees.graft` of `loaded` into `reference` (a head of another class
  count keeps its initial values). Returns (tree, kept paths).

  Raises ValueError when the two trees share almost nothing (a file of
  another network).
  """
  tree, _, kept, _ = trees.graft(reference, loaded)
  total = len(jax.tree.leaves(reference))
  if total and len(kept) > max(4, total // 10):
    raise ValueError(f'{what}: {len(kept)} of {total} tensors have no '
                     f'counterpart of the same shape (e.g. {kept[:4]}): '
                     'not this network')
  return tree, kept


class Segmenter(base.Method):
  """A segmentation network on RGB: the reference of paper 004's Table 3."""

  predict_keys = ('rgb',)

  def __init__(self, config):
    super().__init__(config)
    self.num_classes = config.data.num_classes
    self.ignore_label = config.data.get('ignore_label')
    self.network = lambda train: models.build(config.model, self.num_classes,
                                              train)
    self.trains_batch_stats = models.trains_batch_stats(config.model)
    self.optimizer = self.make_optimizer('segmenter')

  def batch_spec(self, batch_size):
    """rgb [N, S, S, 3] float32 in [0, 1]; segmentation [N, S, S, 1] uint8
    (the pipeline's label maps; the loss reads them as int32)."""
    size = self.config.data.image_size
    return {'rgb': base.image_spec(batch_size, size, 3),
            'segmentation': base.image_spec(batch_size, size, 1, jnp.uint8)}

  @base.compiled_init
  def init_state(self, rng, batch):
    variables = self.network(False).init(
        rng, imagenet_normalize(batch['rgb']))
    params = {'segmenter': variables['params']}
    return base.TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        opt_state={'segmenter': self.optimizer.init(params['segmenter'])},
        model_state={'segmenter': variables.get('batch_stats', {})})

  def load_pretrained(self, state):
    """Starts the paper network from torchvision's deeplabv3_resnet101
    (COCO-with-VOC-labels) file at `config.model.pretrained`. Everything of
    the same shape is copied (backbone, ASPP, BN statistics); a classifier
    of another class count (COCO-Stuff: 182) keeps its initial values."""
    path = self.config.model.get('pretrained')
    if not path:
      return state
    _, variables = pretrained.load(self.config.model.name, path)
    params, kept = graft(state.params['segmenter'], variables['params'],
                         path)
    stats, kept_stats = graft(state.model_state['segmenter'],
                              variables.get('batch_stats', {}), path)
    if kept or kept_stats:
      logging.info('%s: kept initial values of %s', path, kept + kept_stats)
    return state.replace(
        params={**state.params, 'segmenter': params},
        model_state={**state.model_state, 'segmenter': stats})

  def apply(self, params, batch_stats, rgb, train: bool):
    """(float32 logits at rgb's H x W, updated batch_stats)."""
    variables = {'params': params}
    if batch_stats:
      variables['batch_stats'] = batch_stats
    height, width = rgb.shape[1:3]
    if train and self.trains_batch_stats:
      outputs, updates = self.network(True).apply(
          variables, imagenet_normalize(rgb), mutable=['batch_stats'])
      batch_stats = updates['batch_stats']
    else:
      outputs = self.network(False).apply(variables, imagenet_normalize(rgb))
    return models.logits_of(outputs, height, width), batch_stats

  def loss(self, logits, labels) -> jax.Array:
    """Mean float32 softmax cross-entropy over pixels whose label is a class
    (the ignore label and out-of-range labels masked)."""
    return seg_losses.cross_entropy(logits, labels, self.ignore_label)

  def pixel_accuracy(self, logits, labels) -> jax.Array:
    return seg_losses.pixel_accuracy(logits, labels, self.ignore_label)

  def train_step(self, state, batch, rng):
    del rng   # no dropout
    labels = batch['segmentation']

    def loss_fn(params):
      logits, stats = self.apply(params, state.model_state['segmenter'],
                                 batch['rgb'], train=True)
      return self.loss(logits, labels), (logits, stats)

    (loss, (logits, stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params['segmenter'])
    updates, opt_state = self.optimizer.update(
        grads, state.opt_state['segmenter'], state.params['segmenter'])
    params = optax.apply_updates(state.params['segmenter'], updates)
    metrics = {'loss': loss,
               'pixel_accuracy': self.pixel_accuracy(logits, labels),
               'grad_norm': optax.global_norm(grads)}
    return state.replace(step=state.step + 1, params={'segmenter': params},
                         opt_state={'segmenter': opt_state},
                         model_state={'segmenter': stats}), metrics

  def predict(self, state, batch) -> Dict[str, jax.Array]:
    logits, _ = self.apply(state.params['segmenter'],
                           state.model_state['segmenter'], batch['rgb'],
                           train=False)
    return {'segmentation': logits}
