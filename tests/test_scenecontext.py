"""SceneContext (paper 001): eq. 16-20 against an independent PyTorch
formulation (values and gradients), decodings, a fixed-batch overfit, each
variant's tiny twin end to end, colorize == predict, and the vgg16_bn encoder
initialisation against torchvision's layer layout."""

import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
import torch
import torch.nn.functional as F

from colorjax.color import quantize
from colorjax import colorize
from colorjax.data import inference
from colorjax.data import preprocess
from colorjax import methods
from colorjax.models import scenecontext as models
from colorjax import workdir as workdir_lib
import scenecontext as scenecontext_config

from conftest import apply_overrides
from conftest import fit_fixed_batch
from conftest import tiny_config


def _config(arg='tiny', **overrides):
  return apply_overrides(scenecontext_config.get_config(arg), overrides)


def _random_outputs_and_batch(rng, n=2, size=8, classes=7, scenes=3, k=5):
  outputs = {
      'ab_logits': rng.normal(size=(n, size, size, 313)).astype(np.float32),
      'ab': np.tanh(rng.normal(size=(n, size, size, 2))).astype(np.float32),
      'segmentation': rng.normal(size=(n, size, size, classes)).astype(
          np.float32),
      'scene': rng.normal(size=(n, scenes)).astype(np.float32)}
  ab = rng.uniform(-60, 60, (n, size, size, 2))
  bins, weights = quantize.soft_encode_numpy(ab, k, 5.0)
  soft = np.zeros((n, scenes), np.float32)
  soft[:, :2] = rng.dirichlet([1.0, 1.0], n)
  batch = {'ab': (ab / 110.0).astype(np.float32), 'ab_bins': bins,
           'ab_weights': weights,
           'segmentation': rng.integers(0, classes, (n, size, size, 1)
                                        ).astype(np.uint8),
           'scene': soft * 0.9}     # unnormalised: eq. 20 renormalises
  return outputs, batch


def _torch_joint_loss(outputs, batch, rebalance, weights, ignore=None):
  """Eq. 16-20 written out independently in PyTorch (dense targets)."""
  logits = outputs['ab_logits']
  n, h, w, q = logits.shape
  dense = torch.zeros(n, h, w, q, dtype=torch.float64)
  dense.scatter_add_(-1, torch.from_numpy(batch['ab_bins']).long(),
                     torch.from_numpy(batch['ab_weights']).double())
  nearest = torch.from_numpy(batch['ab_bins'][..., 0]).long()
  pixel_w = torch.from_numpy(rebalance).double()[nearest]
  soft = torch.mean(pixel_w * -(dense * F.log_softmax(logits, -1)).sum(-1))
  reg = ((outputs['ab'] - torch.from_numpy(batch['ab']).double()) ** 2
         ).sum(-1).mean()
  labels = torch.from_numpy(batch['segmentation'][..., 0]).long()
  probs = F.softmax(outputs['segmentation'], -1)
  onehot = F.one_hot(labels, probs.shape[-1]).double()
  if ignore is not None:
    valid = (labels != ignore).double()[..., None]
    probs, onehot = probs * valid, onehot * valid
  inter = (onehot * probs).sum((1, 2))
  denom = (onehot ** 2).sum((1, 2)) + (probs ** 2).sum((1, 2))
  seg = 1 - ((2 * inter + 1) / (denom + 1)).mean()
  target = torch.from_numpy(batch['scene']).double()
  target = target / target.sum(-1, keepdim=True)
  clas = -(target * F.log_softmax(outputs['scene'], -1)).sum(-1).mean()
  return (weights['soft'] * soft + weights['reg'] * reg
          + weights['clas'] * clas + weights['seg'] * seg)


def test_joint_loss_and_its_gradient_equal_pytorch():
  """Eq. 16 with distinct weights: value and gradient with respect to every
  head's output equal an independent dense PyTorch formulation."""
  weights = dict(soft=0.7, reg=3.0, clas=1.3, seg=2.1)
  config = _config(**{'loss.weights': weights})
  method = methods.get_method(config)
  rng = np.random.default_rng(0)
  outputs, batch = _random_outputs_and_batch(rng)
  rebalance = quantize.rebalance_weights(rng.dirichlet(np.ones(313) * 0.3))

  def ours(out):
    return method.total_loss(method.losses(
        out, jax.tree.map(jnp.asarray, batch), jnp.asarray(rebalance)))

  value, grads = jax.value_and_grad(ours)(jax.tree.map(jnp.asarray, outputs))
  leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for k, v in outputs.items()}
  want = _torch_joint_loss(leaves, batch, rebalance, weights)
  want.backward()
  np.testing.assert_allclose(float(value), want.item(), rtol=1e-5)
  for key, leaf in leaves.items():
    np.testing.assert_allclose(np.asarray(grads[key]), leaf.grad.numpy(),
                               rtol=1e-4, atol=1e-9, err_msg=key)


