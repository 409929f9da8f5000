"""`benchmark train` and `benchmark model`: a method's train step timed on
random batches (images/s, peak memory, GFLOP/s and the share of the
device's peak) against its PyTorch peer (benchmarks/torch_<method>.py, run
in a subprocess), and a model's parameter counts and forward FLOPs.

The step's FLOPs are counted once, with XLA's reference layers
(`model_flops`), so JAX and PyTorch are measured against the same
arithmetic.
"""

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np

from colorjax import methods
from colorjax import profiling
from colorjax import sharding
from colorjax import xla_cpu
from colorjax.benchmark import common
from colorjax.color import quantize
from colorjax.data import prior
from colorjax.models import layers


def random_value(rng, key, shape, dtype, num_classes):
  """A value in the key's real range, so that every loss term does real
  work: ab-bin indices in [0, 313), soft-encoding weights that sum to 1,
  a one-hot scene, {0, 1} tags, class ids, L in [0, 100], the rest in
  [-1, 1]."""
  if key == 'ab_bins':
    return rng.integers(0, quantize.NUM_AB_BINS, shape)
  if key == 'ab_weights':
    weights = rng.uniform(0.05, 1, shape)
    return weights / weights.sum(-1, keepdims=True)
  if key == 'scene':
    return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
  if key == 'labels':
    return rng.integers(0, 2, shape)
  if np.issubdtype(dtype, np.integer):
    return rng.integers(0, num_classes, shape)
  if key == 'l':
    return rng.uniform(0, 100, shape)
  return rng.uniform(-1, 1, shape)


def random_batch(method, config, batch_size, mesh):
  """The method's batch (`batch_spec`) of random values (`random_value`),
  placed on the mesh."""
  rng = np.random.default_rng(0)
  batch = {}
  for key, spec in method.batch_spec(batch_size).items():
    dtype = np.dtype(spec.dtype)
    value = random_value(rng, key, spec.shape, dtype,
                         config.data.num_classes)
    batch[key] = sharding.global_array(mesh, value.astype(dtype))
  return batch


def _implementations(config):
  """Which layer implementations 'auto' (or the config) picked here."""
  chosen = {}
  for field, cpu in (('upconv', layers.CPU_UPCONV),
                     ('grouped_conv', layers.CPU_GROUPED_CONV)):
    if field in config.model:
      chosen[field] = layers.resolve_implementation(config.model[field], cpu,
                                                    'xla')
  if jax.default_backend() == 'cpu':    # the train step's conv kernels
    chosen['xla_cpu_convolutions'] = (
        'xla (XLA_FLAGS)' if xla_cpu.process_flag_set()
        else xla_cpu.resolve_convolutions(
            config.get('xla_cpu_convolutions', 'auto')))
    chosen['xla_cpu_elementwise'] = config.get('xla_cpu_elementwise', 'ynn')
    chosen['padded_weight_grads'] = xla_cpu.train_step_uses_xla_kernels(
        config)
  return chosen


def throughput(flops_per_step, step_s, device):
  """GFLOP/s and the fraction of the device's peak they are (bf16 peak on
  accelerators: MFU; fp32 peak from the vector units on CPU)."""
  out = {'gflop_per_s': round(flops_per_step / step_s / 1e9, 1)}
  peak = profiling.device_peak(device)
  if peak and device.platform == 'cpu':
    out['fraction_of_fp32_peak'] = round(flops_per_step / step_s / peak, 3)
  elif peak:
    out['mfu_bf16_peak'] = round(flops_per_step / step_s / peak, 4)
  return out


def model_flops(config, batch_size) -> float:
  """XLA's cost analysis of the train step with the reference layers
  (`model.upconv` / `model.grouped_conv` = 'xla'), lowered on abstract
  arrays (nothing compiled or allocated)."""
  config = config.copy_and_resolve_references()
  for field in ('upconv', 'grouped_conv'):
    if field in config.model:
      config.model[field] = 'xla'
  method, state, batch = methods.abstract_train_step(config, batch_size)
  return profiling.compiled_flops(jax.jit(method.train_step).lower(
      state, batch, jax.random.PRNGKey(0)))


def benchmark_model(config, config_name: str):
  """Parameter counts and forward GFLOPs per image (XLA cost analysis)."""
  method = methods.get_method(config)
  batch = method.batch_spec(1)
  params = method.describe(batch)
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  flops = profiling.compiled_flops(
      jax.jit(method.predict).lower(state, batch).compile())
  report = {'benchmark': 'model', 'config': config_name,
            'image_size': config.data.image_size,
            'parameters': params,
            'parameter_mb_float32': {k: round(v * 4 / 2 ** 20, 2)
                                     for k, v in params.items()},
            'predict_gflops_per_image': round(flops / 1e9, 3)}
  print(json.dumps(report, indent=1))
  return report


