"""The PyTorch peer of paper 004 (benchmarks/torch_pixsem.py) is the JAX
PixSem model and train step: equal parameter counts at the tiny twin and
the paper's scale (JAX by jax.eval_shape, torch on the meta device), equal
outputs of f, h and g once the JAX weights are copied in (layout
transposes written out below), the same DMoL log-likelihood, the same
three-term loss, gradient norm, Adam step and Polyak average as
PixSemMethod.train_step on one batch (tiny twin: no dropout), and a CLI
that runs (float32 and bfloat16)."""

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import pixsem as pixsem_config      # configs/ (conftest puts it on the path)
import torch_pixsem as peer         # benchmarks/

from colorjax import methods
from colorjax.losses import dmol
from colorjax.methods import base

PEER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), 'benchmarks', 'torch_pixsem.py')
# `python -m colorjax.benchmark model --config=configs/pixsem.py[:ARG]`;
# the paper preset's is the one configs/pixsem.py documents.
EXPECTED_COUNTS = {'tiny': 69_629, 'voc': 133_007_095,
                   'voc_small': 80_240_695}


def _config(arg='tiny', **model):
  config = pixsem_config.get_config(arg)
  config.model.update(model)
  return config


def _as_dict(config):
  return json.loads(config.to_json())


def _jax_count(config):
  """From shapes only (nothing allocated), the init the method runs."""
  method = methods.get_method(config)
  spec = method.batch_spec(1)
  shapes = jax.eval_shape(method.model.init, jax.random.PRNGKey(0),
                          spec['gray'], spec['ab_small'])
  return sum(int(np.prod(x.shape))
             for x in jax.tree_util.tree_leaves(shapes['params']))


@pytest.mark.parametrize('arg', ['tiny', 'voc', 'voc_small'])
def test_parameter_counts_equal(arg):
  config = _config(arg)
  torch_count = peer.count(peer.build(_as_dict(config), device='meta'))
  assert torch_count == _jax_count(config) == EXPECTED_COUNTS[arg]


# --- Weight transfer JAX -> PyTorch, one entry per torch tensor. -------------

def _conv(kernel):
  """Flax / lax HWIO kernel [kh, kw, C_in, C_out] -> Conv2d OIHW (also the
  1x1 'nin' projections, stored [1, 1, C_in, C_out])."""
  return np.transpose(kernel, (3, 2, 0, 1))


def _deconv(kernel):
  """pixelcnnpp.deconv's [kh, kw, C_in, C_out] (einsum 'nhwc,abco'; fine
  pixel (2i + a, 2j + b) += x[i, j] @ w[a, b]) -> ConvTranspose2d's
  [C_in, C_out, kh, kw], which computes out[2i + a, 2j + b] += x[i, j] @
  W[:, :, a, b] (no spatial flip)."""
  return np.transpose(kernel, (2, 3, 0, 1))


def _same(x):
  return x


def _mapping(net):
  """torch state_dict key -> (JAX path in variables['params'], converter).

  conditioning.<module>[.<conv>].weight/bias    <- conditioning/<module>
      [/<conv>]/kernel/bias (Flax names: f0_conv, f0_block0/conv1, aspp6..)
  generator.layers.<name>[.<part>].conv.weight  <- generator/<name>[/<part>]/w
      (shifted convs; up*_u / up*_ul are the transposed ones)
  generator.layers.<name>[.<part>].weight       <- .../w (1x1: cond, a, out,
      the small generator's cond / skip)
  and every bias likewise from 'b'.
  """
  entries = {}
  for key in net.state_dict():
    module_name, _, leaf = key.rpartition('.')
    module = net.get_submodule(module_name)
    parts = module_name.split('.')
    if parts[0] == 'conditioning':
      path = ('conditioning',) + tuple(parts[1:]) + (
          {'weight': 'kernel', 'bias': 'bias'}[leaf],)
    else:
      assert parts[:2] == ['generator', 'layers'], key
      names = [p for p in parts[2:] if p != 'conv']
      path = ('generator',) + tuple(names) + ({'weight': 'w',
                                               'bias': 'b'}[leaf],)
    if leaf == 'bias':
      convert = _same
    elif isinstance(module, torch.nn.ConvTranspose2d):
      convert = _deconv
    else:
      assert isinstance(module, torch.nn.Conv2d), key
      convert = _conv
    entries[key] = (path, convert)
  return entries


