"""Random statistics for the plain-PyTorch reference networks.

A freshly constructed network has BatchNorm mean 0, variance 1, scale 1,
shift 0 and zero biases: a converter that drops or swaps any of them still
reproduces it. Every reference test therefore randomises them first, here,
so that a wrong mapping of any tensor changes the output.
"""

import torch
from torch import nn


def randomise(model, seed, tiny_variances=True):
  """Random BatchNorm statistics and affine parameters, random conv/linear
  biases; with `tiny_variances` a quarter of each BN's channels get
  variances of 1e-4..1e-3 (and scales that keep their output O(1)), so
  that BN's eps (1e-5) changes the output by ~5%. Returns `model.eval()`."""
  generator = torch.Generator().manual_seed(seed)

  def uniform(shape, low, high):
    return torch.rand(shape, generator=generator) * (high - low) + low

  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, nn.BatchNorm2d):
        c = module.num_features
        module.running_mean.copy_(uniform(c, -0.2, 0.2))
        module.running_var.copy_(uniform(c, 0.5, 1.5))
        module.weight.copy_(uniform(c, 0.5, 1.5))
        module.bias.copy_(uniform(c, -0.2, 0.2))
        if tiny_variances:
          tiny = torch.rand(c, generator=generator) < 0.25
          variance = uniform(c, 1e-4, 1e-3)
          module.running_var[tiny] = variance[tiny]
          module.weight[tiny] *= variance[tiny].sqrt()
      elif isinstance(module, (nn.Conv2d, nn.Linear)) and (
          module.bias is not None):
        module.bias.copy_(uniform(module.bias.shape, -0.1, 0.1))
  return model.eval()
