"""inception_v3_fid and deeplabv3_resnet101 against plain-PyTorch references.

Neither pytorch-fid nor torchvision can be imported here, so both networks
are written below in plain PyTorch following the upstream source module by
module, with the upstream module names (so the state-dict keys are the
real files' keys):

* pytorch-fid's `fid_inception_v3()` (src/pytorch_fid/inception.py: a
  torchvision Inception3(num_classes=1008, aux_logits=False) with the
  FIDInceptionA/C/E_1/E_2 blocks) and the forward of its
  `InceptionV3(output_blocks=[3], resize_input=True, normalize_input=True)`;
* torchvision's `deeplabv3_resnet101(aux_loss=True)`
  (models/segmentation/deeplabv3.py, fcn.py's FCNHead, resnet.py with
  replace_stride_with_dilation=[False, True, True]).

The parameter counts are checked against torchvision's published ones, and
every BatchNorm gets random running statistics and affine parameters (a
quarter of the channels with tiny variances, so eps matters), so a wrong
mapping of any tensor changes the output. The references run in float32
like the Flax modules; outputs must agree to 1e-4 of their largest
magnitude (the errors seen are ~1e-6).
"""

import jax
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from colorjax import pretrained
from colorjax.models import inception
from colorjax.pretrained import common
from test_pretrained import TorchResNet
import torch_random

RTOL = 1e-4   # relative to max |reference output|


