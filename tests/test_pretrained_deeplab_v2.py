"""deeplabv2_resnet101 (paper 004's reference segmenter) against a plain
PyTorch reference.

The reference below is written in plain PyTorch following
kazuto1011/deeplab-pytorch (libs/models/resnet.py `_ConvBnReLU`,
`_Bottleneck`, `_ResLayer`, `_Stem`; deeplabv2.py `_ASPP`, `DeepLabV2`;
msc.py `MSC`) module by module, with its module names, so its state-dict
keys are the published file's (`base.layer2.block1.reduce.conv.weight`).
Its widths are a parameter (64 in the file) so the forward test runs on a
small network; the parameter count is checked at the file's size on shapes
alone. Every BatchNorm gets random statistics and affine parameters, so a
wrong mapping of any tensor changes the output.
"""

import jax
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from colorjax import pretrained
from colorjax.models import deeplab_v2
from colorjax.pretrained import deeplab
import torch_random


class TorchConvBnReLU(nn.Sequential):
  def __init__(self, cin, cout, kernel, stride, padding, dilation, relu=True):
    super().__init__()
    self.add_module('conv', nn.Conv2d(cin, cout, kernel, stride, padding,
                                      dilation, bias=False))
    self.add_module('bn', nn.BatchNorm2d(cout, eps=1e-5))
    if relu:
      self.add_module('relu', nn.ReLU())


class TorchBottleneck(nn.Module):
  def __init__(self, cin, cout, stride, dilation, downsample):
    super().__init__()
    mid = cout // 4
    self.reduce = TorchConvBnReLU(cin, mid, 1, stride, 0, 1)
    self.conv3x3 = TorchConvBnReLU(mid, mid, 3, 1, dilation, dilation)
    self.increase = TorchConvBnReLU(mid, cout, 1, 1, 0, 1, relu=False)
    self.shortcut = (TorchConvBnReLU(cin, cout, 1, stride, 0, 1, relu=False)
                     if downsample else nn.Identity())

  def forward(self, x):
    h = self.increase(self.conv3x3(self.reduce(x)))
    return F.relu(h + self.shortcut(x))


class TorchResLayer(nn.Sequential):
  def __init__(self, count, cin, cout, stride, dilation):
    super().__init__()
    for i in range(count):
      self.add_module(f'block{i + 1}', TorchBottleneck(
          cin if i == 0 else cout, cout, stride if i == 0 else 1, dilation,
          i == 0))


class TorchStem(nn.Sequential):
  def __init__(self, cout):
    super().__init__()
    self.add_module('conv1', TorchConvBnReLU(3, cout, 7, 2, 3, 1))
    self.add_module('pool', nn.MaxPool2d(3, 2, 1, ceil_mode=True))


class TorchASPP(nn.Module):
  def __init__(self, cin, cout, rates):
    super().__init__()
    for i, rate in enumerate(rates):
      self.add_module(f'c{i}', nn.Conv2d(cin, cout, 3, 1, padding=rate,
                                         dilation=rate, bias=True))

  def forward(self, x):
    return sum(stage(x) for stage in self.children())


class TorchDeepLabV2(nn.Sequential):
  def __init__(self, classes, blocks, rates, width=64):
    super().__init__()
    ch = [width * 2 ** p for p in range(6)]
    self.add_module('layer1', TorchStem(ch[0]))
    self.add_module('layer2', TorchResLayer(blocks[0], ch[0], ch[2], 1, 1))
    self.add_module('layer3', TorchResLayer(blocks[1], ch[2], ch[3], 2, 1))
    self.add_module('layer4', TorchResLayer(blocks[2], ch[3], ch[4], 1, 2))
    self.add_module('layer5', TorchResLayer(blocks[3], ch[4], ch[5], 1, 4))
    self.add_module('aspp', TorchASPP(ch[5], classes, rates))


class TorchMSC(nn.Module):
  def __init__(self, base, scales=(0.5, 0.75)):
    super().__init__()
    self.base, self.scales = base, scales

  def forward(self, x):
    logits = self.base(x)
    size = logits.shape[2:]
    pyramid = [logits] + [
        F.interpolate(self.base(F.interpolate(
            x, scale_factor=p, mode='bilinear', align_corners=False)),
                      size=size, mode='bilinear', align_corners=False)
        for p in self.scales]
    return torch.max(torch.stack(pyramid), dim=0)[0]


