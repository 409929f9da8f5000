"""The PyTorch training peer of SemanticDriven (benchmarks/
torch_semanticdriven.py) is the JAX method: equal parameter counts at every
scale of configs/semanticdriven.py, equal outputs once the JAX weights are
copied in, and -- for every stage and map option -- the same train step:
equal loss terms, gradient norm and pixel accuracy, equal parameters and
BatchNorm statistics after the Adam step, and a CLI that runs.

The weights go JAX -> torch tensor by tensor here (not through the peer's
`fill`), with the layout transposes written out and every tensor used
exactly once."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import semanticdriven as semanticdriven_config   # configs/ (conftest)
import torch_semanticdriven as peer              # benchmarks/ (conftest)

from conftest import apply_overrides
from colorjax import methods

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(REPO, 'benchmarks', 'torch_semanticdriven.py')

# `python -m colorjax.benchmark model --config=configs/semanticdriven.py:ARG`
# (the same networks in every stage; the paper's also in
# tests/test_semanticdriven.py, from the layer list by hand).
EXPECTED_COUNTS = {
    'tiny': {'gridnet': 6_787, 'colorizer': 32_510},
    'demo': {'gridnet': 202_783, 'colorizer': 929_762},
    'paper': {'gridnet': 13_181_052, 'colorizer': 36_124_898},
}


def _config(arg, overrides=None, batch_size=2):
  config = semanticdriven_config.get_config(arg)
  config.data.batch_size = batch_size
  return apply_overrides(config, overrides or {})


def _as_json(config):
  """What `colorjax.benchmark train` hands the peer."""
  return json.loads(config.to_json())


# --- 1. Parameter counts. ----------------------------------------------------

@pytest.mark.parametrize('arg, overrides, size', [
    ('tiny', {}, 'tiny'), ('segmentation_tiny', {}, 'tiny'),
    ('demo', {}, 'demo'), ('colorization', {}, 'paper'),
    ('segmentation', {}, 'paper'),
    ('colorization', {'model.map_input': 'embedding'}, 'paper')])
def test_parameter_counts_equal(arg, overrides, size):
  config = _config(arg, overrides)
  method = methods.get_method(config)
  jax_counts = method.describe(method.batch_spec(1))   # jax.eval_shape
  with torch.device('meta'):                          # shapes only
    networks = peer.build_networks(_as_json(config))
  assert peer.parameter_counts(networks) == jax_counts
  want = dict(EXPECTED_COUNTS[size])
  if overrides:
    want['colorizer'] += config.data.num_classes      # one scalar a class
  assert jax_counts == want


# --- Weight transfer JAX -> PyTorch. ------------------------------------------

def _to_torch(path, value):
  """(torch state_dict key, tensor) of one Flax leaf. Flax module paths
  are the peer's attribute names ('lat1_1/conv0' -> 'lat1_1.conv0').
  Conv kernels are HWIO -> Conv2d's OIHW; the up-convolutions' kernel
  (layers.UpConv: [kh, kw, C_out, C_in], the HWIO kernel of the strided
  conv it is the adjoint of) -> ConvTranspose2d's [C_in, C_out, kh, kw]
  (the same adjoint in PyTorch, no spatial flip): both (3, 2, 0, 1).
  BatchNorm scale / bias / mean / var -> weight / bias / running_mean /
  running_var; the colorizer's map_embedding [C, 1] as is."""
  *modules, leaf = path
  if leaf == 'kernel':
    name, value = 'weight', np.transpose(value, (3, 2, 0, 1))
  else:
    name = {'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean',
            'var': 'running_var', 'map_embedding': 'map_embedding'}[leaf]
  return '.'.join(modules + [name]), torch.from_numpy(
      np.array(value, np.float32, order='C'))


def _flat(tree):
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {tuple(k.key for k in path): np.asarray(v) for path, v in leaves}


