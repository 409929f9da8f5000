"""colorjax.pretrained against PyTorch references with random weights.

torchvision cannot be imported here (its PyPI wheels are CUDA builds), so
the torchvision networks are written below in plain PyTorch following
torchvision's source, with state-dict keys equal to torchvision's
(`features.0.weight` ... `classifier.6.weight`; `conv1`, `bn1`,
`layer1.0.downsample.1.running_var`, ..., `fc`). SE-ResNeXt50 comes from
timm. Every BatchNorm gets random running statistics and affine parameters,
so a wrong mapping of any tensor (or a wrong eps) changes the output.
"""

import hashlib
import os

import jax
import numpy as np
import pytest
import torch
from torch import nn

from colorjax import pretrained
from colorjax.models import vgg
import torch_random

RTOL = 1e-4   # relative to max |reference output|


# ---------------------------------------------------------------------------
# Plain-PyTorch references with torchvision's module names.

VGG16_CFG = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M',
             512, 512, 512, 'M', 512, 512, 512, 'M']


class TorchVGG(nn.Module):
  """torchvision.models.vgg.VGG with make_layers(cfgs['D'], batch_norm);
  `cfg` / `fc` other widths in the same layout (small test files)."""

  def __init__(self, batch_norm=False, num_classes=1000, cfg=None,
               fc=(4096, 4096)):
    super().__init__()
    layers, in_channels = [], 3
    for v in cfg or VGG16_CFG:
      if v == 'M':
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
      else:
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
          layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    self.features = nn.Sequential(*layers)
    self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    self.classifier = nn.Sequential(
        nn.Linear(in_channels * 7 * 7, fc[0]), nn.ReLU(True),
        nn.Dropout(p=0.5), nn.Linear(fc[0], fc[1]), nn.ReLU(True),
        nn.Dropout(p=0.5), nn.Linear(fc[1], num_classes))

  def forward(self, x):
    x = self.avgpool(self.features(x))
    return self.classifier(torch.flatten(x, 1))


class TorchBottleneck(nn.Module):
  """torchvision.models.resnet.Bottleneck (stride on conv2: ResNet v1.5;
  `dilation` as resnet's replace_stride_with_dilation sets it)."""
  expansion = 4

  def __init__(self, inplanes, planes, stride=1, downsample=None,
               dilation=1):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation,
                           dilation=dilation, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    return self.relu(out + identity)


class TorchBasicBlock(nn.Module):
  """torchvision.models.resnet.BasicBlock (ResNet-18/34)."""
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None,
               dilation=1):
    super().__init__()
    assert dilation == 1
    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=1,
                           bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.relu = nn.ReLU(inplace=True)
    self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return self.relu(out + identity)


class TorchResNet(nn.Module):
  """torchvision.models.resnet.ResNet(block, layers), with its
  replace_stride_with_dilation (DeepLab's dilated layer3/layer4)."""

  def __init__(self, layers, num_classes=1000,
               replace_stride_with_dilation=(False, False, False),
               block=TorchBottleneck):
    super().__init__()
    self.block = block
    self.inplanes = 64
    self.dilation = 1
    self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3,
                           bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    self.layer1 = self._make_layer(64, layers[0])
    self.layer2 = self._make_layer(128, layers[1], 2,
                                   replace_stride_with_dilation[0])
    self.layer3 = self._make_layer(256, layers[2], 2,
                                   replace_stride_with_dilation[1])
    self.layer4 = self._make_layer(512, layers[3], 2,
                                   replace_stride_with_dilation[2])
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = nn.Linear(512 * block.expansion, num_classes)

  def _make_layer(self, planes, blocks, stride=1, dilate=False):
    downsample = None
    previous_dilation = self.dilation
    if dilate:
      self.dilation *= stride
      stride = 1
    width = planes * self.block.expansion
    if stride != 1 or self.inplanes != width:
      downsample = nn.Sequential(
          nn.Conv2d(self.inplanes, width, 1, stride, bias=False),
          nn.BatchNorm2d(width))
    layers = [self.block(self.inplanes, planes, stride, downsample,
                         previous_dilation)]
    self.inplanes = width
    layers += [self.block(self.inplanes, planes, dilation=self.dilation)
               for _ in range(1, blocks)]
    return nn.Sequential(*layers)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(torch.flatten(self.avgpool(x), 1))


