"""The PyTorch peer of the InstanceAware train benchmark
(benchmarks/torch_instanceaware.py) is the JAX method: equal parameter
counts at every scale of configs/instanceaware.py, equal outputs once the
JAX weights are copied in (peer.fill: HWIO -> OIHW, UpConv [kh, kw, out,
in] -> ConvTranspose2d [in, out, kh, kw], Dense [in, out] -> Linear [out,
in], fc1's rows from an NHWC to an NCHW flatten), and the same train step:
equal losses (eq. 3 rebalanced by a non-uniform prior file, eq. 1-2),
gradient norm, AdamW update (weight decay on) and next loss. No dropout
anywhere, so nothing random is involved. The CLI runs in float32 and
bfloat16."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import instanceaware as instanceaware_config   # configs/ (conftest's path)
import torch_instanceaware as peer              # benchmarks/ (conftest's path)

from colorjax import methods
from colorjax.color import quantize
from colorjax.data import prior as prior_lib
from colorjax.methods import base

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(REPO, 'benchmarks', 'torch_instanceaware.py')

# As tests/test_instanceaware.py and configs/instanceaware.py state them.
EXPECTED_COUNTS = {
    ('tiny', 'flatten', True): 25_254,
    ('tiny', 'mean', True): 24_486,         # fc1 on the pooled mean
    ('demo', 'flatten', True): 1_103_310,
    ('voc', 'vgg16', True): 156_672_917,    # the paper preset
    ('voc', 'flatten', False): 32_235_385,  # Zhang's ECCVGenerator alone
}


def _config(variant='tiny', **model):
  config = instanceaware_config.get_config(variant)
  config.model.update(model)
  return config


def _as_dict(config):
  return json.loads(config.to_json())


@pytest.mark.parametrize('variant,reduce,branch', sorted(EXPECTED_COUNTS))
def test_parameter_counts_equal(variant, reduce, branch):
  config = _config(variant, branch_reduce=reduce, use_classifier=branch)
  method = methods.get_method(config)
  jax_count = method.describe(method.batch_spec(1))['model']  # eval_shape
  model = peer.build(_as_dict(config), device='meta')         # shapes only
  assert sum(p.numel() for p in model.parameters()) == jax_count
  assert jax_count == EXPECTED_COUNTS[(variant, reduce, branch)]


def _random_variables(module, seed, gray):
  """Random values shaped by jax.eval_shape: kernels ~ 1/sqrt(fan-in),
  non-trivial BN statistics and affines, biases (init has zeros, ones and
  the identity fusion there), so a wrong mapping of any tensor shows."""
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
  return torch.from_numpy(np.ascontiguousarray(
      np.transpose(np.asarray(x), (0, 3, 1, 2))))


def _assert_close(actual, expected, name, rtol=1e-4):
  """Within rtol of the output's scale (max |expected|), elementwise."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
  scale = float(np.max(np.abs(expected)))
  assert np.all(np.isfinite(expected)) and scale > 0, name
  error = float(np.max(np.abs(actual - expected)))
  assert error <= rtol * scale, (
      f'{name}: max error {error:.3g}, output scale {scale:.3g}')


@pytest.mark.parametrize('reduce,fusion,upconv', [
    ('flatten', 'identity', 'adjoint'), ('mean', 'relu', 'xla'),
    ('vgg16', 'identity', 'auto')])
