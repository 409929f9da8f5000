"""The reference segmenter (configs/segmenter.py): trains end to end with the
shared trainer, restores, predicts at any size; its loss is the masked
cross-entropy written out in numpy; it overfits one batch; its sizes match
arithmetic (the paper network's, colorjax.models.deeplab, too)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import methods
from colorjax import train
from colorjax import workdir as workdir_lib
from colorjax.data import pipeline
from colorjax.data import preprocess

from conftest import fit_fixed_batch
from conftest import tiny_config
import segmenter as segmenter_config  # configs/, on sys.path via conftest


def _numpy_cross_entropy(logits, labels, ignore_label):
  logits = np.asarray(logits, np.float64)
  labels = np.asarray(labels).reshape(logits.shape[:-1]).astype(np.int64)
  top = logits.max(-1, keepdims=True)
  log_z = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]
  valid = (labels != ignore_label) & (labels < logits.shape[-1])
  picked = np.take_along_axis(logits, np.where(valid, labels, 0)[..., None],
                              -1)[..., 0]
  return float(((log_z - picked) * valid).sum() / valid.sum()), valid


def test_tiny_config_trains_restores_and_predicts_any_size(shapes_data_dir,
                                                           tmp_path):
  config = tiny_config(shapes_data_dir, 'segmenter')
  workdir = str(tmp_path / 'segmenter')
  result = train.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == [
      '2', '4', '6']
  assert np.isfinite(result['train']['loss'])
  assert 0.0 <= result['train']['pixel_accuracy'] <= 1.0
  for name in ('val_segmentation', 'val_segmentation_gray'):
    values = result['evals'][name]
    assert 0.0 <= values['miou'] <= 1.0, result['evals']
    assert 0.0 <= values['pixel_accuracy'] <= 1.0

  method, state = workdir_lib.restore_for_inference(workdir)
  assert type(method).__name__ == 'Segmenter' and int(state.step) == 6
  rgb = np.random.default_rng(0).uniform(0, 1, (3, 23, 41, 3))
  out = jax.jit(method.predict)(state, {'rgb': jnp.asarray(rgb,
                                                           jnp.float32)})
  assert set(out) == {'segmentation'}
  assert out['segmentation'].shape == (3, 23, 41, config.data.num_classes)
  assert out['segmentation'].dtype == jnp.float32
  assert np.all(np.isfinite(out['segmentation']))


def test_loss_is_masked_cross_entropy_and_accuracy_counts_valid_pixels():
  config = segmenter_config.get_config('tiny')
  config.data.num_classes, config.data.ignore_label = 21, 255
  method = methods.get_method(config)
  rng = np.random.default_rng(3)
  logits = rng.normal(0, 3, (2, 5, 6, 21)).astype(np.float32)
  labels = rng.integers(0, 21, (2, 5, 6, 1))
  labels[rng.uniform(size=labels.shape) < 0.3] = 255
  labels = labels.astype(np.uint8)
  expected, valid = _numpy_cross_entropy(logits, labels, 255)
  # bfloat16 logits: the loss is still computed in float32.
  bf16 = jnp.asarray(logits, jnp.bfloat16)
  got = method.loss(bf16, jnp.asarray(labels))
  assert got.dtype == jnp.float32
  expected_bf16, _ = _numpy_cross_entropy(np.asarray(bf16, np.float32),
                                          labels, 255)
  assert float(got) == pytest.approx(expected_bf16, rel=1e-5)
  got = method.loss(jnp.asarray(logits), jnp.asarray(labels))
  assert float(got) == pytest.approx(expected, rel=1e-5)
  # Ignored pixels change nothing, whatever their logits.
  noisy = np.where(valid[..., None], logits, 100.0 * logits)
  assert float(method.loss(jnp.asarray(noisy), jnp.asarray(labels))) == (
      pytest.approx(expected, rel=1e-5))
  hits = (logits.argmax(-1) == labels[..., 0]) & valid
  assert float(method.pixel_accuracy(jnp.asarray(logits), jnp.asarray(
      labels))) == pytest.approx(hits.sum() / valid.sum(), rel=1e-6)


def _shapes_batch(config, data_dir, count):
  """`count` training examples of the test build, preprocessed as the
  config's evaluation data (deterministic)."""
  source = pipeline.data_source(config.data.dataset, 'train', data_dir)
  ops = preprocess.parse(config.data.preprocess_eval)
  examples = [preprocess.apply(ops, source[i]) for i in range(count)]
  return {'rgb': jnp.asarray(np.stack([e['rgb'] for e in examples])),
          'segmentation': jnp.asarray(np.stack(
              [e['segmentation'] for e in examples]), jnp.uint8)}