def benchmark_train(config, config_name: str, batch_size: int, steps: int,
                    torch_peer: bool = True, profile: int = 0,
                    profile_dir=None):
  """Train-step images/s and peak memory, JAX vs the PyTorch peer;
  `profile` > 0 adds a per-op XLA profile of that many steps."""
  mesh = sharding.data_mesh()
  if config.get('loss') and config.loss.get('rebalance'):
    # Random batches, no dataset: the rebalancing weights (a dataset's ab
    # prior) become uniform; the step keeps the same gather.
    config.loss.prior_file = prior.uniform_prior_file()
  method = methods.get_method(config)
  method.prepare_training(None)
  batch = random_batch(method, config, batch_size, mesh)
  state, shardings = sharding.init_replicated(
      method.init_state, mesh, jax.random.PRNGKey(config.seed),
      sharding.shard_specs(method.batch_spec(batch_size), mesh))
  step = methods.base.jit_train_step(
      config, method.train_step, donate_argnums=(0,),
      out_shardings=(shardings, sharding.replicated(mesh)))
  rng = jax.random.PRNGKey(0)
  start = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  flops_as_compiled = profiling.compiled_flops(compiled)
  for i in range(common.WARMUP_BATCHES):
    state, metrics = step(state, batch, jax.random.fold_in(rng, i))
  jax.block_until_ready(metrics)
  with common.CpuShare() as jax_load:
    start = time.perf_counter()
    for i in range(steps):
      state, metrics = step(state, batch, jax.random.fold_in(rng, i))
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - start
  common.warn_if_busy('the JAX step', jax_load.other)
  memory, memory_kind = common.peak_memory_mb()
  op_profile = None
  if profile:

    def run():
      nonlocal state, metrics
      for i in range(profile):
        state, metrics = step(state, batch, jax.random.fold_in(rng, i))
      jax.block_until_ready(metrics)

    op_profile = profiling.profile(run, compiled, profile, profile_dir)
  device = jax.devices()[0]
  # GFLOP/s count the model's arithmetic, the same for both frameworks:
  # the step with XLA's own layers (the CPU forms add work, e.g. the zeros
  # of blockdiag's block-diagonal kernels). As compiled: reported beside.
  flops_per_step = model_flops(config, batch_size)
  jax_result = {'images_per_s': steps * batch_size / elapsed,
                'step_s': elapsed / steps,
                'compile_s': round(compile_s, 1),
                f'peak_memory_mb ({memory_kind})': round(memory, 1),
                'loss': float(metrics['loss']),
                'other_cpu': jax_load.other,
                'cores_used': jax_load.cores_used,
                **throughput(flops_per_step, elapsed / steps, device)}
  report = {'benchmark': 'train', 'config': config_name,
            'method': config.method,
            'device': f'{jax.device_count()} x {device.device_kind}',
            'dtype': config.model.dtype, 'batch_size': batch_size,
            'implementations': _implementations(config),
            'image_size': config.data.image_size,
            'parameters': method.describe(method.batch_spec(1)),
            'train_step_gflops': round(flops_per_step / 1e9, 2),
            # 0 where XLA's cost analysis has no count (as before).
            'train_step_gflops_as_compiled': round(
                (0.0 if np.isnan(flops_as_compiled) else flops_as_compiled)
                / 1e9, 2),
            'jax': jax_result}
  if device.platform == 'cpu':
    report['fp32_peak_assumption'] = profiling.cpu_peak_flops()[1]
  if op_profile:
    report['jax_profile'] = op_profile
  peer = common.peer_path(f'torch_{config.method}')
  if torch_peer and not os.path.exists(peer):
    report['torch'] = f'no PyTorch peer for {config.method} ({peer})'
  elif torch_peer:
    del state, batch, compiled, step      # the peer's turn on the device
    torch_device = 'cpu' if device.platform == 'cpu' else 'cuda'
    with common.CpuShare() as torch_load:
      result = subprocess.run(
          [sys.executable, peer, '--config_json', config.to_json(),
           f'--batch_size={batch_size}', f'--steps={steps}',
           f'--device={torch_device}', f'--dtype={config.model.dtype}'],
          capture_output=True, text=True, check=False)
    if result.returncode == 0:
      torch_result = json.loads(result.stdout.strip().splitlines()[-1])
      # Over the whole peer run (import and warm-up included).
      torch_result['other_cpu'] = torch_load.other
      torch_result.update(throughput(flops_per_step, torch_result['step_s'],
                                     device))
      report['torch'] = torch_result
      common.warn_if_busy('the PyTorch peer', torch_load.other)
      report['ratio_jax_over_torch'] = round(
          jax_result['images_per_s'] / torch_result['images_per_s'], 2)
    else:
      report['torch'] = f'peer failed: {result.stderr.strip()[-600:]}'
  print(json.dumps(report, indent=1))
  return report
