"""The PyTorch peer of the train benchmark (benchmarks/torch_chromacmc.py) is
the JAX ChromaCMC model: equal parameter counts at every scale of
configs/chromacmc.py, and equal outputs once the JAX weights are copied
into the peer, tensor by tensor with the layout transposes written out here
(not taken from colorjax's own timm converter)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torchvision_stub  # pylint: disable=unused-import
import torch  # pylint: disable=g-bad-import-order
import torch_chromacmc as peer
import chromacmc as chromacmc_config   # configs/ (conftest puts it on the path)

from colorjax import methods

# Parameter counts printed by
# `python -m colorjax.benchmark model --config=configs/chromacmc.py[:VARIANT]`
# (generator, discriminator); the paper's are in configs/chromacmc.py.
EXPECTED_COUNTS = {'tiny': (1_258_241, 9_329),
                   'demo': (3_980_065, 166_945),
                   'voc': (86_164_207, 2_762_049)}

BN = {'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean',
      'var': 'running_var'}


def _config(variant):
  return chromacmc_config.get_config(variant)


def _jax_models(config):
  method = methods.get_method(config)
  return method, method.generator(False), method.discriminator(False)


def _torch_models(config, device=None):
  """Built as the train benchmark builds them: from config.to_json()."""
  as_json = json.loads(config.to_json())
  data = as_json['data']
  with torch.device(device or 'cpu'):
    generator = peer.Generator(as_json['model'], data['num_classes'],
                               data['image_size'])
    discriminator = peer.Discriminator(
        as_json['model']['discriminator_channels'])
  return generator, discriminator


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def _jax_counts(config):
  """Parameter counts from shapes only (jax.eval_shape: nothing allocated)."""
  method, generator, discriminator = _jax_models(config)
  batch = method.batch_spec(1)
  key = jax.random.PRNGKey(0)
  g = jax.eval_shape(generator.init, key, batch['gray'])
  d = jax.eval_shape(discriminator.init, key, batch['gray'], batch['ab'])
  return _count(g['params']), _count(d['params'])


@pytest.mark.parametrize('variant', ['tiny', 'demo', 'voc'])
def test_parameter_counts_equal(variant):
  config = _config(variant)
  # The peer on torch's meta device: shapes only, also at the paper's scale.
  generator, discriminator = _torch_models(config, device='meta')
  torch_counts = (sum(p.numel() for p in generator.parameters()),
                  sum(p.numel() for p in discriminator.parameters()))
  jax_counts = _jax_counts(config)
  assert torch_counts == jax_counts
  assert jax_counts == EXPECTED_COUNTS[variant]


def test_peer_without_the_branch_is_the_same_trunk():
  """Table 2's no-branch ablation (model.use_branch=False): the peer
  drops the SE-ResNeXt50, the FRBs and the global fusion as the JAX model
  does, so `benchmark train --set=model.use_branch=False` compares the same
  network."""
  config = _config('voc')
  config.model.use_branch = False
  generator, discriminator = _torch_models(config, device='meta')
  torch_counts = (sum(p.numel() for p in generator.parameters()),
                  sum(p.numel() for p in discriminator.parameters()))
  assert torch_counts == _jax_counts(config)
  assert torch_counts[0] == 54_550_807          # the U-Net trunk and heads


# --- Weight transfer JAX -> PyTorch, one entry per torch tensor. -------------

def _conv(kernel):
  """nn.Conv HWIO -> torch Conv2d OIHW. The grouped conv
  (layers.GroupedConv: [kh, kw, C_in / groups, C_out]) maps the same way to
  torch's [C_out, C_in / groups, kh, kw]; both order the output channels
  group by group."""
  return np.transpose(kernel, (3, 2, 0, 1))


def _upconv(kernel):
  """layers.UpConv's kernel is the HWIO kernel of the strided conv it is the
  adjoint of: [kh, kw, C_out, C_in] with C_out = the UpConv's features and
  C_in = its input's channels. ConvTranspose2d's weight [C_in, C_out, kh, kw]
  is the same strided conv's OIHW weight (PyTorch defines the transposed
  conv as that adjoint too), so no spatial flip."""
  return np.transpose(kernel, (3, 2, 0, 1))


def _dense(kernel):
  return kernel.T          # [in, out] -> Linear's [out, in]


def _same(x):
  return x


class _Mapping:
  """torch key -> (collection, jax path, converter)."""

  def __init__(self):
    self.entries = {}

  def add(self, torch_key, collection, path, convert=_same):
    assert torch_key not in self.entries, torch_key
    self.entries[torch_key] = (collection, tuple(path.split('/')), convert)

  def conv(self, torch_prefix, jax_prefix, bias, convert=_conv):
    self.add(f'{torch_prefix}.weight', 'params', f'{jax_prefix}/kernel',
             convert)
    if bias:
      self.add(f'{torch_prefix}.bias', 'params', f'{jax_prefix}/bias')

  def bn(self, torch_prefix, jax_prefix):
    for jax_name, torch_name in BN.items():
      collection = 'params' if jax_name in ('scale', 'bias') else 'batch_stats'
      self.add(f'{torch_prefix}.{torch_name}', collection,
               f'{jax_prefix}/{jax_name}')


def _generator_mapping(model):
  m = _Mapping()
  depth = len(model.trunk_channels)
  for i in range(depth):
    m.conv(f'downs.{i}', f'down{i + 1}', bias=i in (0, depth - 1))
    if 0 < i < depth - 1:
      m.bn(f'down_norms.{i}', f'down{i + 1}_bn')
  # The SE-ResNeXt branch: timm's module names.
  m.conv('branch.conv1', 'branch/conv1', bias=False)
  m.bn('branch.bn1', 'branch/bn1')
  for stage, count in enumerate(model.branch_blocks):
    for index in range(count):
      t = f'branch.layer{stage + 1}.{index}'
      j = f'branch/layer{stage + 1}_{index}'
      for k in (1, 2, 3):    # conv2 is the 32-group 3x3
        m.conv(f'{t}.conv{k}', f'{j}/conv{k}', bias=False)
        m.bn(f'{t}.bn{k}', f'{j}/bn{k}')
      m.conv(f'{t}.se.fc1', f'{j}/se_fc1', bias=True)
      m.conv(f'{t}.se.fc2', f'{j}/se_fc2', bias=True)
      if index == 0:
        m.conv(f'{t}.downsample.0', f'{j}/downsample_conv', bias=False)
        m.bn(f'{t}.downsample.1', f'{j}/downsample_bn')
  m.conv('branch.fc', 'branch/fc', bias=True, convert=_dense)
  for name in ('frb_high', 'frb_low'):
    m.conv(f'{name}.0', f'{name}/conv', bias=False)
    m.bn(f'{name}.1', f'{name}/bn')
  m.conv('fusion', 'global_fusion', bias=True)
  for i in range(depth):
    m.conv(f'ups.{i}', f'up{i + 1}', bias=False, convert=_upconv)
    m.bn(f'up_norms.{i}', f'up{i + 1}_bn')
  m.conv('ab_head', 'ab_head', bias=True)
  m.conv('seg_head', 'segmentation_head', bias=True)
  return m


def _discriminator_mapping(model):
  m = _Mapping()
  index = 0    # position in peer.Discriminator.net (conv, [BN,] LeakyReLU)
  for i in range(len(model.discriminator_channels)):
    m.conv(f'net.{index}', f'conv{i + 1}', bias=i == 0)
    index += 1
    if i > 0:
      m.bn(f'net.{index}', f'bn{i + 1}')
      index += 1
    index += 1
  m.conv(f'net.{index}', 'patch_logits', bias=True)
  return m


def _leaf_paths(variables):
  paths = set()
  for collection in ('params', 'batch_stats'):
    flat = jax.tree_util.tree_flatten_with_path(variables.get(collection, {}))
    for path, _ in flat[0]:
      paths.add((collection, tuple(p.key for p in path)))
  return paths


def _transfer(variables, module, mapping):
  """Copies every JAX tensor into the torch module; every torch tensor
  (but BN's num_batches_tracked) and every JAX tensor is used exactly once."""
  state = module.state_dict()
  torch_keys = {k for k in state if not k.endswith('num_batches_tracked')}
  assert set(mapping.entries) == torch_keys, (
      sorted(set(mapping.entries) ^ torch_keys)[:8])
  used = {(c, p) for c, p, _ in mapping.entries.values()}
  assert used == _leaf_paths(variables), sorted(
      used ^ _leaf_paths(variables))[:8]
  for key, (collection, path, convert) in mapping.entries.items():
    value = variables[collection]
    for name in path:
      value = value[name]
    value = np.array(convert(np.asarray(value)), order='C')  # own, writable
    assert value.shape == tuple(state[key].shape), (key, value.shape,
                                                    state[key].shape)
    state[key] = torch.from_numpy(value)
  module.load_state_dict(state, strict=True)
  return module.eval()


def _random_variables(module, seed, *inputs):
  """Random values of the module's variables, shaped by jax.eval_shape (no
  init run, which costs more than the forward pass here): kernels scaled by
  1/sqrt(fan-in), and non-trivial BN statistics, BN affines and biases (init
  has zeros and ones there), so that a wrong mapping of any tensor changes
  the output."""
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)
  rng = np.random.default_rng(seed)

  def draw(path, x):
    name = path[-1].key
    if name == 'kernel':
      value = rng.normal(size=x.shape) / np.sqrt(np.prod(x.shape[:-1]))
    elif name in ('scale', 'var'):
      value = rng.uniform(0.5, 1.5, x.shape)
    else:
      assert name in ('bias', 'mean'), path
      value = rng.uniform(-0.2, 0.2, x.shape)
    return jnp.asarray(value, x.dtype)
  return jax.tree_util.tree_map_with_path(draw, shapes)


