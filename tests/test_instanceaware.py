"""InstanceAware (paper 003): sizes, eq. 1-3 against PyTorch's own losses,
decoding, a fixed-batch overfit, the ablation switch, the prior cache, the
paper's initialisation from ECCV16 weights and colorize --pretrained."""

import importlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
import torch
from torch.nn import functional as F

from colorjax.color import quantize
from colorjax import colorize
from colorjax.data import inference
from colorjax.data import preprocess
from colorjax import methods
from colorjax.methods import instanceaware
from colorjax.pretrained import eccv16
from colorjax import workdir as workdir_lib

from conftest import fit_fixed_batch
import test_pretrained
from test_pretrained_eccv16 import _reference
from test_pretrained_eccv16 import ECCV16_PARAMS


def _config(arg='tiny', **model):
  config = importlib.import_module('instanceaware').get_config(arg)
  config.model.update(model)
  return config


# Documented in configs/instanceaware.py's docstring and README.
SIZES = {
    ('voc', False): ECCV16_PARAMS,       # Zhang et al.'s network alone
    ('voc', True): 156_672_917,          # + VGG16's head as the branch + fusion
    ('demo', True): 1_103_310,
    ('tiny', True): 25_254,
}


@pytest.mark.parametrize('arg,branch', sorted(SIZES))
def test_parameter_counts_and_output_shapes(arg, branch):
  config = _config(arg, use_classifier=branch)
  method = methods.get_method(config)
  batch = method.batch_spec(2)
  assert method.describe(batch) == {'model': SIZES[(arg, branch)]}
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  out = jax.eval_shape(method.predict, state, batch)
  size = config.data.image_size
  assert out['ab'].shape == (2, size, size, 2)
  assert out['ab_logits'].shape == (2, size // 4, size // 4, 313)
  if branch:
    assert out['classification'].shape == (2, method.num_classes)
  else:
    assert 'classification' not in out


def test_branch_adds_exactly_pool_fc_classifier_and_fusion():
  """The paper-size branch = VGG16's fc6-fc8 as fc1-fc3 (7*7*512 -> 4096
  -> 4096 -> 1000: torchvision's classifier, 123,642,856) + the classifier
  over VOC's 20 object classes + the 1x1 fusion (1512 -> 512)."""
  fc = (7 * 7 * 512 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 1000
  assert fc == 123_642_856
  extra = fc + (1000 + 1) * 20 + (1512 + 1) * 512
  assert SIZES[('voc', True)] - SIZES[('voc', False)] == extra
  assert methods.get_method(_config('voc')).num_classes == 20


def test_colour_loss_is_torch_cross_entropy_weighted_by_the_rebalancing():
  """Eq. 3 with one-hot targets = torch's cross_entropy per pixel times the
  target bin's weight; with soft targets = torch's soft-label CE. Values and
  gradients with respect to the logits."""
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 2, (2, 3, 4, 313)).astype(np.float32)
  ab = rng.uniform(-60, 60, (2, 3, 4, 2)).astype(np.float32)
  weights = quantize.rebalance_weights(rng.dirichlet(np.ones(313) * 0.3))

  for k in (1, 5):
    bins, bin_weights = quantize.soft_encode_numpy(ab, k)
    loss, grad = jax.value_and_grad(instanceaware.colour_loss)(
        jnp.asarray(logits), jnp.asarray(bins), jnp.asarray(bin_weights),
        jnp.asarray(weights))
    x = torch.tensor(logits, requires_grad=True)
    flat = x.reshape(-1, 313)
    pixel_w = torch.tensor(weights)[torch.tensor(bins[..., 0]).reshape(-1)
                                    .long()]
    if k == 1:
      ce = F.cross_entropy(flat, torch.tensor(bins[..., 0]).reshape(-1).long(),
                           reduction='none')
    else:
      dense = np.zeros((bins.size // k, 313), np.float32)
      np.put_along_axis(dense, bins.reshape(-1, k), bin_weights.reshape(-1, k),
                        -1)
      ce = F.cross_entropy(flat, torch.tensor(dense), reduction='none')
    expected = (ce * pixel_w).mean()
    expected.backward()
    np.testing.assert_allclose(float(loss), expected.item(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), x.grad.numpy(), rtol=1e-4,
                               atol=1e-9)


def test_classification_loss_is_eq_1_2_on_normalised_tags():
  """softmax: torch's cross_entropy with the normalised multi-hot target
  (the one-hot of eq. 1-2 when one class is tagged), untagged images out;
  sigmoid: torch's binary_cross_entropy_with_logits."""
  rng = np.random.default_rng(1)
  logits = rng.normal(0, 2, (4, 5)).astype(np.float32)
  tags = np.array([[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 0],
                   [1, 1, 1, 1, 1]], np.float32)
  loss, count = instanceaware.classification_loss(jnp.asarray(logits),
                                                  jnp.asarray(tags))
  keep = tags.sum(1) > 0
  target = tags[keep] / tags[keep].sum(1, keepdims=True)
  expected = F.cross_entropy(torch.tensor(logits[keep]),
                             torch.tensor(target))
  np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
  assert float(count) == 3
  # One tag: exactly -log softmax of that class (eq. 2).
  one, _ = instanceaware.classification_loss(jnp.asarray(logits[:1]),
                                             jnp.asarray(tags[:1]))
  np.testing.assert_allclose(
      float(one), -float(jax.nn.log_softmax(logits[0])[0]), rtol=1e-5)
  sig, _ = instanceaware.classification_loss(
      jnp.asarray(logits), jnp.asarray(tags), 'sigmoid')
  np.testing.assert_allclose(float(sig), float(
      F.binary_cross_entropy_with_logits(
          torch.tensor(logits), torch.tensor(tags),
          reduction='none').sum(1).mean()), rtol=1e-5)


def test_train_step_gradient_is_the_sum_of_both_losses():
  """One SGD step moves the parameters by -lr * grad(L_color + alpha L_ls),
  with the losses written here from torch-checked pieces; alpha = 0 leaves
  the classifier untouched."""
  config = _config('tiny')
  config.optimizer.name = 'sgd'
  config.optimizer.kwargs = {}
  config.optimizer.learning_rate = 100.0
  config.loss.rebalance = False
  rng = np.random.default_rng(2)
  method = methods.get_method(config)
  batch = _random_batch(method, rng)
  state = method.init_state(jax.random.PRNGKey(0), batch)
  for alpha in (0.5, 0.0):
    config.loss.classification_weight = alpha
    new_state, metrics = jax.jit(method.train_step)(state, batch,
                                                    jax.random.PRNGKey(0))

    def objective(params):
      out, _ = method.network(True).apply(
          {'params': params, 'batch_stats': state.model_state['model']},
          batch['gray'], mutable=['batch_stats'])
      logp = jax.nn.log_softmax(out['logits'], -1)
      colour = -jnp.mean(jnp.take_along_axis(
          logp, batch['ab_bins'], -1)[..., 0])
      tags = batch['labels'] / jnp.sum(batch['labels'], -1, keepdims=True)
      cls = -jnp.mean(jnp.sum(tags * jax.nn.log_softmax(
          out['classification'], -1), -1))
      return colour + alpha * cls

    grads = jax.device_get(jax.jit(jax.grad(objective))(state.params['model']))
    moved = jax.tree.map(lambda a, b: (a - b) / np.float32(100.0),
                         *jax.device_get((state.params['model'],
                                          new_state.params['model'])))
    for (path, g), m in zip(jax.tree_util.tree_leaves_with_path(grads),
                            jax.tree.leaves(moved)):
      np.testing.assert_allclose(np.asarray(m), np.asarray(g), rtol=2e-3,
                                 atol=2e-3 * float(np.max(np.abs(g))) + 1e-9,
                                 err_msg=f'alpha {alpha} {path}')
    if alpha == 0.0:
      assert float(np.max(np.abs(moved['classifier']['kernel']))) == 0.0


def _random_batch(method, rng, batch_size=3):
  spec = method.batch_spec(batch_size)
  size = spec['gray'].shape[1]
  l = rng.uniform(0, 100, (batch_size, size, size, 1)).astype(np.float32)
  ab = rng.uniform(-60, 60, (batch_size, size, size, 2)).astype(np.float32)
  bins, weights = quantize.soft_encode_numpy(ab[:, ::4, ::4],
                                             spec['ab_bins'].shape[-1])
  labels = np.zeros(spec['labels'].shape, np.float32)
  labels[np.arange(batch_size), rng.integers(0, labels.shape[1],
                                             batch_size)] = 1.0
  labels[0, :2] = 1.0
  return {'gray': jnp.asarray(l / 50 - 1), 'l': jnp.asarray(l),
          'ab': jnp.asarray(ab / 110), 'ab_bins': jnp.asarray(bins),
          'ab_weights': jnp.asarray(weights), 'labels': jnp.asarray(labels)}


def test_decodings():
  """Annealed mean: T = 1 is the mean, small T the mode, 0.38 between."""
  rng = np.random.default_rng(3)
  logits = jnp.asarray(rng.normal(0, 3, (5, 313)).astype(np.float32))
  centres = quantize.ab_gamut_bins()
  mean = instanceaware.decode_ab(logits, 'mean')
  np.testing.assert_allclose(mean, jax.nn.softmax(logits) @ centres,
                             rtol=1e-4, atol=1e-3)
  mode = instanceaware.decode_ab(logits, 'mode')
  np.testing.assert_array_equal(mode, centres[np.argmax(logits, -1)])
  cold = instanceaware.decode_ab(logits, 'annealed_mean', 0.01)
  np.testing.assert_allclose(cold, mode, atol=1e-2)
  with pytest.raises(ValueError, match='decode must be one of'):
    instanceaware.decode_ab(logits, 'median')


def _scene_batch(method, config, batch_size=4, seed=0):
  """Blocky scenes of two classes each: each class has an L and an ab;
  tags = the object classes present."""
  rng = np.random.default_rng(seed)
  size, classes = config.data.image_size, config.data.num_classes
  pairs = np.stack([rng.choice(classes, 2, replace=False)
                    for _ in range(batch_size)])
  blocks = pairs[np.arange(batch_size)[:, None, None],
                 rng.integers(0, 2, (batch_size, 4, 4))]
  labels = np.kron(blocks, np.ones((size // 4, size // 4), np.int64))
  lightness = rng.uniform(20, 90, classes)[labels][..., None]
  ab = rng.uniform(-50, 50, (classes, 2))[labels]
  bins, weights = quantize.soft_encode_numpy(ab[:, ::4, ::4],
                                             config.data.soft_encode_k)
  tags = np.zeros((batch_size, method.num_classes), np.float32)
  for i in range(batch_size):
    present = np.unique(labels[i]) - config.data.first_class
    tags[i, present[present >= 0]] = 1.0
  return {'gray': jnp.asarray(lightness / 50 - 1, jnp.float32),
          'l': jnp.asarray(lightness, jnp.float32),
          'ab': jnp.asarray(ab / 110, jnp.float32),
          'ab_bins': jnp.asarray(bins), 'ab_weights': jnp.asarray(weights),
          'labels': jnp.asarray(tags)}


def test_overfits_a_fixed_batch():
  """60 Adam steps on one batch of scenes (tiny twin, uniform weights): the
  colour cross-entropy falls by a third (measured 5.75 -> 2.45) and the
  tag cross-entropy comes within 30% of its floor, the entropy of the
  normalised tags (measured 1.58 -> 0.23)."""
  config = _config('tiny')
  config.loss.rebalance = False
  method = methods.get_method(config)
  batch = _scene_batch(method, config)
  _, history = fit_fixed_batch(method, batch, 60)
  first, last = history[0], history[-1]
  assert last['loss_color'] < 0.66 * first['loss_color'], (first, last)
  tags = np.asarray(batch['labels'])
  tags = tags[tags.sum(1) > 0]
  target = tags / tags.sum(1, keepdims=True)
  floor = -np.mean(np.sum(np.where(target > 0, target * np.log(
      np.maximum(target, 1e-12)), 0.0), 1))
  assert (last['loss_classification'] - floor
          < 0.3 * (first['loss_classification'] - floor)), (first, last, floor)


def test_prior_is_computed_once_and_cached(shapes_data_dir, tmp_path):
  """The rebalancing weights come from the train split's streamed prior,
  written once to <workdir>/ab_prior.npy (or loss.prior_file) and read back
  by a resumed run (same weights)."""
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config(shapes_data_dir, 'instanceaware')
  first = methods.get_method(config)
  first.prepare_training(str(tmp_path))
  weights = first.rebalance_weights()
  prior = np.load(tmp_path / 'ab_prior.npy')
  np.testing.assert_allclose(prior.sum(), 1.0, rtol=1e-6)
  np.testing.assert_allclose(weights, quantize.rebalance_weights(prior))
  # E_P~[w] = 1 (Zhang et al. eq. 4) and rare bins weigh more.
  smooth = quantize.smooth_prior(prior)
  np.testing.assert_allclose(np.sum(smooth * weights), 1.0, rtol=1e-5)
  assert weights[np.argmax(smooth)] == weights.min()
  config.loss.prior_file = str(tmp_path / 'elsewhere')     # '.npy' added
  second = methods.get_method(config)
  second.prepare_training(str(tmp_path))
  np.testing.assert_array_equal(second.rebalance_weights(), weights)
  os.replace(tmp_path / 'elsewhere.npy', tmp_path / 'moved.npy')
  np.save(tmp_path / 'elsewhere.npy', np.eye(313)[7])    # read, not redone
  third = methods.get_method(config)
  third.prepare_training(str(tmp_path))
  np.testing.assert_array_equal(third.rebalance_weights(),
                                quantize.rebalance_weights(np.eye(313)[7]))


@pytest.fixture(scope='module')
def eccv16_file(tmp_path_factory):
  """A random-weight ECCV16 release-format file (model_out included)."""
  path = str(tmp_path_factory.mktemp('eccv16') / 'eccv16.pth')
  torch.save(_reference().state_dict(), path)
  return path


# torchvision's VGG16 layout with small widths, its last conv 512 wide like
# conv5's.
_VGG_WIDTHS = [4, 4, 'M', 8, 8, 'M', 8, 8, 8, 'M', 16, 16, 16, 'M',
               16, 16, 512, 'M']
_VGG_FC = (24, 12, 10)


def _torch_vgg16(seed=0):
  torch.manual_seed(seed)
  model = test_pretrained.TorchVGG(False, _VGG_FC[2], _VGG_WIDTHS,
                                   _VGG_FC[:2])
  with torch.no_grad():
    for layer in model.classifier:
      if isinstance(layer, torch.nn.Linear):
        layer.bias.uniform_(-0.1, 0.1)
  return model.eval()


def test_init_from_eccv16_and_vgg16_fills_trunk_and_branch(eccv16_file,
                                                           tmp_path, capsys):
  """Paper section 3.1: conv1-conv9 from Zhang's weights, the branch's
  fc1-fc3 from an ImageNet VGG16's fc6-fc8 (two init_from entries into one
  network); the classifier and fusion keep their init; the mapping is
  printed. The branch then computes VGG16's head on conv5's features
  (pool5, torchvision's adaptive pool, flatten order, fc6-fc8)."""
  config = _config('voc', branch_reduce='vgg16', fc_features=_VGG_FC)
  config.data.image_size = 64
  method = methods.get_method(config)
  batch = {k: jnp.zeros(v.shape, v.dtype)
           for k, v in method.batch_spec(1).items()}
  state = method.init_state(jax.random.PRNGKey(0), batch)
  vgg = _torch_vgg16()
  vgg_file = str(tmp_path / 'vgg16.pth')
  torch.save(vgg.state_dict(), vgg_file)
  config.init_from.model.pretrained = 'eccv16:' + eccv16_file
  config.init_from.branch.pretrained = 'vgg16:' + vgg_file
  loaded = workdir_lib.apply_init_from(state, config.init_from)
  printed = capsys.readouterr().out
  # 22 convs + 1 transposed conv (kernel, bias) + 7 BatchNorms (scale,
  # bias); then the 7 BatchNorms' statistics; then fc1-fc3.
  assert 'copied 60 arrays' in printed, printed
  assert 'copied 14 arrays' in printed, printed
  assert 'copied 6 arrays (fc1, fc2, fc3)' in printed, printed
  from colorjax import pretrained  # pylint: disable=g-import-not-at-top
  _, reference = pretrained.load('eccv16', eccv16_file)
  reference = eccv16.trunk_variables(reference)
  params = loaded.params['model']
  for name in ('model1_0', 'model5_4', 'model8_0', 'model8_6'):
    for leaf in ('kernel', 'bias'):
      np.testing.assert_array_equal(params[name][leaf],
                                    reference['params'][name][leaf])
  np.testing.assert_array_equal(loaded.model_state['model']['model7_6']['var'],
                                reference['batch_stats']['model7_6']['var'])
  for name in ('fusion', 'classifier'):
    np.testing.assert_array_equal(params[name]['kernel'],
                                  state.params['model'][name]['kernel'])
  l = jnp.asarray(np.random.default_rng(5).uniform(0, 100, (2, 64, 64, 1)),
                  jnp.float32)
  variables = {'params': params, 'batch_stats': loaded.model_state['model']}
  outputs, captured = method.network(False).apply(
      variables, l / 50.0 - 1.0, capture_intermediates=True)
  conv5 = captured['intermediates']['model5_6']['__call__'][0]
  fc3 = captured['intermediates']['fc3']['__call__'][0]
  with torch.no_grad():
    h = F.max_pool2d(torch.from_numpy(np.asarray(conv5).transpose(
        0, 3, 1, 2).copy()), 2)
    want = vgg.classifier(torch.flatten(vgg.avgpool(h), 1)).numpy()
  np.testing.assert_allclose(fc3, want, rtol=1e-4,
                             atol=1e-4 * np.abs(want).max())
  # The identity fusion: at step 0 the colours are exactly Zhang's.
  module, variables = pretrained.load('eccv16', eccv16_file)
  ours = outputs['logits']
  np.testing.assert_allclose(ours, module.apply(variables, l), rtol=1e-4,
                             atol=1e-4 * float(jnp.max(jnp.abs(ours))))


def test_colorize_with_published_weights_equals_the_releases_decoding(
    tmp_path):
  """colorize --pretrained=eccv16:PATH gives the ab of the release's own
  PyTorch forward (`model_out(softmax(model8))`, x4 bilinear, x110) on the
  same resized L, and writes it onto the photo's L. The file's logits are
  spread (model8's last conv x5) so that a different decoding -- the
  annealed mean at T = 0.38, i.e. a second annealing if the file folds
  Caffe's 2.606 -- is told apart by several ab units."""
  net = _reference()
  with torch.no_grad():
    net.model8[-1].weight.mul_(5.0)
    net.model8[-1].bias.mul_(5.0)
  path = str(tmp_path / 'eccv16.pth')
  torch.save(net.state_dict(), path)
  rng = np.random.default_rng(4)
  photo = rng.integers(0, 256, (45, 70, 3), np.uint8)
  Image.fromarray(photo).save(tmp_path / 'p.png')
  # The reference: the release's forward on the same L (the photo at its
  # aspect, short side 256, padded to a multiple of 8: 256 x 400).
  colorizer = colorize.Colorizer(None, pretrained='eccv16:' + path)
  example = colorizer.model_input(colorizer.photo(photo))
  assert example['gray'].shape == (256, 400, 1)
  l = (example['gray'] + 1.0) * 50.0
  with torch.no_grad():
    expected = net(torch.tensor(l[None, ..., 0][:, None])).numpy()
  expected = expected.transpose(0, 2, 3, 1)[0]          # [256, 400, 2]
  ab, _ = colorizer.predict([colorizer.photo(photo)])
  assert ab.shape == (1, 1, 256, 400, 2)
  error = np.abs(ab[0, 0] - expected)
  assert np.mean(error) < 0.05 and np.max(error) < 0.5, (
      np.mean(error), np.max(error))
  annealed = colorize.Colorizer(None, pretrained='eccv16:' + path,
                                decode='annealed_mean', temperature=0.38)
  other, _ = annealed.predict([annealed.photo(photo)])
  assert np.mean(np.abs(other[0, 0] - expected)) > 3.0
  # What colorize writes: that ab on the photo's own L, at its size.
  written, failures = colorize.colorize(
      None, [str(tmp_path / 'p.png')], str(tmp_path / 'out'), batch_size=1,
      pretrained='eccv16:' + path)
  assert not failures and len(written) == 1
  ours = np.asarray(Image.open(written[0]), np.float32)
  assert ours.shape == photo.shape
  lightness = colorizer.load(str(tmp_path / 'p.png')).lightness
  reference = colorize.recombine(
      lightness, expected, placement=colorizer.photo(photo).placement
  ).astype(np.float32)
  assert np.mean(np.abs(ours - reference)) < 0.05, np.mean(
      np.abs(ours - reference))
  assert np.max(np.abs(ours - reference)) <= 1.0


def test_tiny_twin_trains_evaluates_and_colorize_equals_predict(
    shapes_data_dir, tmp_path):
  """The tiny twin end to end through the shared trainer (evaluation of the
  colour and tag metrics included); colorize's PNG carries predict's ab."""
  import warnings  # pylint: disable=g-import-not-at-top
  from skimage import color as skcolor  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from colorjax import train  # pylint: disable=g-import-not-at-top
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  config = tiny_config(shapes_data_dir, 'instanceaware',
                       num_train_steps=20, eval_every_steps=20)
  train.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    text = f.read()
  assert 'val_classification/top1' in text and 'val/psnr' in text
  config = workdir_lib.load_config(workdir)
  scene = tfds.data_source('semantic_shapes/test', split='validation',
                           data_dir=shapes_data_dir)[0]['image']
  method, state = workdir_lib.restore_for_inference(workdir, config)
  example = preprocess.apply(inference.inference_ops(config),
                                     {'image': scene})
  ab = np.asarray(jax.jit(method.predict)(
      state, {'gray': example['gray'][None]})['ab'][0]) * 110.0
  assert np.abs(ab).mean() > 2.0
  Image.fromarray(scene).save(tmp_path / 'scene.png')
  written, _ = colorize.colorize(workdir, [str(tmp_path / 'scene.png')],
                                 str(tmp_path / 'out'))
  result = np.asarray(Image.open(written[0]), np.float64) / 255.0
  lab_true = skcolor.rgb2lab(scene / 255.0)
  lab_pred = np.concatenate([lab_true[..., :1], ab], -1)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    clipped = skcolor.rgb2lab(skcolor.lab2rgb(lab_pred))
  in_gamut = np.abs(clipped - lab_pred).max(-1) < 1e-3
  assert in_gamut.mean() > 0.5
  np.testing.assert_allclose(skcolor.rgb2lab(result)[..., 1:][in_gamut],
                             ab[in_gamut], atol=1.0)


def test_paper_preset_needs_zhangs_and_vggs_weights_or_says_none(
    eccv16_file, tmp_path):
  """Section 3.1: conv1-conv9 start from Zhang's ECCV16 network, the
  branch from an ImageNet VGG16. A fresh paper-preset run without them
  stops before its first step with one message naming what is missing;
  `pretrained=none` trains that part from random on purpose and the
  workdir records it; a weights file is recorded with its SHA-256. The CPU
  twins (shrunk, no file fits) need nothing."""
  from colorjax import errors  # pylint: disable=g-import-not-at-top
  from colorjax import pretrained  # pylint: disable=g-import-not-at-top
  from colorjax import train  # pylint: disable=g-import-not-at-top
  config = _config('voc')
  state = object()              # nothing is loaded before the check
  with pytest.raises(errors.MissingFileError) as raised:
    train.start_from_weights(methods.get_method(config), config, state,
                             str(tmp_path / 'stopped'))
  message = str(raised.value)
  assert 'conv1-conv9 from Zhang' in message
  assert '--config.init_from.model.pretrained=eccv16:PATH' in message
  assert 'colorization_release_v2-9b330a0b.pth' in message
  assert '--config.init_from.model.pretrained=none' in message
  assert '--config.init_from.branch.pretrained=vgg16:PATH' in message
  assert 'download.pytorch.org/models/vgg16-397923af.pth' in message
  assert '--config.init_from.branch.pretrained=none' in message
  assert not os.path.exists(tmp_path / 'stopped' / 'pretrained.json')

  def record(config, name):
    workdir = tmp_path / name
    os.makedirs(workdir)
    workdir_lib.save_pretrained_record(
        str(workdir), methods.get_method(config).pretrained_record())
    return (json.loads((workdir / 'pretrained.json').read_text()),
            workdir_lib.random_init_parts(str(workdir)))

  config.init_from.model.pretrained = 'none'
  with pytest.raises(errors.MissingFileError) as raised:   # the branch's
    methods.get_method(config).load_pretrained(state)
  assert 'Zhang' not in str(raised.value)
  assert 'branch.pretrained=vgg16:PATH' in str(raised.value)
  config.init_from.branch.pretrained = 'none'
  method = methods.get_method(config)
  assert method.load_pretrained(state) is state
  # apply_init_from copies nothing for 'none' (a tiny network's state).
  tiny = _config('tiny')
  tiny_method = methods.get_method(tiny)
  fresh = tiny_method.init_state(jax.random.PRNGKey(0), {
      k: jnp.zeros(v.shape, v.dtype)
      for k, v in tiny_method.batch_spec(1).items()})
  tiny.init_from.model.pretrained = 'none'
  tiny.init_from.branch.pretrained = 'none'
  kept = workdir_lib.apply_init_from(fresh, tiny.init_from)
  for a, b in zip(jax.tree.leaves(kept.params), jax.tree.leaves(fresh.params)):
    np.testing.assert_array_equal(a, b)
  entries, random_parts = record(config, 'scratch')
  for part, network in (('model/conv1-conv9', 'eccv16'),
                        ('model/fc1-fc3', 'vgg16')):
    assert entries[part]['network'] == network
    assert entries[part]['pretrained'] is False
    assert entries[part]['expected'] is True
  assert random_parts == ['model/conv1-conv9', 'model/fc1-fc3']
  config.init_from.model.pretrained = 'eccv16:' + eccv16_file
  entries, random_parts = record(config, 'zhang')
  entry = entries['model/conv1-conv9']
  assert entry['pretrained'] is True and random_parts == ['model/fc1-fc3']
  assert entry['path'] == eccv16_file
  assert entry['sha256'] == pretrained.file_sha256(eccv16_file)
  assert entry['source'] == 'config.init_from.model'
  config.init_from.branch.pretrained = 'vgg16:' + eccv16_file   # any file
  entries, random_parts = record(config, 'both')
  assert random_parts == []
  assert entries['model/fc1-fc3']['source'] == 'config.init_from.branch'
  twin = _config('tiny')
  assert methods.get_method(twin).load_pretrained(state) is state