def _get(tree, path):
  for name in path:
    tree = tree[name]
  return tree


def transfer(params, net):
  """Copies every JAX parameter into `net`; every tensor on both sides is
  used exactly once and has the converted shape."""
  state = net.state_dict()
  entries = _mapping(net)
  jax_paths = {tuple(p.key for p in path) for path, _ in
               jax.tree_util.tree_flatten_with_path(params)[0]}
  used = {path for path, _ in entries.values()}
  assert used == jax_paths, sorted(used ^ jax_paths)[:8]
  for key, (path, convert) in entries.items():
    value = np.array(convert(np.asarray(_get(params, path))), order='C')
    assert value.shape == tuple(state[key].shape), (key, value.shape)
    state[key] = torch.from_numpy(value)
  net.load_state_dict(state, strict=True)
  return net


def _random_params(model, seed, *inputs):
  """Random values of every parameter (shapes by jax.eval_shape): kernels
  ~ N(0, 1 / fan-in), biases U(-0.2, 0.2) (init has zeros there), so that
  a wrong mapping of any tensor changes the outputs."""
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), *inputs)
  rng = np.random.default_rng(seed)

  def draw(path, x):
    if path[-1].key in ('kernel', 'w'):
      value = rng.normal(size=x.shape) / np.sqrt(np.prod(x.shape[:-1]))
    else:
      assert path[-1].key in ('bias', 'b'), path
      value = rng.uniform(-0.2, 0.2, x.shape)
    return jnp.asarray(value, x.dtype)
  return jax.tree_util.tree_map_with_path(draw, shapes['params'])


def _batch(config, n, seed=0):
  """A NHWC training batch of the method's batch_spec, with a share of
  ab values exactly on the -1 / 1 edge bins (and next to them) and some
  labels 255 (outside the classes: no loss)."""
  method = methods.get_method(config)
  rng = np.random.default_rng(seed)
  batch = {}
  for key, spec in method.batch_spec(n).items():
    if np.issubdtype(spec.dtype, np.integer):
      value = rng.integers(0, config.data.num_classes, spec.shape)
      value[rng.random(spec.shape) < 0.1] = 255
    else:
      value = rng.uniform(-1, 1, spec.shape)
      edges = np.array([-1.0, 1.0, -1 + 1 / 255, 1 - 1 / 255, -1 + 2 / 255])
      pick = rng.random(spec.shape) < 0.2
      value[pick] = rng.choice(edges, int(pick.sum()))
    batch[key] = jnp.asarray(value, spec.dtype)
  return method, batch


def _run_jitted(fn, *args):
  """jax.jit(fn)(*args), compiled at XLA:CPU's backend optimisation level 0
  (half the compile time of this test file; the same program)."""
  return jax.jit(fn).lower(*args).compile(
      compiler_options={'xla_backend_optimization_level': 0})(*args)


def _nchw(x):
  return torch.from_numpy(np.array(np.transpose(np.asarray(x), (0, 3, 1, 2)),
                                   order='C'))


def _nhwc(t):
  return np.transpose(t.detach().numpy(), (0, 2, 3, 1))