def _reference(classes=5, blocks=(1, 2, 2, 1), width=4, seed=0,
               device=None):
  torch.manual_seed(seed)
  model = TorchMSC(TorchDeepLabV2(classes, blocks, (6, 12, 18, 24), width))
  if device == 'meta':
    return model.to('meta')
  return torch_random.randomise(model, seed + 1)


def test_parameter_count_at_the_files_size():
  """ResNet-101 + ASPP-L over 21 VOC classes, on shapes only."""
  model = _reference(21, deeplab_v2.BLOCKS, width=64, device='meta')
  want = sum(p.numel() for p in model.parameters())
  module = deeplab_v2.DeepLabV2(num_classes=21)
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0),
                          np.zeros((1, 65, 65, 3), np.float32))
  assert sum(x.size for x in jax.tree.leaves(shapes['params'])) == want
  # torchvision's ResNet-101 (44,549,160) less its fc, + four 3x3 ASPP convs.
  assert want == 44_549_160 - (2048 + 1) * 1000 + 4 * (2048 * 9 * 21 + 21)
  assert want == 44_048_532


@pytest.mark.parametrize('size,scales', [((67, 53), (0.5, 0.75)),
                                         ((64, 64), ())])
def test_converted_file_reproduces_the_reference(tmp_path, size, scales):
  """Odd sizes (the ceil-mode pool's overhanging window, MSC's floor sizes
  and scale-factor sampling); the MSC file's `base.` keys and a bare
  DeepLabV2 state dict; blocks and widths read from the file."""
  model = _reference()
  if not scales:
    model.scales = ()
  path = str(tmp_path / 'deeplabv2.pth')
  state = model.state_dict() if scales else model.base.state_dict()
  torch.save(state, path)
  module, variables = pretrained.load('deeplabv2_resnet101', path)
  assert (module.num_classes, tuple(module.blocks), module.width) == (
      5, (1, 2, 2, 1), 4)
  if not scales:
    module = module.clone(scales=())
  rgb = np.random.default_rng(1).uniform(
      0, 1, (2,) + size + (3,)).astype(np.float32)
  x = np.asarray(pretrained.input_transform('deeplabv2_resnet101')(rgb))
  np.testing.assert_allclose(x[0, 0, 0], rgb[0, 0, 0, ::-1] * 255
                             - np.array(deeplab_v2.MEAN_BGR), rtol=1e-6)
  got = np.asarray(jax.jit(module.apply)(variables, x))
  with torch.no_grad():
    want = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  want = want.transpose(0, 2, 3, 1)
  assert got.shape == want.shape
  error = np.max(np.abs(got - want)) / np.max(np.abs(want))
  assert error < 1e-4, error


def test_max_pool_ceil_mode_matches_torch():
  rng = np.random.default_rng(0)
  for h, w in [(1, 1), (2, 3), (5, 6), (8, 9), (33, 34)]:
    x = rng.normal(size=(1, h, w, 2)).astype(np.float32)
    got = np.asarray(deeplab_v2.max_pool_ceil(x))
    want = F.max_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                        3, 2, 1, ceil_mode=True).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(got, want)


def test_file_without_the_classes_says_so(tmp_path):
  path = str(tmp_path / 'not_deeplab.pth')
  torch.save({'conv.weight': torch.zeros(3, 3, 1, 1)}, path)
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=deeplab.V2_CLASSES_KEY.replace('.', r'\.')):
    pretrained.load('deeplabv2_resnet101', path)


def test_each_network_names_its_rgb_input_transform():
  """RGB in [0, 1] -> each network's input: ImageNet's mean/std for the
  torchvision ones, Caffe's BGR mean for DeepLab-v2, [-1, 1] for LPIPS,
  as is for pytorch-fid's Inception (it scales itself), none for ECCV16."""
  rgb = np.asarray([[[[0.2, 0.5, 0.9]]]], np.float32)
  transform = pretrained.input_transform
  np.testing.assert_allclose(transform('vgg16')(rgb)[0, 0, 0], (
      np.array([0.2, 0.5, 0.9]) - [0.485, 0.456, 0.406]) / [0.229, 0.224,
                                                             0.225],
                             rtol=1e-5)
  np.testing.assert_allclose(transform('deeplabv2_resnet101')(rgb)[0, 0, 0],
                             [0.9 * 255 - 104.008, 0.5 * 255 - 116.669,
                              0.2 * 255 - 122.675], rtol=1e-5)
  np.testing.assert_allclose(transform('lpips_alex')(rgb), rgb * 2 - 1)
  np.testing.assert_allclose(transform('inception_v3_fid')(rgb), rgb)
  with pytest.raises(ValueError, match='eccv16 takes no RGB'):
    transform('eccv16')