def _timm_seresnext(num_classes=1000):
  import torchvision_stub  # pylint: disable=g-import-not-at-top,unused-import
  import timm  # pylint: disable=g-import-not-at-top
  return timm.create_model('seresnext50_32x4d', pretrained=False,
                           num_classes=num_classes)


REFERENCES = {
    'vgg16': lambda n: TorchVGG(False, n),
    'vgg16_bn': lambda n: TorchVGG(True, n),
    'resnet18': lambda n: TorchResNet([2, 2, 2, 2], n,
                                      block=TorchBasicBlock),
    'resnet34': lambda n: TorchResNet([3, 4, 6, 3], n,
                                      block=TorchBasicBlock),
    'resnet50': lambda n: TorchResNet([3, 4, 6, 3], n),
    'resnet101': lambda n: TorchResNet([3, 4, 23, 3], n),
    'seresnext50_32x4d': _timm_seresnext,
}


def _reference(name, num_classes=1000, seed=0):
  torch.manual_seed(seed)
  model = REFERENCES[name](num_classes)
  return torch_random.randomise(model, seed + 1)


def _assert_same_outputs(name, model, path, size=64):
  module, variables = pretrained.load(name, path)
  x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype(
      np.float32)
  got = np.asarray(jax.jit(module.apply)(variables, x))
  with torch.no_grad():
    want = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  assert got.shape == want.shape
  error = np.max(np.abs(got - want)) / np.max(np.abs(want))
  assert error < RTOL, f'{name}: relative error {error:.3g}'
  return module, variables


@pytest.mark.parametrize('name', ['vgg16', 'vgg16_bn', 'resnet18',
                                  'resnet34', 'resnet50', 'resnet101',
                                  'seresnext50_32x4d'])
def test_converted_weights_reproduce_reference_outputs(name, tmp_path):
  model = _reference(name)
  path = str(tmp_path / f'{name}.pth')
  torch.save(model.state_dict(), path)
  _assert_same_outputs(name, model, path)


def test_safetensors_file_loads(tmp_path):
  from safetensors.torch import save_file  # pylint: disable=g-import-not-at-top
  model = _reference('seresnext50_32x4d', seed=1)
  path = str(tmp_path / 'model.safetensors')
  save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
  _assert_same_outputs('seresnext50_32x4d', model, path)


@pytest.mark.parametrize('name', ['resnet18', 'resnet50'])
def test_places365_head_read_from_file(name, tmp_path):
  """365 classes from fc.weight; the CSAIL release's {'state_dict': ...}
  with DataParallel's 'module.' prefix (resnet18/50_places365.pth.tar)."""
  model = _reference(name, num_classes=365, seed=2)
  path = str(tmp_path / f'{name}_places365.pth.tar')
  torch.save({'epoch': 90, 'arch': name,
              'state_dict': {f'module.{k}': v
                             for k, v in model.state_dict().items()}}, path)
  module, _ = _assert_same_outputs(name, model, path)
  assert module.num_classes == 365


def test_vgg_num_classes_and_adaptive_pool_on_odd_sizes(tmp_path):
  """A 365-way VGG head, on an input whose last map (3x3) pools to 7x7 in
  overlapping PyTorch bins."""
  model = _reference('vgg16_bn', num_classes=365, seed=3)
  path = str(tmp_path / 'vgg16_bn_places365.pth')
  torch.save(model.state_dict(), path)
  module, _ = _assert_same_outputs('vgg16_bn', model, path, size=96)
  assert module.num_classes == 365


