"""eccv16 (richzhang/colorization) against a plain-PyTorch reference.

The reference follows `colorizers/eccv16.py`'s `ECCVGenerator` module by
module, with its module names (so the state-dict keys are the release
file's keys, `model_out.weight` included), and its forward up to `model8`
(the 313 logits, before softmax / model_out / upsampling). Conv weights are
He-normal (22 plain convolutions: activations keep their scale), every
BatchNorm gets random running statistics and affine parameters (a quarter
of the channels with tiny variances, so eps matters), every bias is random,
so a wrong mapping of any tensor changes the output.
"""

import jax
import numpy as np
import pytest
import torch
from torch import nn

from colorjax import pretrained
from colorjax.color import quantize
from colorjax.models import eccv16 as eccv16_net
from colorjax.pretrained import eccv16
from test_pretrained_fid_deeplab import _expected_keys
from test_pretrained_fid_deeplab import _he_init
from test_pretrained_fid_deeplab import _nchw
from test_pretrained_fid_deeplab import _relative_error
from test_pretrained_fid_deeplab import RTOL
import torch_random

# Parameters of ECCVGenerator without model_out (2 * 313 = 626 more).
ECCV16_PARAMS = 32_235_385


class TorchECCVGenerator(nn.Module):
  """richzhang/colorization colorizers/eccv16.py ECCVGenerator."""

  def __init__(self, norm_layer=nn.BatchNorm2d):
    super().__init__()

    def convs(channels, last_stride=1, dilation=1):
      layers = []
      for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        stride = last_stride if i == len(channels) - 2 else 1
        layers += [nn.Conv2d(cin, cout, kernel_size=3, stride=stride,
                             padding=dilation, dilation=dilation, bias=True),
                   nn.ReLU(True)]
      return layers + [norm_layer(channels[-1])]

    self.model1 = nn.Sequential(*convs([1, 64, 64], last_stride=2))
    self.model2 = nn.Sequential(*convs([64, 128, 128], last_stride=2))
    self.model3 = nn.Sequential(*convs([128, 256, 256, 256], last_stride=2))
    self.model4 = nn.Sequential(*convs([256, 512, 512, 512]))
    self.model5 = nn.Sequential(*convs([512, 512, 512, 512], dilation=2))
    self.model6 = nn.Sequential(*convs([512, 512, 512, 512], dilation=2))
    self.model7 = nn.Sequential(*convs([512, 512, 512, 512]))
    self.model8 = nn.Sequential(
        nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1,
                           bias=True), nn.ReLU(True),
        nn.Conv2d(256, 256, kernel_size=3, stride=1, padding=1, bias=True),
        nn.ReLU(True),
        nn.Conv2d(256, 256, kernel_size=3, stride=1, padding=1, bias=True),
        nn.ReLU(True),
        nn.Conv2d(256, 313, kernel_size=1, stride=1, padding=0, bias=True))
    self.softmax = nn.Softmax(dim=1)
    self.model_out = nn.Conv2d(313, 2, kernel_size=1, padding=0, dilation=1,
                               stride=1, bias=False)

  def logits(self, input_l):
    """model8's output (conv8_3) for L in [0, 100], NCHW."""
    x = (input_l - 50) / 100.0          # BaseColor.normalize_l
    for block in (self.model1, self.model2, self.model3, self.model4,
                  self.model5, self.model6, self.model7, self.model8):
      x = block(x)
    return x

  def forward(self, input_l):
    """The release's own decoding: ab [N, 2, H, W] in Lab units
    (`out_reg = self.model_out(self.softmax(conv8_3))`, then
    `unnormalize_ab(self.upsample4(out_reg))`)."""
    out_reg = self.model_out(self.softmax(self.logits(input_l)))
    upsample4 = nn.Upsample(scale_factor=4, mode='bilinear')
    return upsample4(out_reg) * 110.0   # BaseColor.unnormalize_ab