def _he_init(model, seed):
  """He-normal conv weights (fan in), so that activations keep their scale
  through the 90-odd plain (non-residual) Inception convs."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, nn.Conv2d):
        fan_in = module.weight[0].numel()
        module.weight.copy_(torch.randn(module.weight.shape,
                                        generator=generator) *
                            (2.0 / fan_in) ** 0.5)


def _nchw(x):
  return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def _expected_keys(name, num_classes=None):
  """The PyTorch keys the Flax side of `name` reads (from its variables)."""
  spec = pretrained.REGISTRY[name]
  module = spec.build() if num_classes is None else spec.build(num_classes)
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0),
                          np.zeros(spec.input_shape, np.float32))
  keys = set()

  def walk(collection, tree, path=()):
    for leaf, value in tree.items():
      if isinstance(value, dict):
        walk(collection, value, path + (leaf,))
      else:
        keys.add(f'{spec.torch_key(path)}.'
                 f'{common.LEAF_NAMES[(collection, leaf)]}')

  for collection in ('params', 'batch_stats'):
    walk(collection, shapes[collection])
  return keys


def _buffers_free(keys):
  return {k for k in keys if not k.endswith('num_batches_tracked')}


def _relative_error(got, want):
  return np.max(np.abs(got - want)) / np.max(np.abs(want))


# ---------------------------------------------------------------------------
# pytorch-fid's FID Inception, from torchvision's Inception3 and the FID
# blocks (same module names, same hyper-parameters).

class TorchBasicConv2d(nn.Module):

  def __init__(self, in_channels, out_channels, **kwargs):
    super().__init__()
    self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
    self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


class TorchFIDInceptionA(nn.Module):

  def __init__(self, in_channels, pool_features):
    super().__init__()
    self.branch1x1 = TorchBasicConv2d(in_channels, 64, kernel_size=1)
    self.branch5x5_1 = TorchBasicConv2d(in_channels, 48, kernel_size=1)
    self.branch5x5_2 = TorchBasicConv2d(48, 64, kernel_size=5, padding=2)
    self.branch3x3dbl_1 = TorchBasicConv2d(in_channels, 64, kernel_size=1)
    self.branch3x3dbl_2 = TorchBasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = TorchBasicConv2d(96, 96, kernel_size=3, padding=1)
    self.branch_pool = TorchBasicConv2d(in_channels, pool_features,
                                        kernel_size=1)

  def forward(self, x):
    branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
    dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1,
                                         padding=1, count_include_pad=False))
    return torch.cat([self.branch1x1(x), branch5x5, dbl, pool], 1)


class TorchInceptionB(nn.Module):

  def __init__(self, in_channels):
    super().__init__()
    self.branch3x3 = TorchBasicConv2d(in_channels, 384, kernel_size=3,
                                      stride=2)
    self.branch3x3dbl_1 = TorchBasicConv2d(in_channels, 64, kernel_size=1)
    self.branch3x3dbl_2 = TorchBasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = TorchBasicConv2d(96, 96, kernel_size=3, stride=2)

  def forward(self, x):
    dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch3x3(x), dbl,
                      F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class TorchFIDInceptionC(nn.Module):

  def __init__(self, in_channels, channels_7x7):
    super().__init__()
    c7 = channels_7x7
    self.branch1x1 = TorchBasicConv2d(in_channels, 192, kernel_size=1)
    self.branch7x7_1 = TorchBasicConv2d(in_channels, c7, kernel_size=1)
    self.branch7x7_2 = TorchBasicConv2d(c7, c7, kernel_size=(1, 7),
                                        padding=(0, 3))
    self.branch7x7_3 = TorchBasicConv2d(c7, 192, kernel_size=(7, 1),
                                        padding=(3, 0))
    self.branch7x7dbl_1 = TorchBasicConv2d(in_channels, c7, kernel_size=1)
    self.branch7x7dbl_2 = TorchBasicConv2d(c7, c7, kernel_size=(7, 1),
                                           padding=(3, 0))
    self.branch7x7dbl_3 = TorchBasicConv2d(c7, c7, kernel_size=(1, 7),
                                           padding=(0, 3))
    self.branch7x7dbl_4 = TorchBasicConv2d(c7, c7, kernel_size=(7, 1),
                                           padding=(3, 0))
    self.branch7x7dbl_5 = TorchBasicConv2d(c7, 192, kernel_size=(1, 7),
                                           padding=(0, 3))
    self.branch_pool = TorchBasicConv2d(in_channels, 192, kernel_size=1)

  def forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    dbl = self.branch7x7dbl_1(x)
    dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(dbl))
    dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(dbl))
    pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1,
                                         padding=1, count_include_pad=False))
    return torch.cat([self.branch1x1(x), b7, dbl, pool], 1)


class TorchInceptionD(nn.Module):

  def __init__(self, in_channels):
    super().__init__()
    self.branch3x3_1 = TorchBasicConv2d(in_channels, 192, kernel_size=1)
    self.branch3x3_2 = TorchBasicConv2d(192, 320, kernel_size=3, stride=2)
    self.branch7x7x3_1 = TorchBasicConv2d(in_channels, 192, kernel_size=1)
    self.branch7x7x3_2 = TorchBasicConv2d(192, 192, kernel_size=(1, 7),
                                          padding=(0, 3))
    self.branch7x7x3_3 = TorchBasicConv2d(192, 192, kernel_size=(7, 1),
                                          padding=(3, 0))
    self.branch7x7x3_4 = TorchBasicConv2d(192, 192, kernel_size=3, stride=2)

  def forward(self, x):
    b3 = self.branch3x3_2(self.branch3x3_1(x))
    b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
    b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))
    return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class TorchFIDInceptionE(nn.Module):
  """FIDInceptionE_1 (max_pool=False) / FIDInceptionE_2 (max_pool=True)."""

  def __init__(self, in_channels, max_pool):
    super().__init__()
    self.max_pool = max_pool
    self.branch1x1 = TorchBasicConv2d(in_channels, 320, kernel_size=1)
    self.branch3x3_1 = TorchBasicConv2d(in_channels, 384, kernel_size=1)
    self.branch3x3_2a = TorchBasicConv2d(384, 384, kernel_size=(1, 3),
                                         padding=(0, 1))
    self.branch3x3_2b = TorchBasicConv2d(384, 384, kernel_size=(3, 1),
                                         padding=(1, 0))
    self.branch3x3dbl_1 = TorchBasicConv2d(in_channels, 448, kernel_size=1)
    self.branch3x3dbl_2 = TorchBasicConv2d(448, 384, kernel_size=3,
                                           padding=1)
    self.branch3x3dbl_3a = TorchBasicConv2d(384, 384, kernel_size=(1, 3),
                                            padding=(0, 1))
    self.branch3x3dbl_3b = TorchBasicConv2d(384, 384, kernel_size=(3, 1),
                                            padding=(1, 0))
    self.branch_pool = TorchBasicConv2d(in_channels, 192, kernel_size=1)

  def forward(self, x):
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    dbl = torch.cat([self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl)], 1)
    if self.max_pool:
      pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    else:
      pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1,
                          count_include_pad=False)
    return torch.cat([self.branch1x1(x), b3, dbl, self.branch_pool(pool)], 1)


class TorchFIDInception3(nn.Module):
  """fid_inception_v3(): Inception3(num_classes=1008, aux_logits=False)
  with the FID blocks patched in."""

  def __init__(self, num_classes=1008):
    super().__init__()
    self.Conv2d_1a_3x3 = TorchBasicConv2d(3, 32, kernel_size=3, stride=2)
    self.Conv2d_2a_3x3 = TorchBasicConv2d(32, 32, kernel_size=3)
    self.Conv2d_2b_3x3 = TorchBasicConv2d(32, 64, kernel_size=3, padding=1)
    self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Conv2d_3b_1x1 = TorchBasicConv2d(64, 80, kernel_size=1)
    self.Conv2d_4a_3x3 = TorchBasicConv2d(80, 192, kernel_size=3)
    self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Mixed_5b = TorchFIDInceptionA(192, pool_features=32)
    self.Mixed_5c = TorchFIDInceptionA(256, pool_features=64)
    self.Mixed_5d = TorchFIDInceptionA(288, pool_features=64)
    self.Mixed_6a = TorchInceptionB(288)
    self.Mixed_6b = TorchFIDInceptionC(768, channels_7x7=128)
    self.Mixed_6c = TorchFIDInceptionC(768, channels_7x7=160)
    self.Mixed_6d = TorchFIDInceptionC(768, channels_7x7=160)
    self.Mixed_6e = TorchFIDInceptionC(768, channels_7x7=192)
    self.Mixed_7a = TorchInceptionD(768)
    self.Mixed_7b = TorchFIDInceptionE(1280, max_pool=False)
    self.Mixed_7c = TorchFIDInceptionE(2048, max_pool=True)
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.dropout = nn.Dropout(p=0.5)
    self.fc = nn.Linear(2048, num_classes)

  def fid_features(self, inp):
    """pytorch-fid InceptionV3(output_blocks=[3]).forward(inp)[0][:, :, 0, 0]
    (its blocks list: block 0 ends with a 3x3 stride-2 max pool, block 1
    too, block 3 with AdaptiveAvgPool2d(1))."""
    x = F.interpolate(inp, size=(299, 299), mode='bilinear',
                      align_corners=False)
    x = 2 * x - 1
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = F.max_pool2d(x, kernel_size=3, stride=2)
    x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, kernel_size=3, stride=2)
    for block in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b',
                  '7c'):
      x = getattr(self, f'Mixed_{block}')(x)
    return F.adaptive_avg_pool2d(x, (1, 1))[:, :, 0, 0]


# torchvision's Inception_V3_Weights meta: 27161264 parameters with
# AuxLogits and 1000 classes. AuxLogits: conv0 768*128 + BN 2*128, conv1
# 128*768*5*5 + BN 2*768, fc 768*1000 + 1000 = 3326696; the FID head has
# 1008 classes: + 8*2048 + 8.
FID_INCEPTION_PARAMS = 27161264 - 3326696 + 8 * 2048 + 8


@pytest.fixture(scope='module')
def fid_reference():
  torch.manual_seed(0)
  model = TorchFIDInception3()
  _he_init(model, seed=0)
  return torch_random.randomise(model, seed=1)


@pytest.fixture(scope='module')
def fid_state(fid_reference):
  return {k: v.numpy() for k, v in fid_reference.state_dict().items()}


def test_inception_fid_state_dict_keys(fid_reference):
  state = fid_reference.state_dict()
  assert sum(p.numel() for p in fid_reference.parameters()) == (
      FID_INCEPTION_PARAMS)
  assert tuple(state['fc.weight'].shape) == (1008, 2048)
  assert {'Conv2d_1a_3x3.conv.weight', 'Conv2d_4a_3x3.bn.running_var',
          'Mixed_5b.branch5x5_1.bn.bias', 'Mixed_6a.branch3x3.conv.weight',
          'Mixed_6e.branch7x7dbl_5.conv.weight',
          'Mixed_7a.branch7x7x3_4.bn.weight',
          'Mixed_7c.branch3x3dbl_3b.bn.running_mean',
          'Mixed_7c.branch_pool.conv.weight'} <= set(state)
  assert not any(k.startswith('AuxLogits') for k in state)
  expected = _expected_keys('inception_v3_fid')
  # Every tensor but the unused 1008-way fc is read; nothing else is asked.
  assert _buffers_free(state) - expected == {'fc.weight', 'fc.bias'}
  assert expected - set(state) == set()


def test_resize_bilinear_matches_torch():
  """torch's bilinear (align_corners=False, no antialiasing), up and down,
  square and not; jax.image.resize's default antialias would differ when
  downsampling. The weights equal torch's bit for bit; the sums may round
  differently (an ulp)."""
  rng = np.random.default_rng(0)
  for size, out in [(64, 299), (320, 299), (400, 299), (1000, 299),
                    (9, 65), (299, 299), (1, 7), (57, 41)]:
    eye = torch.eye(size).reshape(1, size, size, 1)
    weights = F.interpolate(eye, size=(out, 1), mode='bilinear',
                            align_corners=False)[0, :, :, 0].T.numpy()
    np.testing.assert_array_equal(inception.bilinear_matrix(size, out),
                                  weights, err_msg=f'{size} -> {out}')
  for (h, w), size in [((64, 64), (299, 299)), ((320, 400), (299, 299)),
                       ((1000, 37), (299, 299)), ((299, 299), (299, 299)),
                       ((9, 9), (65, 65)), ((6, 8), (41, 57)),
                       ((1, 1), (5, 3)), ((17, 5), (4, 11))]:
    x = rng.normal(size=(2, h, w, 3)).astype(np.float32)
    got = np.asarray(inception.resize_bilinear(x, size))
    want = F.interpolate(_nchw(x), size=size, mode='bilinear',
                         align_corners=False).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=0,
                               err_msg=f'{(h, w)} -> {size}')
  x = rng.normal(size=(1, 320, 400, 3)).astype(np.float32)
  want = F.interpolate(_nchw(x), size=(299, 299), mode='bilinear',
                       align_corners=False).numpy().transpose(0, 2, 3, 1)
  antialiased = np.asarray(jax.image.resize(x, (1, 299, 299, 3), 'bilinear'))
  assert np.max(np.abs(antialiased - want)) > 1e-2


def test_inception_fid_matches_pytorch_fid(fid_reference, tmp_path):
  path = str(tmp_path / 'pt_inception.pth')
  torch.save(fid_reference.state_dict(), path)
  module, variables = pretrained.load('inception_v3_fid', path)
  assert 'fc' not in variables['params']
  apply = jax.jit(module.apply)
  rng = np.random.default_rng(2)
  # Upsampled (2 square images: noise and a smooth pattern), and
  # downsampled from a non-square image.
  yy, xx = np.mgrid[0:64, 0:64] / 64.0
  smooth = np.stack([np.sin(6 * xx) ** 2, yy, 0.5 + 0.4 * np.cos(9 * xx * yy)],
                    axis=-1)
  for x in [np.stack([rng.uniform(0, 1, size=(64, 64, 3)), smooth]),
            rng.uniform(0, 1, size=(1, 320, 400, 3))]:
    x = x.astype(np.float32)
    got = np.asarray(apply(variables, x))
    with torch.no_grad():
      want = fid_reference.fid_features(_nchw(x)).numpy()
    assert got.shape == want.shape == (x.shape[0], 2048)
    error = _relative_error(got, want)
    assert error < RTOL, f'{x.shape}: relative error {error:.3g}'
    if len(x) == 2:
      # The features depend on the image (not only on the biases), and
      # the differences are reproduced too.
      assert _relative_error(want[0], want[1]) > 0.1
      error = _relative_error(got[0] - got[1], want[0] - want[1])
      assert error < 10 * RTOL, f'difference: relative error {error:.3g}'


def test_inception_fid_fc_optional_and_mismatches(fid_state, tmp_path):
  path = str(tmp_path / 'inception.npz')
  # Without fc (as a user might save it after dropping the head).
  np.savez(path, **{k: v for k, v in fid_state.items()
                    if not k.startswith('fc.')})
  _, variables = pretrained.load('inception_v3_fid', path)
  np.testing.assert_array_equal(
      np.asarray(variables['batch_stats']['Mixed_7c']['branch3x3_2b']['bn']
                 ['var']),
      fid_state['Mixed_7c.branch3x3_2b.bn.running_var'])
  # A 1000-way head: torchvision's Inception, not the FID graph's.
  bad = dict(fid_state)
  bad['fc.weight'] = np.zeros((1000, 2048), np.float32)
  bad['fc.bias'] = np.zeros(1000, np.float32)
  np.savez(path, **bad)
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r'pytorch-fid inception_v3_fid.*fc\.weight '
                           r'\(1000, 2048\)'):
    pretrained.load('inception_v3_fid', path)
  # A missing block and an AuxLogits entry: one error naming both.
  bad = {k: v for k, v in fid_state.items()
         if not k.startswith('Mixed_6d.branch7x7_2.')}
  bad['AuxLogits.fc.weight'] = np.zeros((1008, 768), np.float32)
  np.savez(path, **bad)
  with pytest.raises(pretrained.CheckpointMismatchError) as error:
    pretrained.load('inception_v3_fid', path)
  message = str(error.value)
  for part in ('pytorch-fid inception_v3_fid', 'missing keys: '
               'Mixed_6d.branch7x7_2.bn.bias', 'unexpected keys (not used): '
               'AuxLogits.fc.weight'):
    assert part in message, message


# ---------------------------------------------------------------------------
# torchvision's deeplabv3_resnet101: ResNet-101 backbone (dilated layer3/4),
# DeepLabHead, FCNHead aux classifier.

class TorchDilatedResNetBackbone(TorchResNet):
  """resnet101(replace_stride_with_dilation=[False, True, True]) as
  IntermediateLayerGetter keeps it (up to layer4: no avgpool, no fc);
  returns layer3's and layer4's maps."""

  def __init__(self, layers=(3, 4, 23, 3),
               replace_stride_with_dilation=(False, True, True)):
    super().__init__(layers,
                     replace_stride_with_dilation=replace_stride_with_dilation)
    del self.avgpool, self.fc

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    aux = self.layer3(self.layer2(self.layer1(x)))
    return aux, self.layer4(aux)


class TorchASPPPooling(nn.Sequential):

  def __init__(self, in_channels, out_channels):
    super().__init__(nn.AdaptiveAvgPool2d(1),
                     nn.Conv2d(in_channels, out_channels, 1, bias=False),
                     nn.BatchNorm2d(out_channels), nn.ReLU())

  def forward(self, x):
    size = x.shape[-2:]
    for mod in self:
      x = mod(x)
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


class TorchASPP(nn.Module):

  def __init__(self, in_channels, atrous_rates, out_channels=256):
    super().__init__()
    modules = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1,
                                       bias=False),
                             nn.BatchNorm2d(out_channels), nn.ReLU())]
    for rate in atrous_rates:    # ASPPConv
      modules.append(nn.Sequential(
          nn.Conv2d(in_channels, out_channels, 3, padding=rate,
                    dilation=rate, bias=False),
          nn.BatchNorm2d(out_channels), nn.ReLU()))
    modules.append(TorchASPPPooling(in_channels, out_channels))
    self.convs = nn.ModuleList(modules)
    self.project = nn.Sequential(
        nn.Conv2d(len(self.convs) * out_channels, out_channels, 1,
                  bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(), nn.Dropout(0.5))

  def forward(self, x):
    return self.project(torch.cat([conv(x) for conv in self.convs], dim=1))


def torch_deeplab_head(in_channels, num_classes):
  return nn.Sequential(
      TorchASPP(in_channels, [12, 24, 36]),
      nn.Conv2d(256, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256),
      nn.ReLU(), nn.Conv2d(256, num_classes, 1))


def torch_fcn_head(in_channels, channels):
  inter_channels = in_channels // 4
  return nn.Sequential(
      nn.Conv2d(in_channels, inter_channels, 3, padding=1, bias=False),
      nn.BatchNorm2d(inter_channels), nn.ReLU(), nn.Dropout(0.1),
      nn.Conv2d(inter_channels, channels, 1))


class TorchDeepLabV3(nn.Module):
  """_SimpleSegmentationModel(backbone, DeepLabHead(2048, n),
  FCNHead(1024, n) if aux)."""

  def __init__(self, num_classes=21, aux=True):
    super().__init__()
    self.backbone = TorchDilatedResNetBackbone()
    self.classifier = torch_deeplab_head(2048, num_classes)
    self.aux_classifier = torch_fcn_head(1024, num_classes) if aux else None

  def forward(self, x):
    input_shape = x.shape[-2:]
    aux, out = self.backbone(x)
    result = {'out': F.interpolate(self.classifier(out), size=input_shape,
                                   mode='bilinear', align_corners=False)}
    if self.aux_classifier is not None:
      result['aux'] = F.interpolate(self.aux_classifier(aux),
                                    size=input_shape, mode='bilinear',
                                    align_corners=False)
    return result


@pytest.fixture(scope='module')
def deeplab_reference():
  torch.manual_seed(3)
  return torch_random.randomise(TorchDeepLabV3(21, aux=True), seed=4)


def test_deeplab_state_dict_keys(deeplab_reference):
  state = deeplab_reference.state_dict()
  # torchvision's DeepLabV3_ResNet101_Weights meta (21 classes, aux head).
  assert sum(p.numel() for p in deeplab_reference.parameters()) == 60996202
  assert {'backbone.conv1.weight', 'backbone.layer3.0.downsample.0.weight',
          'backbone.layer3.22.conv2.weight', 'backbone.layer4.2.bn3.bias',
          'classifier.0.convs.0.0.weight', 'classifier.0.convs.3.1.running_var',
          'classifier.0.convs.4.1.weight', 'classifier.0.convs.4.2.bias',
          'classifier.0.project.0.weight', 'classifier.1.weight',
          'classifier.2.running_mean', 'classifier.4.weight',
          'classifier.4.bias', 'aux_classifier.0.weight',
          'aux_classifier.4.bias'} <= set(state)
  expected = _expected_keys('deeplabv3_resnet101', 21)
  aux = {k for k in _buffers_free(state) if k.startswith('aux_classifier.')}
  assert len(aux) == 7   # 0.weight, 1.{weight,bias,running_*}, 4.*
  assert _buffers_free(state) - aux == expected


def _check_deeplab(module, variables, model, shape, seed):
  x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
  got = np.asarray(jax.jit(module.apply)(variables, x))
  with torch.no_grad():
    want = model(_nchw(x))['out'].numpy().transpose(0, 2, 3, 1)
  assert got.shape == want.shape == shape[:3] + (module.num_classes,)
  error = _relative_error(got, want)
  assert error < RTOL, f'{shape}: relative error {error:.3g}'


def test_deeplab_matches_torchvision(deeplab_reference, tmp_path):
  # The COCO file's layout: with aux_classifier.* (dropped).
  path = str(tmp_path / 'deeplabv3_resnet101_coco.pth')
  torch.save(deeplab_reference.state_dict(), path)
  module, variables = pretrained.load('deeplabv3_resnet101', path)
  assert module.num_classes == 21
  _check_deeplab(module, variables, deeplab_reference, (1, 65, 65, 3), 5)


def test_deeplab_other_classes_without_aux(tmp_path):
  torch.manual_seed(6)
  model = torch_random.randomise(TorchDeepLabV3(5, aux=False), seed=7)
  path = str(tmp_path / 'deeplab5.pth')
  torch.save(model.state_dict(), path)
  module, variables = pretrained.load('deeplabv3_resnet101', path)
  assert module.num_classes == 5
  _check_deeplab(module, variables, model, (1, 41, 57, 3), 8)


def test_deeplab_mismatches(deeplab_reference, tmp_path):
  state = {k: v.numpy() for k, v in deeplab_reference.state_dict().items()}
  path = str(tmp_path / 'deeplab.npz')
  # A layer missing, a shape wrong: one error naming the model.
  bad = {k: v for k, v in state.items()
         if not k.startswith('classifier.0.convs.2.')}
  bad['backbone.layer3.5.conv2.weight'] = np.zeros((256, 256, 1, 1),
                                                   np.float32)
  np.savez(path, **bad)
  with pytest.raises(pretrained.CheckpointMismatchError) as error:
    pretrained.load('deeplabv3_resnet101', path)
  message = str(error.value)
  for part in ('torchvision deeplabv3_resnet101',
               'missing keys: classifier.0.convs.2.0.weight',
               'shape mismatches: backbone.layer3.5.conv2.weight '
               '(256, 256, 1, 1)'):
    assert part in message, message
  # A segmentation file is not an FID Inception file.
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r'pytorch-fid inception_v3_fid: missing keys: '
                           r'Conv2d_1a_3x3'):
    pretrained.load('inception_v3_fid', path)
  # A classifier file has no classifier.4.weight.
  np.savez(path, **{k[len('backbone.'):]: v for k, v in state.items()
                    if k.startswith('backbone.')})
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r"deeplabv3_resnet101.*'classifier\.4\.weight'"):
    pretrained.load('deeplabv3_resnet101', path)