def test_adaptive_avg_pool_matches_torch():
  rng = np.random.default_rng(0)
  for h, w in [(1, 1), (2, 3), (5, 9), (7, 7), (13, 10), (14, 21)]:
    x = rng.normal(size=(2, h, w, 4)).astype(np.float32)
    got = np.asarray(vgg.adaptive_avg_pool(x, (7, 7)))
    want = nn.functional.adaptive_avg_pool2d(
        torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), (7, 7)).numpy()
    np.testing.assert_allclose(got, want.transpose(0, 2, 3, 1), atol=1e-6)


def _resnet50_state():
  return {k: v.numpy() for k, v in _reference('resnet50').state_dict().items()}


def test_mismatched_file_gives_one_clear_error(tmp_path):
  state = _resnet50_state()
  # A resnet50 file loaded as resnet101: layer3.6 ... are missing.
  path = str(tmp_path / 'resnet50.npz')
  np.savez(path, **state)
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r'torchvision resnet101.*missing keys: '
                           r'layer3\.10\.bn1\.bias') as error:
    pretrained.load('resnet101', path)
  assert isinstance(error.value, ValueError)
  # A missing tensor, an extra one and a wrong shape, all in one message.
  broken = dict(state)
  del broken['layer2.1.bn2.running_var']
  broken['head.extra.weight'] = np.zeros(3, np.float32)
  broken['layer4.2.conv3.weight'] = np.zeros((2048, 512, 3, 3), np.float32)
  np.savez(path, **broken)
  with pytest.raises(pretrained.CheckpointMismatchError) as error:
    pretrained.load('resnet50', path)
  message = str(error.value)
  for part in ('torchvision resnet50', 'missing keys: '
               'layer2.1.bn2.running_var', 'unexpected keys (not used): '
               'head.extra.weight', 'shape mismatches: layer4.2.conv3.weight '
               '(2048, 512, 3, 3)'):
    assert part in message, message
  # One tensor too many is enough for the error.
  np.savez(path, **state, **{'fc.extra': np.zeros(3, np.float32)})
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r'resnet50: unexpected keys \(not used\): fc\.extra'):
    pretrained.load('resnet50', path)
  # A file without the classifier the registry reads num_classes from.
  np.savez(path, **{k: v for k, v in state.items() if k.startswith('conv')})
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match="vgg16.*'classifier.6.weight'"):
    pretrained.load('vgg16', path)


def test_hash_prefix_in_file_name_is_checked(tmp_path):
  model = _reference('resnet50')
  path = str(tmp_path / 'model.pth')
  torch.save(model.state_dict(), path)
  with open(path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  right = str(tmp_path / f'resnet50-{digest[:8]}.pth')
  wrong_prefix = ('0' if digest[0] != '0' else '1') + digest[1:8]
  wrong = str(tmp_path / f'resnet50-{wrong_prefix}.pth')
  os.link(path, right)
  os.link(path, wrong)
  assert pretrained.hash_prefix(right) == digest[:8]
  assert pretrained.hash_prefix('pt_inception-2015-12-05-6726825d.pth') == (
      '6726825d')
  assert pretrained.hash_prefix('resnet50_places365.pth.tar') is None
  assert pretrained.check_hash(right) == digest
  pretrained.load('resnet50', right)
  with pytest.raises(pretrained.HashMismatchError,
                     match=f'does not start with {wrong_prefix}') as error:
    pretrained.load('resnet50', wrong)
  assert isinstance(error.value, ValueError)
  pretrained.load('resnet50', wrong, verify_hash=False)


def test_names_and_unknown_name():
  assert set(pretrained.names()) >= {'seresnext50_32x4d', 'vgg16',
                                     'vgg16_bn', 'resnet50', 'resnet101'}
  with pytest.raises(KeyError, match='unknown pretrained network'):
    pretrained.load('alexnet', 'unused.pth')


# ---------------------------------------------------------------------------
# LPIPS v0.1 (AlexNet): a plain-PyTorch reference following the lpips
# package (lpips/pretrained_networks.py `alexnet`, lpips/lpips.py `LPIPS`),
# module names chosen so its state dict has the real file's keys.

LPIPS_CHANNELS = [64, 192, 384, 256, 256]


class TorchScalingLayer(nn.Module):

  def __init__(self):
    super().__init__()
    self.register_buffer(
        'shift', torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1))
    self.register_buffer(
        'scale', torch.tensor([.458, .448, .450]).view(1, 3, 1, 1))

  def forward(self, x):
    return (x - self.shift) / self.scale