def _torch_state(params, stats=None):
  state = {}
  for tree in (params, stats or {}):
    for path, value in _flat(tree).items():
      key, tensor = _to_torch(path, value)
      assert key not in state, key
      state[key] = tensor
  return state


def _load(module, params, stats=None):
  """Every torch tensor but num_batches_tracked gets exactly one JAX
  tensor of its shape, and every JAX tensor is used."""
  state = _torch_state(params, stats)
  own = {k: v for k, v in module.state_dict().items()
         if not k.endswith('num_batches_tracked')}
  assert set(state) == set(own), sorted(set(state) ^ set(own))[:8]
  for key, value in state.items():
    assert value.shape == own[key].shape, (key, value.shape, own[key].shape)
  module.load_state_dict(state, strict=False)
  return module


def _random_state(method, batch, seed):
  """A train state of init_state's shapes (jax.eval_shape: compiling the
  initialisers costs more than the rest of a test here) with random
  values: kernels ~ N(0, 1 / fan-in), and non-trivial biases, BN affines,
  BN statistics and map embedding (init has zeros and ones there), so that
  a wrong mapping of any tensor changes something; fresh Adam states."""
  shapes = jax.eval_shape(method.init_state, jax.random.PRNGKey(seed), batch)
  rng = np.random.default_rng(seed)

  def draw(path, x):
    name = path[-1].key
    if name == 'kernel':
      value = rng.normal(size=x.shape) * np.sqrt(2 / np.prod(x.shape[:-1]))
    elif name in ('scale', 'var'):
      value = rng.uniform(0.5, 1.5, x.shape)
    elif name == 'map_embedding':
      value = np.linspace(-1, 1, x.shape[0])[:, None] + rng.uniform(
          -0.2, 0.2, x.shape)
    else:
      assert name in ('bias', 'mean'), path
      value = rng.uniform(-0.2, 0.2, x.shape)
    return jnp.asarray(value, x.dtype)

  params = jax.tree_util.tree_map_with_path(draw, shapes.params)
  return shapes.replace(
      step=jnp.zeros((), jnp.int32), params=params,
      model_state=jax.tree_util.tree_map_with_path(draw, shapes.model_state),
      opt_state={name: method.optimizers[name].init(params[name])
                 for name in method.trained})


def _random_batch(method, config, seed):
  """NHWC numpy batch of the method's batch_spec: some labels out of range
  (255) and some ab targets far off (|error| > delta: Huber's linear
  part)."""
  rng = np.random.default_rng(seed)
  batch = {}
  for key, spec in method.batch_spec(config.data.batch_size).items():
    if spec.dtype == np.uint8:
      value = rng.integers(0, config.data.num_classes, spec.shape)
      value[0, :3, :5] = 255
    else:
      value = rng.uniform(-1, 1, spec.shape)
      if key == 'ab':
        value[0, :4] = 2.5
    batch[key] = value.astype(spec.dtype)
  return batch


def _nchw(batch):
  return {k: torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2)))
          for k, v in batch.items()}


def _nhwc(t):
  return np.transpose(t.detach().numpy(), (0, 2, 3, 1))


def _peer(config, state):
  networks = peer.build_networks(_as_json(config))
  _load(networks['gridnet'], jax.device_get(state.params['gridnet']),
        jax.device_get(state.model_state['gridnet']))
  _load(networks['colorizer'], jax.device_get(state.params['colorizer']))
  return networks


