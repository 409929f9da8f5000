"""SceneContext U-Net (paper 001, section IV): outputs per variant and the
parameter count against the layer list written out by hand (the decoder's
input widths include the concatenated skips, so a missing or misplaced skip
changes the count)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.models import scenecontext


def _count(variables):
  return sum(x.size for x in jax.tree.leaves(variables['params']))


def _expected_params(widths, middle, decoder_convs, hidden, heads, classes):
  """Section IV's layers, counted independently: conv k x k with bias,
  BatchNorm scale + bias, dense with bias."""
  conv = lambda cin, cout, k=3: k * k * cin * cout + cout  # pylint: disable=unnecessary-lambda-assignment
  bn = lambda c: 2 * c  # pylint: disable=unnecessary-lambda-assignment
  total, cin = 0, 3
  for w in widths:                     # two convs per encoder block
    total += conv(cin, w) + bn(w) + conv(w, w) + bn(w)
    cin = w
  total += conv(cin, middle) + bn(middle) + conv(middle, middle) + bn(middle)
  cin = middle
  for w in reversed(widths):          # up-sample, concat skip, convs
    c = cin + w
    for _ in range(decoder_convs):
      total += conv(c, w) + bn(w)
      c = w
    cin = w
  outputs = {'reg': 2, 'soft': 313, 'seg': classes}
  for name, n in outputs.items():
    if name in heads:
      total += conv(cin, n, 1)
  if 'clas' in heads:
    total += middle * hidden + hidden + hidden * 365 + 365
  return total


@pytest.mark.parametrize('variant', sorted(scenecontext.VARIANTS))
def test_outputs_and_parameter_count_of_each_variant(variant):
  heads = scenecontext.VARIANTS[variant]
  size = scenecontext.SIZES['tiny']
  model = scenecontext.SceneContext(**size, heads=heads, num_classes=7)
  gray = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)),
                     jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), gray)
  out = model.apply(variables, gray)
  expected_keys = {'reg': 'ab', 'soft': 'ab_logits', 'seg': 'segmentation',
                   'clas': 'scene'}
  assert set(out) == {expected_keys[h] for h in heads}
  assert out['ab'].shape == (2, 32, 32, 2)
  assert float(jnp.max(jnp.abs(out['ab']))) <= 1.0
  assert out['ab_logits'].shape == (2, 32, 32, 313)
  if 'seg' in heads:
    assert out['segmentation'].shape == (2, 32, 32, 7)
  if 'clas' in heads:
    assert out['scene'].shape == (2, 365)
  assert _count(variables) == _expected_params(
      size['encoder_widths'], size['middle_width'], size['decoder_convs'],
      size['clas_hidden'], heads, 7)


def test_paper_size():
  """The full model on COCO-Stuff (183 outputs), from shapes only."""
  model = scenecontext.SceneContext(num_classes=183)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                             jnp.zeros((1, 224, 224, 1)))
  paper = scenecontext.SIZES['paper']
  assert _count(variables) == _expected_params(
      paper['encoder_widths'], paper['middle_width'], paper['decoder_convs'],
      paper['clas_hidden'], scenecontext.HEADS, 183)


def test_unknown_heads_are_rejected():
  with pytest.raises(ValueError, match='unknown heads'):
    scenecontext.SceneContext(heads=('reg', 'colour')).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 1)))