def test_transferred_weights_give_equal_outputs(reduce, fusion, upconv):
  """Eval mode (BN on the running statistics), tiny scale, the three branch
  reductions ('vgg16': torchvision's adaptive pool and flatten order), both
  fusions, both UpConv implementations."""
  config = _config(branch_reduce=reduce, fusion=fusion, upconv=upconv)
  network = methods.get_method(config).network(False)
  size = config.data.image_size
  gray = np.random.default_rng(0).uniform(
      -1, 1, (2, size, size, 1)).astype(np.float32)
  variables = _random_variables(network, 1, gray)
  out = jax.jit(network.apply)(variables, gray)
  model = _filled(config, variables).eval()
  with torch.no_grad():
    got = model(_nchw(gray))
  logits = np.asarray(out['logits'])
  assert logits.shape == (2, size // 4, size // 4, 313)
  assert np.std(logits) > 0.1 and np.std(out['classification']) > 0.1
  _assert_close(got['logits'].numpy().transpose(0, 2, 3, 1), logits,
                'logits')
  _assert_close(got['classification'].numpy(), out['classification'],
                'classification')


def _batch(method, config, seed):
  """A training batch as the pipeline gives it: bins of random ab at 1/4
  size (k from the config), multi-hot tags with one untagged image."""
  rng = np.random.default_rng(seed)
  spec = method.batch_spec(4)
  n, size = spec['gray'].shape[:2]
  ab = rng.uniform(-70, 70, (n, size // 4, size // 4, 2)).astype(np.float32)
  bins, weights = quantize.soft_encode_numpy(ab, config.data.soft_encode_k)
  tags = (rng.uniform(size=spec['labels'].shape) < 0.4).astype(np.float32)
  tags[0] = 0.0                                  # untagged: left out
  tags[1, :2] = 1.0
  l = rng.uniform(0, 100, (n, size, size, 1)).astype(np.float32)
  return {'gray': l / 50 - 1, 'l': l, 'ab': np.zeros((n, size, size, 2),
                                                     np.float32),
          'ab_bins': bins.astype(np.int32), 'ab_weights': weights,
          'labels': tags}


@pytest.mark.parametrize('soft_k,kind', [(1, 'softmax'), (5, 'sigmoid')])
def test_train_step_equals_the_jax_method(tmp_path, soft_k, kind):
  """From the same random weights: the same loss terms (rebalancing from
  the same non-uniform prior file), the same gradient norm, the same
  parameters after one AdamW step (weight decay on), the same loss at the
  next step and the same BN running means (running variances differ by
  design: unbiased in PyTorch, biased in Flax)."""
  prior = np.random.default_rng(3).dirichlet(np.full(313, 0.3))
  np.save(tmp_path / 'prior.npy', prior)
  config = _config()
  config.data.soft_encode_k = soft_k
  config.loss.classification = kind
  config.loss.classification_weight = 0.7
  config.loss.prior_file = str(tmp_path / 'prior.npy')
  config.optimizer.kwargs.weight_decay = 0.5
  lr = config.optimizer.learning_rate
  method = methods.get_method(config)
  batch = _batch(method, config, soft_k)
  variables = _random_variables(method.network(False), 2, batch['gray'])
  state = base.TrainState(
      step=jnp.zeros((), jnp.int32), params={'model': variables['params']},
      opt_state={'model': method.optimizer.init(variables['params'])},
      model_state={'model': variables['batch_stats']})

  as_dict = _as_dict(config)
  rebalance = peer.rebalance_for(as_dict)
  np.testing.assert_allclose(rebalance.numpy(),
                             quantize.rebalance_weights(prior), rtol=1e-6)
  model = _filled(config, variables)
  optimizer, clip = peer.make_optimizer(model, as_dict['optimizer'])
  torch_batch = {'gray': _nchw(batch['gray']),
                 'ab_bins': _nchw(batch['ab_bins']).long(),
                 'ab_weights': _nchw(batch['ab_weights']),
                 'labels': torch.from_numpy(batch['labels'])}

  step = jax.jit(method.train_step)
  history = []
  for i in range(2):
    state, metrics = step(state, batch, jax.random.PRNGKey(i))
    loss, terms = peer.train_step(model, optimizer, torch_batch, rebalance,
                                  as_dict['loss'], clip=clip)
    history.append((float(metrics['loss']), float(loss)))
    np.testing.assert_allclose(float(loss), float(metrics['loss']),
                               rtol=1e-5, err_msg=f'loss, step {i}')
    np.testing.assert_allclose(float(terms['color']),
                               float(metrics['loss_color']), rtol=1e-5)
    np.testing.assert_allclose(float(terms['classification']),
                               float(metrics['loss_classification']),
                               rtol=1e-5)
    grad_norm = torch.sqrt(sum(p.grad.double().pow(2).sum()
                               for p in model.parameters()))
    np.testing.assert_allclose(float(grad_norm), float(metrics['grad_norm']),
                               rtol=1e-4, err_msg=f'grad norm, step {i}')
    if i == 0:
      # The update after one step, tensor by tensor. Adam's first step is
      # lr * g / (|g| + eps) ~ lr * sign(g) (where |g| is near eps, float
      # noise in g moves it by up to ~lr / 500), the decay moves a
      # parameter by lr * 0.5 * |p| (~lr / 20).
      moved = _filled(config, {'params': state.params['model'],
                               'batch_stats': state.model_state['model']})
      want, got = moved.state_dict(), model.state_dict()
      for key, value in want.items():
        if key.endswith('running_var') or key.endswith('num_batches_tracked'):
          continue
        np.testing.assert_allclose(got[key].numpy(), value.numpy(),
                                   atol=1e-2 * lr, rtol=0, err_msg=key)
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
