"""The PyTorch peer of the SceneContext train benchmark
(benchmarks/torch_scenecontext.py) is the JAX method: equal parameter
counts at every scale of configs/scenecontext.py and for every variant,
equal outputs of all four heads once the JAX weights are copied in
(peer.fill: HWIO -> OIHW, Dense [in, out] -> Linear [out, in]), and the
same train step: equal loss terms (eq. 17 rebalanced by a non-uniform
prior file, eq. 18, eq. 19 with and without an ignore label, per image
and over the batch, eq. 20 with an unlabelled image) under distinct eq. 16
weights, gradient norm, Adam update and next loss. No dropout anywhere, so
nothing random is involved. The CLI runs in float32 and bfloat16."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import scenecontext as scenecontext_config    # configs/ (conftest's path)
import torch_scenecontext as peer              # benchmarks/ (conftest's path)

from colorjax import methods
from colorjax.color import quantize
from colorjax.data import prior as prior_lib
from colorjax.methods import base

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(REPO, 'benchmarks', 'torch_scenecontext.py')

# `python -m colorjax.benchmark model --config=configs/scenecontext.py:X`
# (tests/test_scenecontext_model.py counts the layers by hand).
EXPECTED_COUNTS = {
    ('tiny', 'segclasregsoft'): 30_461,
    ('tiny', 'clasregsoft'): 30_398,
    ('tiny', 'regsoft'): 30_075,
    ('demo', 'segclasregsoft'): 936_917,
    ('coco', 'segclasregsoft'): 35_271_326,
    ('coco', 'clasregsoft'): 35_259_496,
    ('coco', 'regsoft'): 34_547_451,
}


def _config(scale='tiny', **model):
  config = scenecontext_config.get_config(scale)
  config.model.update(model)
  return config


def _as_dict(config):
  return json.loads(config.to_json())


@pytest.mark.parametrize('scale,variant', sorted(EXPECTED_COUNTS))
def test_parameter_counts_equal(scale, variant):
  config = _config(scale, variant=variant)
  method = methods.get_method(config)
  jax_count = method.describe(method.batch_spec(1))['model']  # eval_shape
  model = peer.build(_as_dict(config), device='meta')         # shapes only
  assert sum(p.numel() for p in model.parameters()) == jax_count
  assert jax_count == EXPECTED_COUNTS[(scale, variant)]


def _random_variables(module, seed, gray):
  """Random values shaped by jax.eval_shape: kernels ~ sqrt(2 / fan-in),
  non-trivial BN statistics and affines, biases (init has zeros and ones
  there), so that a wrong mapping of any tensor shows."""
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), gray)
  rng = np.random.default_rng(seed)

  def draw(path, x):
    name = path[-1].key
    if name == 'kernel':
      value = rng.normal(size=x.shape) * np.sqrt(2 / np.prod(x.shape[:-1]))
    elif name in ('scale', 'var'):
      value = rng.uniform(0.5, 1.5, x.shape)
    else:
      assert name in ('bias', 'mean'), path
      value = rng.uniform(-0.2, 0.2, x.shape)
    return jnp.asarray(value, x.dtype)
  return jax.tree_util.tree_map_with_path(draw, shapes)


def _filled(config, variables):
  model = peer.build(_as_dict(config))
  written = peer.fill(model, variables['params'], variables['batch_stats'])
  expected = {k for k in model.state_dict()
              if not k.endswith('num_batches_tracked')}
  assert written == expected, sorted(written ^ expected)
  return model


def _nchw(x):
  x = np.asarray(x)
  return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def _nhwc(t):
  t = t.detach().numpy()
  return np.transpose(t, (0, 2, 3, 1)) if t.ndim == 4 else t


def _assert_close(actual, expected, name, rtol=1e-4):
  """Within rtol of the output's scale (max |expected|), elementwise."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
  scale = float(np.max(np.abs(expected)))
  assert np.all(np.isfinite(expected)) and scale > 0, name
  error = float(np.max(np.abs(actual - expected)))
  assert error <= rtol * scale, (
      f'{name}: max error {error:.3g}, output scale {scale:.3g}')