def _assert_close(actual, expected, name):
  """Within 1e-4 of the output's scale (max |expected|), elementwise."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
  assert np.all(np.isfinite(expected)), f'{name}: PyTorch output not finite'
  scale = float(np.max(np.abs(expected)))
  assert scale > 0, name
  error = float(np.max(np.abs(actual - expected)))
  assert error <= 1e-4 * scale, (
      f'{name}: max error {error:.3g}, output scale {scale:.3g}')


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def _nhwc(t):
  return np.transpose(t.detach().numpy(), (0, 2, 3, 1))


@pytest.mark.parametrize('upconv, grouped_conv', [('adjoint', 'matmul'),
                                                   ('xla', 'xla')])
def test_transferred_weights_give_equal_outputs(upconv, grouped_conv):
  """Eval mode (BN with the running statistics) at the tiny scale, with
  both implementations of the transposed and the grouped conv."""
  config = _config('tiny')
  config.model.upconv, config.model.grouped_conv = upconv, grouped_conv
  _, generator, discriminator = _jax_models(config)
  size = config.data.image_size
  rng = np.random.default_rng(0)
  gray = rng.uniform(-1, 1, (2, size, size, 1)).astype(np.float32)
  ab = rng.uniform(-0.6, 0.6, (2, size, size, 2)).astype(np.float32)

  g_vars = _random_variables(generator, 1, gray)
  d_vars = _random_variables(discriminator, 2, gray, ab)
  jax_out = jax.jit(generator.apply)(g_vars, gray)
  jax_patch = jax.jit(discriminator.apply)(d_vars, gray, ab)

  torch_g, torch_d = _torch_models(config)
  _transfer(g_vars, torch_g, _generator_mapping(config.model))
  _transfer(d_vars, torch_d, _discriminator_mapping(config.model))
  with torch.no_grad():
    torch_ab, torch_seg = torch_g(_nchw(gray))
    torch_patch = torch_d(_nchw(gray), _nchw(ab))

  # The outputs carry signal: ab is not saturated by tanh, logits vary.
  ab_out = np.asarray(jax_out['ab'])
  assert 0.05 < np.std(ab_out) and np.mean(np.abs(ab_out) > 0.99) < 0.05
  assert np.std(np.asarray(jax_out['segmentation'])) > 0.1
  patches = size // 2 ** len(config.model.discriminator_channels)
  assert jax_patch.shape == (2, patches, patches, 1)
  _assert_close(jax_out['ab'], _nhwc(torch_ab), 'ab')
  _assert_close(jax_out['segmentation'], _nhwc(torch_seg), 'segmentation')
  _assert_close(jax_patch, _nhwc(torch_patch), 'discriminator')