def test_overfits_one_batch_of_semantic_shapes(shapes_data_dir):
  """60 Adam steps (lr 1e-2) of the tiny net on 8 scenes: the loss falls
  by more than 8x (measured 2.40 -> 0.135, 18x) and pixel accuracy passes
  0.93 (measured 0.07 -> 0.98; 0.97 with running BN statistics). A wrong
  label layout or loss sign fails."""
  config = tiny_config(shapes_data_dir, 'segmenter')
  config.optimizer.learning_rate = 1e-2
  config.optimizer.schedule = {'type': 'constant'}
  method = methods.get_method(config)
  batch = _shapes_batch(config, shapes_data_dir, 8)
  state, history = fit_fixed_batch(method, batch, 60)
  first, last = history[0], history[-1]
  assert last['loss'] < first['loss'] / 8, (first, last)
  assert last['pixel_accuracy'] > 0.93, (first, last)
  # Inference (running BN statistics) agrees with the fitted labels too.
  logits = method.predict(state, batch)['segmentation']
  assert float(method.pixel_accuracy(logits, batch['segmentation'])) > 0.9


def _conv(c_in, c_out):
  return 3 * 3 * c_in * c_out + 2 * c_out     # no bias; BN scale + bias


@pytest.mark.parametrize('arg', ['tiny', 'demo'])
def test_small_model_parameter_count_is_the_arithmetic(arg):
  config = segmenter_config.get_config(arg)
  w, classes = config.model.width, config.data.num_classes
  assert config.model.depth == {'tiny': 2, 'demo': 3}[arg]
  widths = [w * 2 ** i for i in range(config.model.depth + 1)]
  expected = _conv(3, w) + _conv(w, w)
  for c_in, c_out in zip(widths, widths[1:]):
    expected += _conv(c_in, c_out) + _conv(c_out, c_out)   # down + conv
  for c_deep, c_skip in zip(widths[::-1][:-1], widths[::-1][1:]):
    expected += _conv(c_deep + c_skip, c_skip)             # up + concat
  expected += w * classes + classes                        # 1x1 head
  assert expected == {'tiny': 27_047, 'demo': 439_495}[arg]
  method = methods.get_method(config)
  assert method.describe(method.batch_spec(2)) == {'segmenter': expected}


# torchvision deeplabv3_resnet101: 60,996,202 parameters with the auxiliary
# FCN head (its documented count), whose 3x3 1024->256 conv, BN(256) and
# 1x1 256->21 conv hold 2,359,296 + 512 + 5,397 = 2,365,205: 58,630,997
# without it (ResNet-101 trunk 42,500,160 + DeepLabHead 16,130,837).
DEEPLAB_VOC = 60_996_202 - (1024 * 256 * 9 + 2 * 256 + 256 * 21 + 21)


def test_paper_network_parameter_count():
  assert DEEPLAB_VOC == 58_630_997
  for arg, classes in (('voc', 21), ('coco_stuff', 182)):
    config = segmenter_config.get_config(arg)
    assert config.data.num_classes == classes
    method = methods.get_method(config)
    batch = method.batch_spec(1)
    expected = DEEPLAB_VOC + (classes - 21) * (256 + 1)
    assert method.describe(batch) == {'segmenter': expected}, arg
    state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
    out = jax.eval_shape(method.predict, state,
                         {'rgb': jax.ShapeDtypeStruct((2, 97, 130, 3),
                                                      jnp.float32)})
    assert out['segmentation'].shape == (2, 97, 130, classes)


def test_load_pretrained_copies_all_but_a_head_of_another_class_count(
    monkeypatch):
  """A checkpoint of the same network with 21 classes (paper: torchvision's
  COCO-with-VOC-labels file) fills everything but the 7-class head; a file
  of another network is refused."""
  from colorjax import pretrained  # pylint: disable=g-import-not-at-top
  from colorjax.models import segmenter as models  # pylint: disable=g-import-not-at-top
  config = segmenter_config.get_config('tiny')
  config.model.pretrained = '/weights/deeplab.pth'
  method = methods.get_method(config)
  rgb = jnp.zeros((1, 32, 32, 3))
  state = method.init_state(jax.random.PRNGKey(0), {
      'rgb': rgb, 'segmentation': jnp.zeros((1, 32, 32, 1), jnp.uint8)})
  saved = models.build(config.model, 21, False).init(jax.random.PRNGKey(1),
                                                      rgb)
  saved['batch_stats'] = jax.tree.map(lambda x: x + 0.5,
                                      saved['batch_stats'])
  calls = []
  monkeypatch.setattr(pretrained, 'load',
                      lambda name, path: calls.append((name, path)) or (
                          None, saved))
  loaded = method.load_pretrained(state)
  assert calls == [('small', '/weights/deeplab.pth')]
  flat = lambda tree: dict(jax.tree_util.tree_leaves_with_path(tree))  # pylint: disable=unnecessary-lambda-assignment
  before, after = flat(state.params), flat(loaded.params)
  source = flat({'segmenter': saved['params']})
  for path, value in after.items():
    if 'classifier' in jax.tree_util.keystr(path):
      np.testing.assert_array_equal(value, before[path])   # 7 != 21 classes
    else:
      np.testing.assert_array_equal(value, source[path])
  for path, value in flat(loaded.model_state).items():
    np.testing.assert_array_equal(
        value, flat({'segmenter': saved['batch_stats']})[path])
  monkeypatch.setattr(pretrained, 'load', lambda name, path: (
      None, {'params': {'fc': {'kernel': jnp.zeros((2, 2))}}}))
  with pytest.raises(ValueError, match='not this network'):
    method.load_pretrained(state)