def test_heads_and_terms_follow_the_variant():
  rng = np.random.default_rng(1)
  outputs, batch = _random_outputs_and_batch(rng)
  for variant, terms in (('regsoft', {'soft', 'reg'}),
                         ('clasregsoft', {'soft', 'reg', 'clas'}),
                         ('segclasregsoft', {'soft', 'reg', 'clas', 'seg'})):
    method = methods.get_method(_config(**{'model.variant': variant}))
    assert set(method.losses(outputs, batch, None)) == terms
    spec = method.batch_spec(2)
    assert ('scene' in spec) == ('clas' in terms)
    assert ('segmentation' in spec) == ('seg' in terms)
  with pytest.raises(ValueError, match='model.variant'):
    methods.get_method(_config(**{'model.variant': 'segreg'}))
  with pytest.raises(ValueError, match='decoding.decode'):
    methods.get_method(_config(**{'decoding.decode': 'median'}))


def _state_and_gray(config, seed=0):
  method = methods.get_method(config)
  batch = {k: jnp.zeros(v.shape, v.dtype)
           for k, v in method.batch_spec(2).items()}
  state = method.init_state(jax.random.PRNGKey(seed), batch)
  gray = jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (2, 32, 32, 1)),
                     jnp.float32)
  return method, state, gray


def test_decodings_select_the_head():
  """Section V-C: 'regression' returns H_reg's ab; the others decode H_soft
  (eq. 13-15); annealed_mean is always returned beside it."""
  config = _config()
  method, state, gray = _state_and_gray(config)
  raw = method.outputs(state, gray)
  got = method.predict(state, {'gray': gray})
  np.testing.assert_array_equal(got['ab'], raw['ab'])
  np.testing.assert_array_equal(got['ab_regression'], raw['ab'])
  annealed = quantize.annealed_mean_from_logits(raw['ab_logits'], 0.38) / 110
  np.testing.assert_allclose(got['ab_annealed_mean'], annealed, atol=1e-6)
  assert got['scene'].shape == (2, 3) and got['segmentation'].shape[-1] == 7
  for decode in ('annealed_mean', 'mode', 'mean'):
    config.decoding.decode = decode
    got = method.predict(state, {'gray': gray})['ab']
    want = quantize.decode_ab_logits(raw['ab_logits'], decode, 0.38) / 110
    np.testing.assert_allclose(got, want, atol=1e-6, err_msg=decode)


def _scene_batch(method, config, shapes_data_dir):
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top
  spec = pipeline.LoaderSpec.from_config(
      config.data, 'train', train=False, dataset='semantic_shapes/test',
      data_dir=shapes_data_dir, global_batch_size=8,
      preprocess=config.data.preprocess_train.replace(
          'flip|random_affine(rotate=15.0, scale=0.2, translate=0.1)|'
          'brightness_contrast(brightness=0.1, contrast=0.2)', 'flip(p=0.0)'),
      keys=tuple(method.batch_spec(8)))
  batch = next(iter(pipeline.create_loader(spec)))
  return {k: jnp.asarray(v) for k, v in batch.items()}


def test_overfits_a_fixed_batch(shapes_data_dir):
  """80 Adam steps (3e-3) on one batch of 8 scenes (tiny twin, all four
  heads, no rebalancing): every term falls. Measured: soft 5.86 -> 3.55,
  reg 0.735 -> 0.063, seg 0.83 -> 0.48, clas 1.14 -> 0.007."""
  config = _config()
  config.loss.rebalance = False
  config.optimizer.schedule = dict(type='constant')
  config.optimizer.learning_rate = 3e-3
  method = methods.get_method(config)
  batch = _scene_batch(method, config, shapes_data_dir)
  assert set(np.unique(np.argmax(np.asarray(batch['scene']), -1))) <= {0, 1, 2}
  _, history = fit_fixed_batch(method, batch, 80)
  first, last = history[0], history[-1]
  for term, ratio in (('soft', 0.7), ('reg', 0.2), ('seg', 0.7),
                      ('clas', 0.05)):
    assert last[f'loss_{term}'] < ratio * first[f'loss_{term}'], (
        term, first, last)
  assert last['train_scene_top1'] == 1.0


@pytest.mark.parametrize('variant', sorted(models.VARIANTS))
def test_tiny_twin_of_each_variant_trains_and_evaluates(
    variant, shapes_data_dir, tmp_path):
  from colorjax import train  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / variant)
  config = tiny_config(shapes_data_dir, 'scenecontext',
                       **{'model.variant': variant})
  train.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    text = f.read()
  assert 'val/psnr' in text and 'val_annealed/psnr' in text
  assert ('val_scene/top1' in text) == (variant != 'regsoft')
  assert ('val_segmentation/miou' in text) == (variant == 'segclasregsoft')
  assert ('train/loss_seg' in text) == (variant == 'segclasregsoft')
  assert ('train/loss_clas' in text) == (variant != 'regsoft')
  assert os.path.exists(os.path.join(workdir, 'ab_prior.npy'))


