"""Top-k accuracy of any classification head (001's scene head, 003's
image tags).

cfg.output: the predict output holding [N, C] logits (default
'classification'); cfg.label_key: the batch key of the targets (default
'labels'), either class indices [N] or a multi-hot / probability vector
[N, C]; cfg.match: 'any' (default: top-k is correct if it holds any class
with a positive target, the usual rule for multi-label images) or 'argmax'
(the target's most probable class, for soft labels); cfg.top_k (1, 5).
"""

import jax
import jax.numpy as jnp

from colorjax import choices
from colorjax import metrics as metrics_lib
from colorjax.evaluators import base


class ClassificationEvaluator(base.Evaluator):

  def __init__(self, name, cfg, method, config, mesh):
    self.output = cfg.get('output', 'classification')
    self.label_key = cfg.get('label_key', 'labels')
    self.match = cfg.get('match', 'any')
    choices.check(f'evals.{name}.match', self.match, ('any', 'argmax'))
    self.top_k = tuple(cfg.get('top_k', (1, 5)))
    self.needs_keys = (self.label_key,)
    self.needs_outputs = (self.output,)
    super().__init__(name, cfg, method, config, mesh)

  def batch_metrics(self, state, batch, outputs, rng, networks):
    del state, rng, networks
    logits = outputs[self.output].astype(jnp.float32)
    targets = batch[self.label_key]
    num_classes = logits.shape[-1]
    if targets.ndim == 1:
      relevant = jax.nn.one_hot(targets, num_classes) > 0
    elif self.match == 'argmax':
      relevant = jax.nn.one_hot(jnp.argmax(targets, -1), num_classes) > 0
    else:
      relevant = targets > 0
    ranked = jnp.argsort(-logits, axis=-1)
    values = {}
    for k in self.top_k:
      hits = jnp.take_along_axis(relevant, ranked[:, :k], axis=-1)
      values[f'top{k}'] = jnp.any(hits, axis=-1).astype(jnp.float32)
    return metrics_lib.averages(list(values)).single_from_model_output(
        **values, mask=batch['mask'] > 0)