@pytest.mark.parametrize('variant,upsample', [('segclasregsoft', 'nearest'),
                                              ('clasregsoft', 'bilinear')])
def test_transferred_weights_give_equal_outputs(variant, upsample):
  """Eval mode (BN on the running statistics), tiny scale, every head."""
  config = _config(variant=variant, upsample=upsample)
  network = methods.get_method(config).network(False)
  size = config.data.image_size
  gray = np.random.default_rng(0).uniform(
      -1, 1, (2, size, size, 1)).astype(np.float32)
  variables = _random_variables(network, 1, gray)
  out = jax.jit(network.apply)(variables, gray)
  model = _filled(config, variables).eval()
  with torch.no_grad():
    got = model(_nchw(gray))
  assert set(got) == set(out)
  ab = np.asarray(out['ab'])        # the outputs carry signal
  assert np.std(ab) > 0.05 and np.mean(np.abs(ab) > 0.99) < 0.05
  for key, value in out.items():
    assert np.std(np.asarray(value)) > 0.05, key
    _assert_close(_nhwc(got[key]), value, key)


def _batch(method, config, seed, n=4):
  """A training batch as the pipeline gives it: ab and its k = 5 soft
  encoding, labels with some ignored / out-of-range pixels, top-5 scene
  soft labels (unnormalised: eq. 20 renormalises) and one image without."""
  rng = np.random.default_rng(seed)
  spec = method.batch_spec(n)
  size = spec['gray'].shape[1]
  ab = rng.uniform(-70, 70, (n, size, size, 2)).astype(np.float32)
  bins, weights = quantize.soft_encode_numpy(ab, config.data.soft_encode_k)
  labels = rng.integers(0, config.data.num_classes, (n, size, size, 1))
  labels[:, :4] = 255                          # out of range: left out
  scenes = config.data.num_scenes
  scene = rng.uniform(size=(n, scenes)).astype(np.float32)
  scene[:, rng.permutation(scenes)[:max(0, scenes - 5)]] = 0.0
  scene[0] = 0.0
  l = rng.uniform(0, 100, (n, size, size, 1)).astype(np.float32)
  batch = {'gray': l / 50 - 1, 'l': l, 'ab': ab / 110,
           'ab_bins': bins.astype(np.int32), 'ab_weights': weights,
           'segmentation': labels.astype(np.uint8), 'scene': scene * 0.9}
  assert set(batch) == set(spec)
  for key, value in batch.items():
    assert value.shape == spec[key].shape and value.dtype == spec[key].dtype
  return batch