@pytest.mark.parametrize('decode', ['regression', 'annealed_mean'])
def test_colorize_equals_predict(decode, shapes_data_dir, tmp_path_factory,
                                 tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  workdir = _trained_workdir(shapes_data_dir, tmp_path_factory)
  config = workdir_lib.load_config(workdir)
  config.decoding.decode = decode
  scene = tfds.data_source('semantic_shapes/test', split='validation',
                           data_dir=shapes_data_dir)[1]['image']
  method, state = workdir_lib.restore_for_inference(workdir, config)
  example = preprocess.apply(inference.inference_ops(config),
                                     {'image': scene})
  ab = np.asarray(jax.jit(method.predict)(
      state, {'gray': example['gray'][None]})['ab'][0]) * 110.0
  Image.fromarray(scene).save(tmp_path / 'scene.png')
  written, _ = colorize.colorize(workdir, [str(tmp_path / 'scene.png')],
                                 str(tmp_path / 'out'), decode=decode)
  from skimage import color as skcolor  # pylint: disable=g-import-not-at-top
  result = skcolor.rgb2lab(np.asarray(Image.open(written[0])) / 255.0)
  lab = np.concatenate([skcolor.rgb2lab(scene / 255.0)[..., :1], ab], -1)
  roundtrip = skcolor.rgb2lab(np.clip(skcolor.lab2rgb(lab), 0, 1))
  in_gamut = np.abs(roundtrip - lab).max(-1) < 1e-3
  assert in_gamut.mean() > 0.5
  np.testing.assert_allclose(result[..., 1:][in_gamut], ab[in_gamut],
                             atol=1.0)


_WORKDIR = {}


def _trained_workdir(shapes_data_dir, tmp_path_factory):
  if 'path' not in _WORKDIR:
    from colorjax import train  # pylint: disable=g-import-not-at-top
    workdir = str(tmp_path_factory.mktemp('scenecontext'))
    train.train_and_evaluate(tiny_config(shapes_data_dir, 'scenecontext',
                                         num_train_steps=12), workdir)
    _WORKDIR['path'] = workdir
  return _WORKDIR['path']


def test_vgg16_bn_initialises_the_encoder(tmp_path, capsys):
  """init_from pretrained=vgg16_bn:PATH copies blocks 1-4's first two
  convolutions (+ BatchNorm) of a torchvision-layout file; the first
  encoder block then computes torch's features[0:6] at the even pixels
  (its second convolution is the strided one)."""
  from test_pretrained import TorchVGG  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  # torchvision's layout at the tiny twin's encoder widths (the registry
  # reads a file's widths; the full-size network is test_pretrained's).
  model = TorchVGG(batch_norm=True, cfg=[
      8, 8, 'M', 8, 8, 'M', 16, 16, 16, 'M', 16, 16, 16, 'M', 16, 16, 16,
      'M'], fc=(16, 16)).eval()
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.running_mean.uniform_(-0.2, 0.2)
        module.running_var.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.2, 0.2)
  path = str(tmp_path / 'vgg16_bn.pth')
  torch.save(model.state_dict(), path)
  config = _config('tiny')
  config.data.image_size = 32
  method = methods.get_method(config)
  batch = {'gray': jnp.zeros((1, 32, 32, 1), jnp.float32)}
  state = method.init_state(jax.random.PRNGKey(0), batch)
  config.init_from.model.pretrained = 'vgg16_bn:' + path
  loaded = workdir_lib.apply_init_from(state, config.init_from)
  printed = capsys.readouterr().out
  # 8 convs (kernel, bias) + 8 BatchNorms (scale, bias); their statistics.
  assert 'copied 32 arrays' in printed and 'copied 16 arrays' in printed
  kept = printed.split('kept the random init of')[1]
  assert 'mid_conv0' in kept and 'dec1_conv0' in kept
  torch_weight = model.features[24].weight.detach().numpy()
  np.testing.assert_array_equal(
      loaded.params['model']['enc4_conv0']['kernel'],
      torch_weight.transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(
      loaded.model_state['model']['enc3_bn1']['var'],
      model.features[18].running_var.numpy())
  gray = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 1)).astype(
      np.float32)
  _, inter = method.network(False).apply(
      {'params': loaded.params['model'],
       'batch_stats': loaded.model_state['model']}, jnp.asarray(gray),
      capture_intermediates=lambda m, _: m.name == 'enc1_bn1',
      mutable=['intermediates'])
  ours = np.maximum(np.asarray(inter['intermediates']['enc1_bn1']
                               ['__call__'][0]), 0)
  lightness = (gray + 1) / 2
  rgb = (np.repeat(lightness, 3, -1) - [0.485, 0.456, 0.406]) / [
      0.229, 0.224, 0.225]
  with torch.no_grad():
    want = model.features[:6](torch.from_numpy(
        rgb.transpose(0, 3, 1, 2).astype(np.float32))).numpy()
  np.testing.assert_allclose(ours, want.transpose(0, 2, 3, 1)[:, ::2, ::2],
                             rtol=1e-4, atol=1e-4)