def _assert_close(actual, expected, name, rel=1e-4):
  """Within `rel` of the output's scale (max |expected|), elementwise."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
  assert np.all(np.isfinite(expected)), name
  scale = float(np.max(np.abs(expected)))
  assert scale > 0, name
  error = float(np.max(np.abs(actual - expected)))
  assert error <= rel * scale, (
      f'{name}: max error {error:.3g}, output scale {scale:.3g}')


@pytest.mark.parametrize('variant, generator', [
    ('semantic_generator', 'pixelcnnpp'),   # the paper's model
    ('feature_transform', 'pixelcnnpp'),
    ('embedding', 'small')])
def test_transferred_weights_give_equal_outputs(variant, generator):
  """f's DMoL head, h's logits, the conditioning map and g's DMoL
  parameters (teacher-forced), at the tiny twin's widths on the paper's
  128x128 input (a 32x32 feature map: on the twin's 8x8 one, ASPP's
  dilations 12 and 18 would reach only the centre tap)."""
  config = _config(variant=variant, generator=generator)
  config.data.image_size = 128
  if generator == 'small':
    config.model.generator_dropout = 0.0
  method, batch = _batch(config, 2)
  params = _random_params(method.model, 1, batch['gray'], batch['ab_small'])
  expected = _run_jitted(method.model.apply, {'params': params},
                         batch['gray'], batch['ab_small'])
  net = transfer(params, peer.build(_as_dict(config))).eval()
  with torch.no_grad():
    actual = net(_nchw(batch['gray']), _nchw(batch['ab_small']))
  assert set(actual) == set(expected)
  # The outputs carry signal (not saturated or constant).
  assert np.std(np.asarray(expected['generator_dmol'])) > 0.1
  assert np.std(np.asarray(expected['cond'])) > 0.1
  for key in expected:
    _assert_close(_nhwc(actual[key]), expected[key], key)


def test_dmol_log_prob_equals_jax_including_edges_and_tails():
  """The peer's DMoL (written from PixelCNN++'s formula) against
  colorjax.losses.dmol on wide random parameters (log scales below the
  -7 floor, means far outside [-1, 1]: both tails) and ab on and next to
  the edge bins, K = 3."""
  k, rng = 3, np.random.default_rng(5)
  outputs = rng.normal(0, 3, (4, 6, 5, 6 * k)).astype(np.float32)
  outputs[..., 3 * k:5 * k] = rng.uniform(-9, 2, (4, 6, 5, 2 * k))
  ab = rng.uniform(-1, 1, (4, 6, 5, 2)).astype(np.float32)
  ab[:, :2] = rng.choice([-1.0, 1.0, -1 + 2 / 255, 1 - 2 / 255, 0.0],
                         (4, 2, 5, 2))
  expected = np.asarray(dmol.dmol_log_prob(jnp.asarray(outputs),
                                           jnp.asarray(ab), k))
  actual = peer.dmol_log_prob(_nchw(outputs), _nchw(ab), k).numpy()
  assert np.all(np.isfinite(expected)) and expected.min() < -50
  np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


def test_train_step_equals_jax_train_step():
  """One PixSemMethod.train_step (jitted; tiny twin, no dropout) from
  random parameters against one peer step from the same parameters and
  batch: loss (l1 L_emb + l2 L_seg + l3 L_gen, here with the paper's
  1:100:1 weights and ignore label), each term, the gradient norm, Adam's
  moments (every gradient; b1 0.95, b2 0.9995), the parameters after the
  step (the schedule's rate at step 0) and the Polyak average."""
  config = _config()
  assert config.model.generator_dropout == 0.0
  config.loss.update(embedding=1.0, segmentation=100.0, generator=1.0)
  config.data.ignore_label = 255
  method, batch = _batch(config, 2, seed=3)
  params = _random_params(method.model, 2, batch['gray'], batch['ab_small'])
  state = base.TrainState(
      step=jnp.zeros((), jnp.int32), params={'model': params},
      opt_state={'model': method.optimizer.init(params)},
      model_state={'ema': params})
  new_state, metrics = _run_jitted(method.train_step, state, batch,
                                   jax.random.PRNGKey(0))

  as_dict = _as_dict(config)
  net = transfer(params, peer.build(as_dict))
  trainer = peer.Trainer(as_dict, net)
  loss, terms, grad_norm = trainer.step(
      {key: _nchw(value) for key, value in batch.items()})
  np.testing.assert_allclose(float(loss), metrics['loss'], rtol=1e-5)
  to_bits = lambda nll: nll / (2 * math.log(2.0))
  np.testing.assert_allclose(to_bits(float(terms['nll_embedding'])),
                             metrics['bits_per_dim_embedding'], rtol=1e-5)
  np.testing.assert_allclose(to_bits(float(terms['nll_generator'])),
                             metrics['bits_per_dim_generator'], rtol=1e-5)
  np.testing.assert_allclose(float(terms['segmentation']),
                             metrics['loss_segmentation'], rtol=1e-5)
  np.testing.assert_allclose(float(grad_norm), metrics['grad_norm'],
                             rtol=1e-4)
  # Adam's moments after the step, elementwise: mu = (1 - b1) g and
  # nu = (1 - b2) g^2 (the gradients of every tensor, and b1, b2).
  adam = optax.tree_utils.tree_get(new_state.opt_state['model'],
                                   'ScaleByAdamState')
  jax_mu = transfer(adam.mu, peer.build(as_dict)).state_dict()
  jax_nu = transfer(adam.nu, peer.build(as_dict)).state_dict()
  new_params = transfer(new_state.params['model'],
                        peer.build(as_dict)).state_dict()
  new_ema = transfer(new_state.model_state['ema'],
                     peer.build(as_dict)).state_dict()
  old_params = transfer(params, peer.build(as_dict)).state_dict()
  lr, decay = config.optimizer.learning_rate, config.model.ema_decay
  names = [name for name, _ in net.named_parameters()]
  assert len(names) == len(trainer.params) == len(trainer.ema)
  large, total = 0, 0
  for name, param, ema in zip(names, trainer.params, trainer.ema):
    moments = trainer.optimizer.state[param]
    _assert_close(moments['exp_avg'], jax_mu[name], f'{name} mu')
    _assert_close(moments['exp_avg_sq'], jax_nu[name], f'{name} nu')
    # Adam's first update is -lr g / (|g| + eps) (about -lr sign(g)):
    # equal where |g| >> eps; where |g| is near eps = 1e-8 float rounding
    # of g moves it by up to ~1% of lr, so those few are left out.
    p, grad = param.detach().numpy(), np.abs(param.grad.numpy())
    clear = grad > 1e-6
    large, total = large + clear.sum(), total + clear.size
    np.testing.assert_allclose(p[clear], new_params[name].numpy()[clear],
                               rtol=0, atol=1e-3 * lr, err_msg=name)
    assert np.all(np.abs(p - old_params[name].numpy()) <= 1.001 * lr), name
    # Polyak: the average moved by (1 - decay) of the step.
    np.testing.assert_allclose(
        ema.numpy(), decay * old_params[name].numpy() + (1 - decay) * p,
        rtol=0, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(ema.numpy()[clear],
                               new_ema[name].numpy()[clear], rtol=0,
                               atol=1e-3 * lr, err_msg=name)
  assert large > 0.97 * total, (large, total)


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_cli_prints_one_json_line(dtype):
  config = _config()
  result = subprocess.run(
      [sys.executable, PEER, f'--config_json={config.to_json()}',
       '--batch_size=2', '--steps=1', '--warmup=0', f'--dtype={dtype}'],
      capture_output=True, text=True, check=False, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 1, result.stdout
  report = json.loads(lines[0])
  assert report['params'] == {'model': EXPECTED_COUNTS['tiny']}
  assert report['params'] == methods.get_method(config).describe(
      methods.get_method(config).batch_spec(1))
  assert math.isfinite(report['loss']) and report['loss'] > 0
  assert report['dtype'] == dtype and report['device'] == 'cpu'
  assert report['peak_device_mb'] is None
  for key in ('images_per_s', 'step_s', 'peak_rss_mb', 'threads', 'torch'):
    assert key in report