@pytest.mark.parametrize('ignore_label,per_image', [(None, True), (3, False)])
def test_train_step_equals_the_jax_method(tmp_path, ignore_label, per_image):
  """From the same random weights: the same loss terms and total, the same
  gradient norm, the same parameters after one Adam step, the same loss
  at the next step (running variances differ by design: unbiased in
  PyTorch, biased in Flax; the train step does not read them)."""
  prior = np.random.default_rng(3).dirichlet(np.full(313, 0.3))
  np.save(tmp_path / 'prior.npy', prior)
  config = _config()
  config.data.ignore_label = ignore_label
  config.loss.dice_per_image = per_image
  config.loss.weights = dict(soft=0.7, reg=3.0, clas=1.3, seg=2.1)
  config.loss.prior_file = str(tmp_path / 'prior.npy')
  lr = config.optimizer.learning_rate
  method = methods.get_method(config)
  batch = _batch(method, config, 1 + per_image)
  variables = _random_variables(method.network(False), 2, batch['gray'])
  state = base.TrainState(
      step=jnp.zeros((), jnp.int32), params={'model': variables['params']},
      opt_state={'model': method.optimizer.init(variables['params'])},
      model_state={'model': variables['batch_stats']})

  as_dict = _as_dict(config)
  rebalance = peer.rebalance_for(as_dict)
  np.testing.assert_allclose(rebalance.numpy(), method.rebalance_weights(),
                             rtol=1e-6)
  model = _filled(config, variables)
  optimizer, clip = peer.make_optimizer(model, as_dict['optimizer'])
  torch_batch = {k: _nchw(v) for k, v in batch.items() if k != 'scene'}
  torch_batch['ab_bins'] = torch_batch['ab_bins'].long()
  torch_batch['scene'] = torch.from_numpy(batch['scene'])

  step = jax.jit(method.train_step)
  history = []
  for i in range(2):
    state, metrics = step(state, batch, jax.random.PRNGKey(i))
    loss, terms = peer.train_step(model, optimizer, torch_batch, rebalance,
                                  as_dict, clip=clip)
    history.append((float(metrics['loss']), float(loss)))
    assert set(terms) == {'soft', 'reg', 'seg', 'clas'}
    for name, value in terms.items():
      np.testing.assert_allclose(float(value), float(metrics[f'loss_{name}']),
                                 rtol=1e-5, err_msg=f'{name}, step {i}')
    np.testing.assert_allclose(float(loss), float(metrics['loss']),
                               rtol=1e-5, err_msg=f'loss, step {i}')
    grad_norm = torch.sqrt(sum(p.grad.double().pow(2).sum()
                               for p in model.parameters()))
    np.testing.assert_allclose(float(grad_norm), float(metrics['grad_norm']),
                               rtol=1e-4, err_msg=f'grad norm, step {i}')
    if i == 0:
      # The update after one step, tensor by tensor. Adam's first step is
      # lr * g / (|g| + eps) ~ lr * sign(g); where |g| is near eps, float
      # noise in g moves it by a fraction of lr. The biases of the convs
      # that BatchNorm follows (all but the heads') have a zero gradient
      # in exact arithmetic (train-mode BN subtracts the batch mean), so
      # Adam turns rounding noise into steps of up to lr either way:
      # there both frameworks' moves are only bounded by lr. Elsewhere 5%
      # of lr (measured: 2% on one weight of 2,304 with XLA at -O0, as the
      # suite compiles); a wrong update is off by about lr.
      moved = _filled(config, {'params': state.params['model'],
                               'batch_stats': state.model_state['model']})
      want, got = moved.state_dict(), model.state_dict()
      params = dict(model.named_parameters())
      for key, value in want.items():
        if key.endswith('running_var') or key.endswith('num_batches_tracked'):
          continue
        before_bn = '_conv' in key and key.endswith('.bias')
        if before_bn:
          assert float(params[key].grad.abs().max()) < 1e-5, key
        np.testing.assert_allclose(got[key].numpy(), value.numpy(),
                                   atol=(2.01 if before_bn else 5e-2) * lr,
                                   rtol=0, err_msg=key)
  # The step changed the loss (the comparison is not of two constants).
  assert abs(history[1][0] - history[0][0]) > 1e-4, history


def _run_cli(config, *extra):
  result = subprocess.run(
      [sys.executable, PEER, '--config_json', config.to_json(),
       '--batch_size=2', '--steps=1', '--warmup=0', *extra],
      capture_output=True, text=True, check=False, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_cli_prints_one_json_line(dtype):
  """As `colorjax.benchmark train` calls it: the tiny config with the
  uniform prior file the benchmark substitutes for a dataset's."""
  config = _config()
  config.model.dtype = dtype
  config.loss.prior_file = prior_lib.uniform_prior_file()
  out = _run_cli(config, f'--dtype={dtype}')
  method = methods.get_method(config)
  assert out['params'] == method.describe(method.batch_spec(1))
  assert np.isfinite(out['loss']) and out['loss'] > 0
  assert out['dtype'] == dtype and out['device'] == 'cpu'
  assert out['images_per_s'] > 0 and out['peak_device_mb'] is None
  assert set(out) >= {'step_s', 'peak_rss_mb', 'torch', 'threads'}
