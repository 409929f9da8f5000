"""Plain-PyTorch peers of paper 002's networks (GridNet, the two-stream
U-Net), filled with colorjax's Flax parameters.

Test oracle (tests/test_semanticdriven.py: equal outputs, equal gradients of
eq. 1) and the peer of `python -m colorjax.benchmark infer`. Written from
the paper's layer list independently of colorjax/models/semanticdriven.py,
with submodules named as the Flax modules so `fill` copies weights by name.
"""

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def conv_weight(kernel):
  """Flax HWIO kernel (or UpConv's [kh, kw, C_out, C_in]) -> torch's
  Conv2d OIHW (or ConvTranspose2d [C_in, C_out, kh, kw]): both transpose
  (3, 2, 0, 1)."""
  return torch.from_numpy(np.asarray(kernel).transpose(3, 2, 0, 1).copy())


def fill(module, params, stats=None):
  """Copies Flax params (and BatchNorm statistics) into a torch module
  whose submodule names are the Flax names."""
  with torch.no_grad():
    for name, leaf in params.items():
      target = getattr(module, name)
      if 'kernel' in leaf:
        target.weight.copy_(conv_weight(leaf['kernel']))
        target.bias.copy_(torch.from_numpy(np.array(leaf['bias'])))
      elif 'scale' in leaf:
        target.weight.copy_(torch.from_numpy(np.array(leaf['scale'])))
        target.bias.copy_(torch.from_numpy(np.array(leaf['bias'])))
        target.running_mean.copy_(torch.from_numpy(
            np.array(stats[name]['mean'])))
        target.running_var.copy_(torch.from_numpy(
            np.array(stats[name]['var'])))
      else:
        fill(target, leaf, None if stats is None else stats.get(name))


class TorchUnit(nn.Module):
  """Fourure et al.'s pre-activation units: BN-ReLU-conv twice."""

  def __init__(self, cin, cout, kind):
    super().__init__()
    self.kind = kind
    self.bn0 = nn.BatchNorm2d(cin)
    if kind == 'up':
      self.conv0 = nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)
    else:
      self.conv0 = nn.Conv2d(cin, cout, 3, 2 if kind == 'down' else 1, 1)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv1 = nn.Conv2d(cout, cout, 3, 1, 1)

  def forward(self, x):
    y = self.conv0(F.relu(self.bn0(x)))
    y = self.conv1(F.relu(self.bn1(y)))
    return x + y if self.kind == 'lateral' else y


class TorchGridNet(nn.Module):

  def __init__(self, depths, columns, classes):
    super().__init__()
    self.depths, self.columns = depths, columns
    self.stem = nn.Conv2d(1, depths[0], 3, 1, 1)
    rows, half = len(depths), columns // 2
    for j in range(columns):
      for i in range(rows):
        if j > 0:
          setattr(self, f'lat{i}_{j}', TorchUnit(depths[i], depths[i],
                                                 'lateral'))
        if j < half and i > 0:
          setattr(self, f'down{i}_{j}', TorchUnit(depths[i - 1], depths[i],
                                                  'down'))
        if j >= half and i < rows - 1:
          setattr(self, f'up{i}_{j}', TorchUnit(depths[i + 1], depths[i],
                                                'up'))
    self.head_bn = nn.BatchNorm2d(depths[0])
    self.head = nn.Conv2d(depths[0], classes, 3, 1, 1)

  def forward(self, x):
    rows, half = len(self.depths), self.columns // 2
    grid = {(0, 0): self.stem(x)}
    for j in range(self.columns):
      for i in (range(rows) if j < half else reversed(range(rows))):
        if (i, j) == (0, 0):
          continue
        total = 0
        if j > 0:
          total = total + getattr(self, f'lat{i}_{j}')(grid[i, j - 1])
        if j < half and i > 0:
          total = total + getattr(self, f'down{i}_{j}')(grid[i - 1, j])
        if j >= half and i < rows - 1:
          total = total + getattr(self, f'up{i}_{j}')(grid[i + 1, j])
        grid[i, j] = total
    return self.head(F.relu(self.head_bn(grid[0, self.columns - 1])))


class TorchTwoStreamUNet(nn.Module):
  """Fig. 3-4 in PyTorch: a shared encoder run twice, InstanceNorm2d
  (no affine) on the gray stream at every concatenation."""

  def __init__(self, widths, classes):
    super().__init__()
    self.widths, self.classes = widths, classes
    cin = 1
    for k, width in enumerate(widths, start=1):
      setattr(self, f'enc{k}_conv0', nn.Conv2d(cin, width, 3,
                                               1 if k in (1, 5) else 2, 1))
      setattr(self, f'enc{k}_conv1', nn.Conv2d(width, width, 3, 1, 1))
      cin = width
    previous = 0
    for k, width in enumerate([2 * w for w in reversed(widths)], start=1):
      if k in (1, 5):
        conv0 = nn.Conv2d(previous + width, width, 3, 1, 1)
      else:
        conv0 = nn.ConvTranspose2d(previous + width, width, 3, 2, 1,
                                   output_padding=1)
      setattr(self, f'dec{k}_conv0', conv0)
      setattr(self, f'dec{k}_conv1', nn.Conv2d(width, width, 3, 1, 1))
      previous = width
    self.head = nn.Conv2d(previous, 2, 3, 1, 1)

  def encode(self, x):
    out = []
    for k in range(1, 6):
      x = F.leaky_relu(getattr(self, f'enc{k}_conv0')(x), 0.01)
      x = F.leaky_relu(getattr(self, f'enc{k}_conv1')(x), 0.01)
      out.append(x)
    return out

  def forward(self, gray, labels, instance_norm=True):
    semantic = 2.0 * labels.float() / (self.classes - 1) - 1.0
    levels = [torch.cat([F.instance_norm(g, eps=1e-5) if instance_norm
                         else g, s], 1)
              for g, s in zip(self.encode(gray), self.encode(semantic))]
    y = levels[4]
    for k in range(1, 6):
      if k > 1:
        y = torch.cat([y, levels[5 - k]], 1)
      y = F.leaky_relu(getattr(self, f'dec{k}_conv0')(y), 0.01)
      y = F.leaky_relu(getattr(self, f'dec{k}_conv1')(y), 0.01)
    return torch.tanh(self.head(y))


def nchw(x):
  return torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())