def _assert_close(actual, expected, name, rel=1e-4):
  """Within `rel` of the output's scale (max |expected|), elementwise."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
  scale = float(np.max(np.abs(expected)))
  assert scale > 0, name
  error = float(np.max(np.abs(actual - expected)))
  assert error <= rel * scale, (
      f'{name}: max error {error:.3g}, scale {scale:.3g}')


# --- 2a. Outputs. --------------------------------------------------------------

@pytest.mark.parametrize('overrides', [
    {}, {'model.map_input': 'embedding', 'model.instance_norm': 'bottleneck'}])
def test_transferred_weights_give_equal_outputs(overrides):
  """GridNet in inference mode (running statistics) and in training mode
  (batch statistics), the colorizer under a given map, and predict's whole
  chain (GridNet's argmax into the colorizer)."""
  config = _config('tiny', overrides)
  method = methods.get_method(config)
  batch = _random_batch(method, config, 0)
  state = _random_state(method, batch, 1)
  networks = _peer(config, state)
  gray, labels = _nchw(batch)['gray'], _nchw(batch)['segmentation']

  @jax.jit
  def jax_outputs(state, batch):
    train_logits, _ = method.gridnet(True).apply(
        {'params': state.params['gridnet'],
         'batch_stats': state.model_state['gridnet']}, batch['gray'],
        mutable=['batch_stats'])
    return {'predict': method.predict(state, {'gray': batch['gray']}),
            'train_logits': train_logits,
            'colorize': method.colorize(state, batch['gray'],
                                        batch['segmentation'])}

  want = jax_outputs(state, batch)
  with torch.no_grad():
    eval_logits = networks['gridnet'].eval()(gray)
    train_logits = networks['gridnet'].train()(gray)
    colorizer = networks['colorizer']
    ab_given = colorizer(gray, peer.map_labels(labels,
                                               config.data.num_classes))
    ab_predicted = colorizer(gray, eval_logits.argmax(1, keepdim=True))
  seg = np.asarray(want['predict']['segmentation'])
  assert np.std(seg) > 0.1 and np.std(np.asarray(want['colorize'])) > 0.02
  _assert_close(_nhwc(eval_logits), seg, 'GridNet, inference mode')
  _assert_close(_nhwc(train_logits), want['train_logits'],
                'GridNet, training mode')
  _assert_close(_nhwc(ab_given), want['colorize'], 'colorizer, given map')
  np.testing.assert_array_equal(np.argmax(seg, -1),
                                eval_logits.argmax(1).numpy())
  _assert_close(_nhwc(ab_predicted), want['predict']['ab'],
                'colorizer, predicted map')


# --- 2b. The train step. -------------------------------------------------------

STEP_CASES = [
    ('segmentation_tiny', {}),
    ('colorization_tiny', {}),
    ('colorization_tiny', {'train_maps': 'mix', 'data.ignore_label': 3,
                           'model.map_input': 'embedding',
                           'model.instance_norm': 'bottleneck'}),
    ('tiny', {'train_maps': 'predicted', 'model.instance_norm': 'none'}),
]


def _mix_key(method, config, batch):
  """A step key whose 'mix' draw (JAX's, as in _training_maps) takes the
  predicted map for some images and the ground truth for others."""
  n = config.data.batch_size
  for i in range(64):
    key = jax.random.PRNGKey(i)
    use = np.asarray(jax.random.bernoulli(key, config.train_maps_mix,
                                          (n, 1, 1, 1))).reshape(n)
    if use.any() and not use.all():
      return key, use
  raise AssertionError('no mixed draw')


@pytest.mark.parametrize('arg, overrides', STEP_CASES)
def test_train_step_equals_jax(arg, overrides):
  config = _config(arg, overrides)
  method = methods.get_method(config)
  batch = _random_batch(method, config, 2)
  state = _random_state(method, batch, 3)
  key, use_predicted = jax.random.PRNGKey(0), None
  if config.train_maps == 'mix':
    key, use_predicted = _mix_key(method, config, batch)
  networks = _peer(config, state)
  optimizers = peer.build_optimizers(_as_json(config), networks)
  assert set(optimizers) == set(method.trained)

  new_state, jax_metrics = jax.jit(method.train_step)(state, batch, key)
  jax_metrics = {k: float(v) for k, v in jax_metrics.items()}
  torch_batch = _nchw(batch)
  if 'colorizer' in method.trained:   # the maps the colorizer trains on
    maps = peer.training_maps(_as_json(config), networks, torch_batch,
                              use_predicted=use_predicted)
    np.testing.assert_array_equal(
        _nhwc(maps), np.asarray(method._training_maps(  # pylint: disable=protected-access
            state, batch, key)))
  torch_metrics = peer.train_step(_as_json(config), networks, optimizers,
                                  torch_batch, use_predicted=use_predicted,
                                  with_metrics=True)

  # The same metrics: loss terms, gradient norm, pixel accuracy.
  assert set(torch_metrics) == set(jax_metrics)
  for name, value in jax_metrics.items():
    assert torch_metrics[name] == pytest.approx(value, rel=1e-4), name
  for name in method.trained:
    assert jax_metrics[f'loss_{"seg" if name == "gridnet" else "color"}'] > 0

  # After Adam: equal parameters and equal BatchNorm statistics (the
  # biased variance, as Flax). Adam's first step is -lr * g / (|g| + eps):
  # a gradient error d moves it by at most ~lr * eps * d / (|g| + eps)^2,
  # and a gradient within rounding noise of 0 (conv biases feeding a
  # BatchNorm have a zero gradient up to that noise) may step either way.
  # The noise: 1e-6 of the network's largest gradient.
  lr, eps = config.optimizer.learning_rate, 1e-8
  tight = [0, 0]     # trained values held to 1e-2 * lr or better; all
  for name, network in networks.items():
    want = _torch_state(jax.device_get(new_state.params[name]),
                        jax.device_get(new_state.model_state[name])
                        if name == 'gridnet' else None)
    before = _torch_state(jax.device_get(state.params[name]))
    own = dict(network.named_parameters())
    if name in method.trained:
      noise = 1e-6 * max(float(p.grad.abs().max()) for p in own.values())
    for key_, got in network.state_dict().items():
      if key_.endswith('num_batches_tracked'):
        continue
      if key_ not in own:           # running_mean / running_var
        np.testing.assert_allclose(got.numpy(), want[key_].numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=key_)
        continue
      step_jax = (want[key_] - before[key_]).numpy()
      step_torch = (got - before[key_]).numpy()
      if name not in method.trained:
        assert not step_jax.any() and not step_torch.any(), key_
        continue
      grad = np.abs(own[key_].grad.numpy())
      allowed = lr * (1e-3 + np.where(
          grad > 2 * noise,
          np.minimum(2.0, 4 * eps * noise / (grad + eps) ** 2), 2.0))
      error = np.abs(step_torch - step_jax)
      assert np.all(error <= allowed), (key_, float(np.max(error / allowed)))
      assert np.all(np.abs(step_torch) <= 1.001 * lr), key_
      tight[0] += int(np.sum(allowed <= 1e-2 * lr))
      tight[1] += grad.size
  assert tight[0] > 0.8 * tight[1], tight


# --- 3. The command line. -------------------------------------------------------

@pytest.mark.parametrize('arg, overrides, dtype', [
    ('tiny', {'train_maps': 'mix'}, 'float32'),
    ('tiny', {}, 'bfloat16'),
    ('colorization_tiny', {'train_maps': 'predicted'}, 'float32'),
])
def test_cli_runs(arg, overrides, dtype):
  config = _config(arg, overrides)
  method = methods.get_method(config)
  result = subprocess.run(
      [sys.executable, PEER, f'--config_json={config.to_json()}',
       '--batch_size=2', '--steps=1', '--warmup=0', f'--dtype={dtype}'],
      capture_output=True, text=True, check=False, timeout=240)
  assert result.returncode == 0, result.stderr[-2000:]
  line = json.loads(result.stdout.strip().splitlines()[-1])
  assert np.isfinite(line['loss']) and line['loss'] > 0
  assert line['params'] == method.describe(method.batch_spec(1))
  assert line['trained'] == list(method.trained)
  assert line['dtype'] == dtype and line['device'] == 'cpu'
  assert line['peak_device_mb'] is None and line['images_per_s'] > 0