class TorchNetLinLayer(nn.Module):

  def __init__(self, channels):
    super().__init__()
    self.model = nn.Sequential(nn.Dropout(),
                               nn.Conv2d(channels, 1, 1, 1, 0, bias=False))


class TorchLPIPSAlexNet(nn.Module):
  """torchvision alexnet().features split into the five lpips slices."""

  def __init__(self):
    super().__init__()
    features = [
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    ]
    bounds = [(0, 2), (2, 5), (5, 8), (8, 10), (10, 12)]
    for k, (start, end) in enumerate(bounds, 1):
      part = nn.Sequential()
      for i in range(start, end):
        part.add_module(str(i), features[i])
      setattr(self, f'slice{k}', part)

  def forward(self, x):
    outputs = []
    for k in range(1, 6):
      x = getattr(self, f'slice{k}')(x)
      outputs.append(x)
    return outputs


def _torch_normalize_tensor(x, eps=1e-10):
  return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + eps)


class TorchLPIPS(nn.Module):
  """lpips.LPIPS(net='alex', version='0.1', lpips=True, spatial=False)."""

  def __init__(self):
    super().__init__()
    self.scaling_layer = TorchScalingLayer()
    self.net = TorchLPIPSAlexNet()
    self.lin0 = TorchNetLinLayer(LPIPS_CHANNELS[0])
    self.lin1 = TorchNetLinLayer(LPIPS_CHANNELS[1])
    self.lin2 = TorchNetLinLayer(LPIPS_CHANNELS[2])
    self.lin3 = TorchNetLinLayer(LPIPS_CHANNELS[3])
    self.lin4 = TorchNetLinLayer(LPIPS_CHANNELS[4])
    # As in lpips.py: the same layers again, so the state dict repeats them
    # as lins.K.model.1.weight.
    self.lins = nn.ModuleList([self.lin0, self.lin1, self.lin2, self.lin3,
                               self.lin4])

  def forward(self, in0, in1):
    outs0 = self.net(self.scaling_layer(in0))
    outs1 = self.net(self.scaling_layer(in1))
    val = 0
    for k in range(5):
      diff = (_torch_normalize_tensor(outs0[k]) -
              _torch_normalize_tensor(outs1[k])) ** 2
      val = val + self.lins[k].model(diff).mean([2, 3], keepdim=True)
    return val


def _lpips_reference(seed=0):
  torch.manual_seed(seed)
  model = TorchLPIPS()
  with torch.no_grad():
    for conv in model.net.modules():
      if isinstance(conv, nn.Conv2d):
        conv.bias.uniform_(-0.1, 0.1)
    for lin in model.lins:
      lin.model[1].weight.uniform_(0.01, 1.0)   # non-negative, as trained
  return model.eval()


def _lpips_pair(rng, h, w, n=3):
  x = rng.uniform(-1, 1, size=(n, h, w, 3)).astype(np.float32)
  y = np.clip(x + rng.normal(scale=0.3, size=x.shape), -1, 1).astype(
      np.float32)
  return x, y


def _torch_nchw(x):
  return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def test_lpips_alex_state_dict_keys():
  keys = set(_lpips_reference().state_dict())
  assert {'scaling_layer.shift', 'scaling_layer.scale', 'net.slice1.0.weight',
          'net.slice2.3.bias', 'net.slice3.6.weight', 'net.slice4.8.weight',
          'net.slice5.10.bias', 'lin0.model.1.weight', 'lin4.model.1.weight',
          'lins.4.model.1.weight'} <= keys
  assert len(keys) == 2 + 10 + 5 + 5


