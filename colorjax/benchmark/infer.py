"""`benchmark infer`: images/s of SemanticDriven's inference (GridNet,
argmax, colorizer) at the config's size, JAX against the same two networks
in PyTorch with the same weights (benchmarks/torch_semanticdriven.py),
timed in the same run; the two outputs are compared before the timings
count.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import errors
from colorjax import methods
from colorjax.benchmark import common


def benchmark_infer(config, config_name: str, batch_size: int, steps: int,
                    torch_peer: bool = True):
  """JAX predict against the PyTorch peer (if `torch_peer`), images/s."""
  if config.method != 'semanticdriven':
    raise errors.ConfigError(
        'infer: --config must be configs/semanticdriven.py[:arg]')
  method = methods.get_method(config)
  size = config.data.image_size
  gray = np.random.default_rng(0).uniform(
      -1, 1, (batch_size, size, size, 1)).astype(np.float32)
  state, zeros = common.random_state(method, batch_size)
  predict = jax.jit(method.predict)
  inputs = {'gray': jnp.asarray(gray)}
  results = {}
  with common.CpuShare() as load:
    seconds = common.time_calls(
        lambda: jax.block_until_ready(predict(state, inputs)['ab']), steps)
  results['jax'] = {'images_per_s': round(batch_size / seconds, 2),
                    'ms_per_image': round(1000 * seconds / batch_size, 2),
                    'other_cpu': load.other}
  common.warn_if_busy('the JAX predict', load.other)
  if torch_peer:
    # PyTorch only for the peer (an optional, heavy dependency).
    import torch  # pylint: disable=g-import-not-at-top
    peer = common.torch_peer_module('torch_semanticdriven')
    model = config.model
    gridnet = peer.TorchGridNet(tuple(model.grid_depths), model.grid_columns,
                                config.data.num_classes).eval()
    colorizer = peer.TorchTwoStreamUNet(tuple(model.encoder_widths),
                                        config.data.num_classes).eval()
    peer.fill(gridnet, jax.device_get(state.params['gridnet']),
              jax.device_get(state.model_state['gridnet']))
    peer.fill(colorizer, jax.device_get(state.params['colorizer']))
    x = peer.nchw(gray)

    def torch_predict():
      with torch.no_grad():
        labels = gridnet(x).argmax(1, keepdim=True)
        return colorizer(x, labels, model.instance_norm != 'none')

    with common.CpuShare() as load:
      torch_seconds = common.time_calls(torch_predict, steps)
    common.warn_if_busy('the PyTorch peer', load.other)
    results['torch'] = {
        'images_per_s': round(batch_size / torch_seconds, 2),
        'ms_per_image': round(1000 * torch_seconds / batch_size, 2),
        'other_cpu': load.other}
    # Same weights, same input: the two must agree before timings count.
    ab_jax = np.asarray(predict(state, inputs)['ab'])
    ab_torch = torch_predict().numpy().transpose(0, 2, 3, 1)
    results['max_abs_difference_ab'] = float(np.abs(ab_jax - ab_torch).max())
    results['ratio_jax_over_torch'] = round(torch_seconds / seconds, 3)
  device = jax.devices()[0]
  report = {'benchmark': 'infer', 'config': config_name,
            'device': f'{jax.device_count()} x {device.device_kind}',
            'image_size': size, 'batch_size': batch_size,
            'parameters': method.describe(zeros),
            'paper_ms_per_image': '8 (GeForce GT 730, paper 002 section 4.1)',
            **results}
  print(json.dumps(report, indent=1))
  return report