def _reference(seed=0):
  torch.manual_seed(seed)
  model = TorchECCVGenerator()
  _he_init(model, seed)
  torch_random.randomise(model, seed + 1)
  generator = torch.Generator().manual_seed(seed + 2)
  up = model.model8[0]
  with torch.no_grad():
    fan_in = up.in_channels * (up.kernel_size[0] // up.stride[0]) ** 2
    # Asymmetric taps (not only a random kernel) so that a flipped or
    # transposed 4x4 kernel changes the output.
    up.weight.copy_(torch.randn(up.weight.shape, generator=generator) *
                    (2.0 / fan_in) ** 0.5)
    up.bias.copy_(torch.rand(up.bias.shape, generator=generator) * 0.2 - 0.1)
    # As in the release: the fixed expectation over the bins, / ab_norm.
    model.model_out.weight.copy_(torch.tensor(
        quantize.ab_gamut_bins().T[:, :, None, None] / 110.0))
  return model.eval()


@pytest.fixture(scope='module')
def reference():
  return _reference()


@pytest.fixture(scope='module')
def reference_state(reference):
  return {k: v.numpy() for k, v in reference.state_dict().items()}


def test_eccv16_matches_reference(reference, tmp_path):
  path = str(tmp_path / 'colorization_release_v2.pth')
  torch.save(reference.state_dict(), path)
  module, variables = pretrained.load('eccv16', path)
  l = np.random.default_rng(1).uniform(0, 100, (1, 48, 40, 1)).astype(
      np.float32)
  got = np.asarray(jax.jit(module.apply)(variables, l))
  with torch.no_grad():
    want = reference.logits(_nchw(l)).numpy().transpose(0, 2, 3, 1)
  assert got.shape == want.shape == (1, 12, 10, 313)
  assert got.dtype == np.float32
  error = _relative_error(got, want)
  print(f'eccv16 relative error {error:.3g}')
  assert error < RTOL, f'eccv16: relative error {error:.3g}'
  # The trunk's variables drop into a plain InstanceAware(num_classes=0).
  from colorjax.models import instanceaware  # pylint: disable=g-import-not-at-top
  trunk = instanceaware.InstanceAware(num_classes=0)
  logits = jax.jit(trunk.apply)(eccv16.trunk_variables(variables),
                                l / 50 - 1)['logits']
  assert _relative_error(np.asarray(logits), got) < 1e-5


def test_eccv16_parameter_count_and_keys(reference):
  torch_params = sum(p.numel() for name, p in reference.named_parameters()
                     if not name.startswith('model_out.'))
  shapes = jax.eval_shape(eccv16_net.ECCV16().init, jax.random.PRNGKey(0),
                          np.zeros((1, 64, 64, 1), np.float32))
  flax_params = sum(int(np.prod(leaf.shape))
                    for leaf in jax.tree_util.tree_leaves(shapes['params']))
  assert torch_params == flax_params == ECCV16_PARAMS
  torch_keys = {k for k in reference.state_dict()
                if not k.endswith('num_batches_tracked')}
  assert _expected_keys('eccv16') | {'model_out.weight'} == torch_keys


def test_eccv16_mismatches_name_the_model(reference_state, tmp_path):
  path = str(tmp_path / 'broken.npz')
  # Without model_out it loads (the trunk is all that is read).
  np.savez(path, **{k: v for k, v in reference_state.items()
                    if k != 'model_out.weight'})
  pretrained.load('eccv16', path)
  cases = {
      'model8.6.weight': r'eccv16.*missing keys: model8\.6\.weight',
      'model4.6.running_var': r'eccv16.*missing keys: model4\.6\.running_var',
  }
  for key, message in cases.items():
    np.savez(path, **{k: v for k, v in reference_state.items() if k != key})
    with pytest.raises(pretrained.CheckpointMismatchError, match=message):
      pretrained.load('eccv16', path)
  shapes = {
      'model_out.weight': (np.zeros((2, 529, 1, 1), np.float32),
                           r'eccv16.*model_out\.weight \(2, 529, 1, 1\)'),
      # The upconv's in/out channels swapped.
      'model8.0.weight': (np.zeros((256, 512, 4, 4), np.float32),
                          r'eccv16.*shape mismatches: model8\.0\.weight '
                          r'\(256, 512, 4, 4\)'),
  }
  for key, (value, message) in shapes.items():
    np.savez(path, **{**reference_state, key: value})
    with pytest.raises(pretrained.CheckpointMismatchError, match=message):
      pretrained.load('eccv16', path)


def test_model_out_checks_the_bin_order(caplog):
  """The release's model_out x 110 is the bin centres in its order: the
  same order as colorjax's passes silently, a permuted one is reported."""
  centres = quantize.ab_gamut_bins().T[:, :, None, None] / 110.0
  assert eccv16.bin_order_error(centres) < 1e-4
  with caplog.at_level('WARNING'):
    eccv16.check_bin_order(centres)
  assert not caplog.records
  permuted = centres[:, np.random.default_rng(0).permutation(313)]
  with caplog.at_level('WARNING'):
    eccv16.check_bin_order(permuted)
  assert 'not the expectation' in caplog.text