def test_lpips_alex_matches_reference(tmp_path):
  model = _lpips_reference()
  path = str(tmp_path / 'lpips_alex.pth')
  torch.save(model.state_dict(), path)
  module, variables = pretrained.load('lpips_alex', path)
  apply = jax.jit(module.apply)
  rng = np.random.default_rng(4)
  for h, w in [(64, 64), (50, 70)]:
    x, y = _lpips_pair(rng, h, w)
    got = np.asarray(apply(variables, x, y))
    with torch.no_grad():
      want = model(_torch_nchw(x), _torch_nchw(y)).numpy()
    assert want.shape == (3, 1, 1, 1) and got.shape == (3,)
    want = want.reshape(-1)
    assert np.all(want > 0)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    # A distance from an image to itself is 0: exactly when run eagerly;
    # under jit XLA:CPU may round the two (identical) branches differently.
    np.testing.assert_array_equal(np.asarray(module.apply(variables, x, x)),
                                  0.0)
    assert np.max(np.abs(np.asarray(apply(variables, x, x)))) < 1e-12


def test_lpips_alex_optional_entries_and_mismatches(tmp_path):
  model = _lpips_reference(seed=1)
  state = {k: v.numpy() for k, v in model.state_dict().items()}
  x, y = _lpips_pair(np.random.default_rng(5), 64, 64, n=2)
  with torch.no_grad():
    want = model(_torch_nchw(x), _torch_nchw(y)).numpy().reshape(-1)
  path = str(tmp_path / 'lpips_alex.npz')
  # Without the scaling buffers and the lins.K duplicates (the released
  # weights/v0.1/alex.pth + torchvision backbone, put together by hand).
  np.savez(path, **{k: v for k, v in state.items()
                    if not k.startswith(('scaling_layer.', 'lins.'))})
  module, variables = pretrained.load('lpips_alex', path)
  np.testing.assert_allclose(np.asarray(module.apply(variables, x, y)), want,
                             rtol=1e-4)
  # Missing lin4 (both copies): one clear error naming the key.
  np.savez(path, **{k: v for k, v in state.items()
                    if not k.startswith(('lin4.', 'lins.4.'))})
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r'lpips lpips_alex.*missing keys: '
                           r'lin4\.model\.1\.weight'):
    pretrained.load('lpips_alex', path)
  # A classifier file is not an LPIPS file.
  np.savez(path, **_resnet50_state())
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r'lpips_alex.*missing keys: lin0\.model\.1\.weight'
                           r'.*unexpected keys'):
    pretrained.load('lpips_alex', path)
  # Wrong scaling constants, or duplicates that disagree.
  bad = dict(state)
  bad['scaling_layer.scale'] = np.ones((1, 3, 1, 1), np.float32)
  np.savez(path, **bad)
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r'scaling_layer\.scale'):
    pretrained.load('lpips_alex', path)
  bad = dict(state)
  bad['lins.2.model.1.weight'] = bad['lins.2.model.1.weight'] * 2
  np.savez(path, **bad)
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r'lins\.2\.model\.1\.weight differs'):
    pretrained.load('lpips_alex', path)


def test_lpips_alex_gradient_is_finite(tmp_path):
  model = _lpips_reference(seed=2)
  path = str(tmp_path / 'lpips_alex.pth')
  torch.save(model.state_dict(), path)
  module, variables = pretrained.load('lpips_alex', path)
  x, y = _lpips_pair(np.random.default_rng(6), 64, 64, n=2)
  grad = jax.grad(lambda a: module.apply(variables, a, y).sum())(x)
  assert np.all(np.isfinite(np.asarray(grad)))
  grad = jax.grad(lambda a: module.apply(variables, a, x).sum())(x)
  np.testing.assert_array_equal(np.asarray(grad), 0.0)
