"""SE-ResNeXt50 against timm's PyTorch model with converted random weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torchvision_stub  # pylint: disable=unused-import
import timm  # pylint: disable=g-bad-import-order
import torch

from colorjax import pretrained
from colorjax.models import seresnext
import torch_random


def _randomised_timm_model(seed=0):
  torch.manual_seed(seed)
  model = timm.create_model('seresnext50_32x4d', pretrained=False)
  return torch_random.randomise(model, seed + 1)


def test_converted_timm_weights_reproduce_timm_outputs(tmp_path):
  model = _randomised_timm_model()
  path = str(tmp_path / 'seresnext50.pth')
  torch.save(model.state_dict(), path)

  flax_model = seresnext.SEResNeXt50()
  x = np.random.default_rng(0).normal(size=(2, 96, 96, 3)).astype(np.float32)
  reference = jax.eval_shape(flax_model.init, jax.random.PRNGKey(0), x)
  variables = pretrained.convert('seresnext50_32x4d',
                                 pretrained.read_state_dict(path), reference)

  outputs = jax.jit(flax_model.apply)(variables, x)
  with torch.no_grad():
    torch_x = torch.from_numpy(x.transpose(0, 3, 1, 2))
    logits = model(torch_x).numpy()
    layer1 = model.layer1(model.maxpool(model.act1(model.bn1(
        model.conv1(torch_x))))).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(outputs['layer1']), layer1,
                             rtol=1e-3, atol=1e-3)
  np.testing.assert_allclose(np.asarray(outputs['logits']), logits,
                             rtol=1e-3, atol=2e-3)
  assert outputs['layer3'].shape == (2, 6, 6, 1024)


def test_conversion_rejects_mismatched_state_dicts():
  model = _randomised_timm_model()
  state = {k: v.numpy() for k, v in model.state_dict().items()}
  flax_model = seresnext.SEResNeXt50()
  reference = jax.eval_shape(flax_model.init, jax.random.PRNGKey(0),
                             jnp.zeros((1, 64, 64, 3)))
  missing = dict(state)
  del missing['layer2.1.se.fc1.weight']
  with pytest.raises(ValueError, match='layer2.1.se.fc1.weight'):
    pretrained.convert('seresnext50_32x4d', missing, reference)
  extra = dict(state, **{'head.extra.weight': np.zeros(3)})
  with pytest.raises(ValueError, match='not used'):
    pretrained.convert('seresnext50_32x4d', extra, reference)
