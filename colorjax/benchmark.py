"""Benchmarks, each printed as a ratio against a baseline run in the same call.

  python -m colorjax.benchmark pipeline [--dataset=semantic_shapes/256]
      [--batch_size=32] [--num_batches=30] [--workers=2]
      [--config=configs/chromacmc.py]
  python -m colorjax.benchmark train --config=configs/chromacmc.py[:demo]
      [--batch_size=16] [--steps=5] [--torch_peer]
  python -m colorjax.benchmark model --config=configs/chromacmc.py
  python -m colorjax.benchmark sample --config=configs/pixsem.py
      [--num_samples=8] [--steps=5]
  python -m colorjax.benchmark sample_scaling --config=configs/pixsem.py
      [--sizes=64,128,256] [--sample_counts=1,8,32] [--num_samples=8]
  python -m colorjax.benchmark infer --config=configs/semanticdriven.py
      [--batch_size=1] [--steps=5]
  python -m colorjax.benchmark editor --config=configs/semanticdriven.py
      [--workdir=W] [--photo=P] [--steps=5]

pipeline: images/s of the grain input pipeline running a config's
`data.preprocess_train` (default: paper 000's, configs/chromacmc.py: resize
the short side to 256, random 256 crop, flip, Lab, equalised L,
normalisation) against a plain single-process PIL + numpy loop doing the
same work, with the same op arguments, on the same records.

sample: PixSem's cached sampler against the naive one (a full generator pass
per pixel), and the cached sampler's per-pixel step against its FLOP bound:
the arithmetic of a teacher-forced generator pass over the same samples
(every pixel computed once, which the cached sampler spreads over its loop;
XLA's cost analysis) at the device's peak. sample_scaling: the cached
sampler over image sizes and samples per image (time per pixel step should
stay flat: linear in pixels).

infer: images/s of SemanticDriven's GridNet + colorizer at 352x352 (or the
config's size), JAX against the same networks in PyTorch with the same
weights (benchmarks/torch_semanticdriven.py); the outputs are compared too.

editor: the editor's stroke-to-update latency (the page's request after a
stroke: map PNG in, colorize, result PNG out) against the model call alone.

train: images/s of one train step, JAX against the PyTorch peer
(benchmarks/torch_chromacmc.py); `--profile=N` adds a per-op XLA profile.
Every timed section reports `other_cpu`, the share of the machine's CPU time
that other processes used while it ran: on a small machine a single busy
neighbour moves the JAX/PyTorch ratio from 0.57 to 1.09 (measured on 2
cores), so a ratio is comparable only when both were timed on a quiet machine.
"""

import ast
import contextlib
import io
import json
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from colorjax import cli
from colorjax import errors

flags.DEFINE_string('dataset', 'semantic_shapes/256', 'tfds dataset')
flags.DEFINE_string('split', 'train', 'split')
flags.DEFINE_string('data_dir', None, 'tfds data_dir')
flags.DEFINE_integer('batch_size', 32, 'images per batch')
flags.DEFINE_integer('num_batches', 30, 'batches timed (after 2 warm-up)')
flags.DEFINE_integer('workers', 2, 'grain worker processes')
flags.DEFINE_string('config', None, 'configs/<paper>.py[:arg] (train, model, '
                    'sample; pipeline: the config whose data.preprocess_train '
                    'it runs, default configs/chromacmc.py)')
flags.DEFINE_integer('steps', 5, 'timed train steps (after 2 warm-up)')
flags.DEFINE_bool('torch_peer', True, 'also time the PyTorch peer step')
flags.DEFINE_string('dtype', None, 'override config.model.dtype')
flags.DEFINE_multi_string(
    'set', [], 'KEY=VALUE: a config override, as --config.KEY=VALUE does '
    'for main (e.g. --set=model.grouped_conv=matmul); repeatable')
flags.DEFINE_string('output', None, 'also write the JSON report here, with '
                    'the date and the command (benchmarks/results/)')
flags.DEFINE_integer('profile', 0, 'train: also profile this many steps per '
                     'XLA op (top ops and time per primitive)')
flags.DEFINE_string('profile_dir', None, 'train: keep the profiler trace here '
                    '(default: a temporary folder)')
flags.DEFINE_integer('num_samples', 8, 'samples per image (sample)')
flags.DEFINE_bool('naive', True, 'also time the naive sampler (sample)')
flags.DEFINE_list('sizes', ['64', '128', '256'],
                  'sample_scaling: image sizes, each with --num_samples')
flags.DEFINE_list('sample_counts', ['1', '8', '32'],
                  'sample_scaling: samples per image, at the config size')
flags.DEFINE_integer('naive_pixels', 0,
                     'time the naive sampler on only the first N of its n '
                     'pixel steps (each one full generator pass) and '
                     'extrapolate to n; 0: all (sample)')
flags.DEFINE_string('workdir', None, 'editor: a trained workdir (default: '
                    'the --config model, randomly initialised)')
flags.DEFINE_string('photo', None, 'editor: the photo to edit (default: a '
                    'synthetic 640x480 scene)')
FLAGS = flags.FLAGS

WARMUP_BATCHES = 2


# The pipeline benchmark's default config: paper 000 (ChromaCMC).
PIPELINE_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs',
    'chromacmc.py')
# The ops `_plain_loop` implements, in this order (their arguments are read
# from the parsed spec).
PLAIN_LOOP_OPS = ('resize_short', 'random_crop', 'flip', 'to_lab',
                  'equalize_l', 'normalize_lab', 'keep')
PIPELINE_KEYS = ('gray', 'ab', 'segmentation')


def _pipeline_spec(config) -> str:
  """The config's training preprocessing, keeping the batch's arrays."""
  return f'{config.data.preprocess_train}|keep({PIPELINE_KEYS!r})'


def _plain_loop_ops(spec: str):
  """{op name: parsed op} of the spec, which must be the plain loop's ops."""
  from colorjax.data import preprocess  # pylint: disable=g-import-not-at-top
  ops = preprocess.parse(spec)
  names = tuple(op.op_name for op in ops)
  if names != PLAIN_LOOP_OPS:
    raise ValueError(f'the plain loop implements {"|".join(PLAIN_LOOP_OPS)}; '
                     f'the config preprocesses with {spec}')
  return dict(zip(names, ops))


def _ensure_prepared(dataset, data_dir):
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top
  try:
    return pipeline.data_source(dataset, FLAGS.split, data_dir)
  except FileNotFoundError:
    if not dataset.startswith('semantic_shapes'):
      raise
    from colorjax.datasets import prepare  # pylint: disable=g-import-not-at-top
    print(f'preparing {dataset} (embedded, generated once)...', flush=True)
    prepare.prepare(dataset, data_dir=data_dir)
    return pipeline.data_source(dataset, FLAGS.split, data_dir)


def _plain_loop(source, num_images, ops, batch_size, seed=0):
  """The baseline: one process, PIL + numpy, same operations (`ops` from
  `_plain_loop_ops`: their arguments), same records."""
  from colorjax.color.lab import rgb_to_lab_numpy  # pylint: disable=g-import-not-at-top
  from colorjax.color import equalize_lightness  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(source))
  short, size = ops['resize_short'].size, ops['random_crop'].size
  norm = ops['normalize_lab']
  batch = []
  for n in range(num_images):
    example = source[int(order[n % len(order)])]
    image = Image.fromarray(example['image'])
    labels = Image.fromarray(example['segmentation'][..., 0])
    scale = short / min(image.size)
    new_size = (max(short, round(image.size[0] * scale)),
                max(short, round(image.size[1] * scale)))
    image = np.asarray(image.resize(new_size, Image.BILINEAR))
    labels = np.asarray(labels.resize(new_size, Image.NEAREST))
    top = rng.integers(0, image.shape[0] - size + 1)
    left = rng.integers(0, image.shape[1] - size + 1)
    image = image[top:top + size, left:left + size]
    labels = labels[top:top + size, left:left + size]
    if rng.random() < ops['flip'].p:
      image, labels = image[:, ::-1], labels[:, ::-1]
    lab = rgb_to_lab_numpy(image.astype(np.float32) / 255.0)
    gray = equalize_lightness(lab[..., :1], ops['equalize_l'].bins)
    gray = gray / 100.0 * (norm.l_high - norm.l_low) + norm.l_low
    batch.append((gray, lab[..., 1:] / norm.ab_scale, labels[..., None]))
    if len(batch) == batch_size:
      yield tuple(np.stack(x) for x in zip(*batch))
      batch = []


def _time_batches(iterator, num_batches, batch_size):
  for _ in range(WARMUP_BATCHES):
    next(iterator)
  start = time.perf_counter()
  for _ in range(num_batches):
    next(iterator)
  return num_batches * batch_size / (time.perf_counter() - start)


def benchmark_pipeline():
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top
  config = _load_config(FLAGS.config or PIPELINE_CONFIG)
  preprocess = _pipeline_spec(config)
  ops = _plain_loop_ops(preprocess)
  source = _ensure_prepared(FLAGS.dataset, FLAGS.data_dir)
  total = (FLAGS.num_batches + WARMUP_BATCHES) * FLAGS.batch_size
  results = {}
  plain = _plain_loop(source, total, ops, FLAGS.batch_size)
  results['plain_pil_numpy_loop'] = _time_batches(plain, FLAGS.num_batches,
                                                  FLAGS.batch_size)
  for workers in sorted({0, FLAGS.workers}):
    spec = pipeline.LoaderSpec(
        dataset=FLAGS.dataset, split=FLAGS.split, data_dir=FLAGS.data_dir,
        global_batch_size=FLAGS.batch_size,
        preprocess=preprocess, worker_count=workers,
        worker_buffer_size=2)
    iterator = iter(pipeline.create_loader(spec, source=source))
    results[f'grain_workers_{workers}'] = _time_batches(
        iterator, FLAGS.num_batches, FLAGS.batch_size)
    del iterator
  baseline = results['plain_pil_numpy_loop']
  report = {
      'benchmark': 'pipeline', 'dataset': FLAGS.dataset,
      'config': FLAGS.config or os.path.relpath(PIPELINE_CONFIG),
      'preprocess': preprocess, 'batch_size': FLAGS.batch_size,
      'images_per_s': {k: round(v, 1) for k, v in results.items()},
      'ratio_vs_plain_loop': {k: round(v / baseline, 2)
                              for k, v in results.items()},
  }
  print(json.dumps(report, indent=1))
  return report


class CpuShare:
  """Share of the machine's CPU time used by *other* processes while the
  block ran (/proc/stat minus this process and its waited-for children)."""

  def __enter__(self):
    self._start = (_machine_busy_s(), _own_cpu_s(), time.perf_counter())
    return self

  def __exit__(self, *unused):
    busy, own, wall = (b - a for a, b in zip(
        self._start, (_machine_busy_s(), _own_cpu_s(), time.perf_counter())))
    capacity = wall * (os.cpu_count() or 1)
    # None where /proc/stat cannot be read (not Linux).
    self.other = None if busy != busy else round(
        max(busy - own, 0.0) / capacity, 3)


def _machine_busy_s():
  try:
    with open('/proc/stat') as f:
      fields = [int(v) for v in f.readline().split()[1:]]
  except (OSError, ValueError):
    return float('nan')
  idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
  return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def _own_cpu_s():
  times = os.times()
  return times.user + times.system + times.children_user + \
      times.children_system


def _warn_if_busy(section, share):
  if share is not None and share > 0.1:
    print(f'warning: other processes used {share:.0%} of the CPU while '
          f'{section} was timed; ratios taken on a busy machine are not '
          'comparable', file=sys.stderr)


def _load_config(config_arg=None):
  """configs/<paper>.py[:arg] (default: --config) -> its config."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  path, _, arg = (config_arg or FLAGS.config).partition(':')
  spec = importlib.util.spec_from_file_location('bench_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  if FLAGS.dtype:
    config.model.dtype = FLAGS.dtype
  for item in FLAGS.set:
    key, eq, value = item.partition('=')
    *parents, leaf = key.split('.')
    target = config
    for parent in parents:
      target = target.get(parent) if hasattr(target, 'get') else None
    if not eq or target is None or leaf not in target:
      raise errors.ConfigError(f'--set={item}: expected KEY=VALUE with KEY a '
                               f'field of {path}')
    try:
      target[leaf] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      target[leaf] = value
  return config


def _random_value(rng, key, shape, dtype, num_classes):
  """A value in the key's real range, so that every loss term does real
  work: ab-bin indices in [0, 313), soft-encoding weights that sum to 1,
  a one-hot scene, {0, 1} tags, class ids, L in [0, 100], the rest in
  [-1, 1]."""
  from colorjax.color import quantize  # pylint: disable=g-import-not-at-top
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


def _random_batch(method, config, batch_size, mesh):
  from colorjax import sharding  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  batch = {}
  for key, spec in method.batch_spec(batch_size).items():
    dtype = np.dtype(spec.dtype)
    value = _random_value(rng, key, spec.shape, dtype,
                          config.data.num_classes)
    batch[key] = sharding.global_array(mesh, value.astype(dtype))
  return batch


def _peak_memory_mb():
  import jax  # pylint: disable=g-import-not-at-top
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return stats['peak_bytes_in_use'] / 2 ** 20, 'device peak_bytes_in_use'
  return peak_rss_mb(), 'process peak RSS (VmHWM)'


def peak_rss_mb() -> float:
  """This process's own peak RSS (VmHWM; unlike ru_maxrss it is not
  inherited from a parent across fork/exec)."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024
  raise OSError('VmHWM not in /proc/self/status')


def benchmark_model():
  """Parameter counts and forward GFLOPs per image (XLA cost analysis)."""
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  config = _load_config()
  method = methods.get_method(config)
  batch = method.batch_spec(1)
  params = method.describe(batch)
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  cost = jax.jit(method.predict).lower(state, batch).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  report = {'benchmark': 'model', 'config': FLAGS.config,
            'image_size': config.data.image_size,
            'parameters': params,
            'parameter_mb_float32': {k: round(v * 4 / 2 ** 20, 2)
                                     for k, v in params.items()},
            'predict_gflops_per_image': round(cost['flops'] / 1e9, 3)}
  print(json.dumps(report, indent=1))
  return report


def _implementations(config):
  """Which layer implementations 'auto' (or the config) picked here."""
  from colorjax.models import layers  # pylint: disable=g-import-not-at-top
  chosen = {}
  for field, cpu in (('upconv', 'adjoint'),
                     ('grouped_conv', layers.CPU_GROUPED_CONV)):
    if field in config.model:
      chosen[field] = layers.resolve_implementation(config.model[field], cpu,
                                                    'xla')
  return chosen


def _peer_path(method_name: str) -> str:
  """benchmarks/torch_<method>.py: the method's PyTorch training peer."""
  return os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), 'benchmarks', f'torch_{method_name}.py')


def _throughput(flops_per_step, step_s, device):
  """GFLOP/s and the fraction of the device's peak they are (bf16 peak on
  accelerators: MFU; fp32 peak from the vector units on CPU)."""
  from colorjax import profiling  # pylint: disable=g-import-not-at-top
  out = {'gflop_per_s': round(flops_per_step / step_s / 1e9, 1)}
  if device.platform == 'cpu':
    peak, _ = profiling.cpu_peak_flops()
    if peak:
      out['fraction_of_fp32_peak'] = round(flops_per_step / step_s / peak, 3)
  else:
    peak = next((v for k, v in profiling.PEAK_BF16_FLOPS.items()
                 if k in device.device_kind), None)
    if peak:
      out['mfu_bf16_peak'] = round(flops_per_step / step_s / peak, 4)
  return out


def _model_flops(config, batch_size) -> float:
  """XLA's cost analysis of the train step with the reference layers
  (`model.upconv` / `model.grouped_conv` = 'xla'), lowered on abstract
  arrays (nothing compiled or allocated)."""
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  from colorjax import profiling  # pylint: disable=g-import-not-at-top
  config = config.copy_and_resolve_references()
  for field in ('upconv', 'grouped_conv'):
    if field in config.model:
      config.model[field] = 'xla'
  method = methods.get_method(config)
  method.prepare_training(None)
  batch = method.batch_spec(batch_size)
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  return profiling.compiled_flops(jax.jit(method.train_step).lower(
      state, batch, jax.random.PRNGKey(0)))


def benchmark_train():
  """Train-step images/s and peak memory, JAX vs the PyTorch peer."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  from colorjax import profiling  # pylint: disable=g-import-not-at-top
  from colorjax import sharding  # pylint: disable=g-import-not-at-top
  config = _load_config()
  batch_size = FLAGS['batch_size'].value if FLAGS['batch_size'].present \
      else config.data.batch_size
  mesh = sharding.data_mesh()
  if config.get('loss') and config.loss.get('rebalance'):
    # Random batches, no dataset: the rebalancing weights (a dataset's ab
    # prior) become uniform; the step keeps the same gather.
    from colorjax.data import prior  # pylint: disable=g-import-not-at-top
    config.loss.prior_file = prior.uniform_prior_file()
  method = methods.get_method(config)
  method.prepare_training(None)
  batch = _random_batch(method, config, batch_size, mesh)
  state, shardings = sharding.init_replicated(
      method.init_state, mesh, jax.random.PRNGKey(config.seed),
      sharding.shard_specs(method.batch_spec(batch_size), mesh))
  step = jax.jit(method.train_step, donate_argnums=(0,),
                 out_shardings=(shardings, sharding.replicated(mesh)))
  rng = jax.random.PRNGKey(0)
  start = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  for i in range(WARMUP_BATCHES):
    state, metrics = step(state, batch, jax.random.fold_in(rng, i))
  jax.block_until_ready(metrics)
  with CpuShare() as jax_load:
    start = time.perf_counter()
    for i in range(FLAGS.steps):
      state, metrics = step(state, batch, jax.random.fold_in(rng, i))
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - start
  _warn_if_busy('the JAX step', jax_load.other)
  memory, memory_kind = _peak_memory_mb()
  op_profile = None
  if FLAGS.profile:

    def run():
      nonlocal state, metrics
      for i in range(FLAGS.profile):
        state, metrics = step(state, batch, jax.random.fold_in(rng, i))
      jax.block_until_ready(metrics)

    op_profile = profiling.profile(run, compiled, FLAGS.profile,
                                   FLAGS.profile_dir)
  device = jax.devices()[0]
  # GFLOP/s count the model's arithmetic, the same for both frameworks:
  # the step with XLA's own layers (the CPU forms add work, e.g. the zeros
  # of blockdiag's block-diagonal kernels). As compiled: reported beside.
  flops_per_step = _model_flops(config, batch_size)
  jax_result = {'images_per_s': FLAGS.steps * batch_size / elapsed,
                'step_s': elapsed / FLAGS.steps,
                'compile_s': round(compile_s, 1),
                f'peak_memory_mb ({memory_kind})': round(memory, 1),
                'loss': float(metrics['loss']),
                'other_cpu': jax_load.other,
                **_throughput(flops_per_step, elapsed / FLAGS.steps, device)}
  report = {'benchmark': 'train', 'config': FLAGS.config,
            'method': config.method,
            'device': f'{jax.device_count()} x {device.device_kind}',
            'dtype': config.model.dtype, 'batch_size': batch_size,
            'implementations': _implementations(config),
            'image_size': config.data.image_size,
            'parameters': method.describe(method.batch_spec(1)),
            'train_step_gflops': round(flops_per_step / 1e9, 2),
            'train_step_gflops_as_compiled': round(
                cost.get('flops', 0.0) / 1e9, 2),
            'jax': jax_result}
  if device.platform == 'cpu':
    report['fp32_peak_assumption'] = profiling.cpu_peak_flops()[1]
  if op_profile:
    report['jax_profile'] = op_profile
  peer = _peer_path(config.method)
  if FLAGS.torch_peer and not os.path.exists(peer):
    report['torch'] = f'no PyTorch peer for {config.method} ({peer})'
  elif FLAGS.torch_peer:
    del state, batch, compiled, step      # the peer's turn on the device
    torch_device = 'cpu' if device.platform == 'cpu' else 'cuda'
    with CpuShare() as torch_load:
      result = subprocess.run(
          [sys.executable, peer, '--config_json', config.to_json(),
           f'--batch_size={batch_size}', f'--steps={FLAGS.steps}',
           f'--device={torch_device}', f'--dtype={config.model.dtype}'],
          capture_output=True, text=True, check=False)
    if result.returncode == 0:
      torch_result = json.loads(result.stdout.strip().splitlines()[-1])
      # Over the whole peer run (import and warm-up included).
      torch_result['other_cpu'] = torch_load.other
      torch_result.update(_throughput(flops_per_step, torch_result['step_s'],
                                      device))
      report['torch'] = torch_result
      _warn_if_busy('the PyTorch peer', torch_load.other)
      report['ratio_jax_over_torch'] = round(
          jax_result['images_per_s'] / torch_result['images_per_s'], 2)
    else:
      report['torch'] = f'peer failed: {result.stderr.strip()[-600:]}'
  print(json.dumps(report, indent=1))
  return report


def benchmark_sample():
  """PixSem: cached vs naive sampler, samples/s in the same run."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  from colorjax.models import pixsem as models_lib  # pylint: disable=g-import-not-at-top
  config = _load_config()
  method = methods.get_method(config)
  num_samples = FLAGS.num_samples
  size = config.data.image_size
  batch = method.batch_spec(1)
  state = jax.jit(method.init_state)(jax.random.PRNGKey(0), batch)
  gray = jnp.asarray(np.random.default_rng(0).uniform(
      -1, 1, (1, size, size, 1)), jnp.float32)
  results, seconds_per_image = {}, {}    # the latter unrounded
  with CpuShare() as load:   # other processes' share while timed
    # The conditioning networks (f, h) run once per image in both samplers.
    conditioning = jax.jit(lambda s, g: method.model.apply(
        {'params': s.model_state['ema']}, g,
        method=lambda m, g: m.conditioning(g))['cond'])
    jax.block_until_ready(conditioning(state, gray))
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
      cond = conditioning(state, gray)
    jax.block_until_ready(cond)
    conditioning_s = (time.perf_counter() - start) / FLAGS.steps
    chroma = size // config.data.downsample
    pixels = chroma * chroma
    partial = 0 < FLAGS.naive_pixels < pixels
    for sampler in ('cached', 'naive') if FLAGS.naive else ('cached',):
      if sampler == 'naive' and partial:
        # The first naive_pixels steps of the naive loop (conditioning
        # included once), extrapolated below: every step is the same
        # full generator pass.
        generator = method.model.generator
        module = models_lib.GENERATORS[generator]
        fn = jax.jit(lambda s, g, r: module.sample_naive(
            s.model_state['ema']['generator'],
            jnp.repeat(conditioning(s, g), num_samples, 0), r,
            method.model.num_mixtures, num_pixels=FLAGS.naive_pixels))
      else:
        fn = jax.jit(lambda s, g, r, sampler=sampler: method.sample(
            s, g, r, num_samples, sampler=sampler)[0])
      samples = fn(state, gray, jax.random.PRNGKey(0))     # compile + warm up
      jax.block_until_ready(samples)
      repeats = FLAGS.steps if sampler == 'cached' else 1
      start = time.perf_counter()
      for i in range(repeats):
        samples = fn(state, gray, jax.random.PRNGKey(i + 1))
      jax.block_until_ready(samples)
      seconds = (time.perf_counter() - start) / repeats
      if sampler == 'naive' and partial:
        seconds = conditioning_s + (seconds - conditioning_s) * (
            pixels / FLAGS.naive_pixels)
      seconds_per_image[sampler] = seconds
      results[sampler] = {'seconds_per_image': round(seconds, 4),
                          'samples_per_s': round(num_samples / seconds, 3)}
      if sampler == 'naive' and partial:
        results[sampler]['extrapolated_from_pixel_steps'] = (
            f'{FLAGS.naive_pixels} of {pixels}')
  _warn_if_busy('sampling', load.other)
  device = jax.devices()[0]
  # The loop alone: the whole sample less the conditioning (timed apart;
  # at tiny sizes the difference is within timing noise, kept >= 0).
  results['cached'].update(_sampler_bound(
      method, state, gray, num_samples, pixels,
      max(seconds_per_image['cached'] - conditioning_s, 0.0), device))
  report = {'benchmark': 'sample', 'config': FLAGS.config,
            'device': f'{jax.device_count()} x {device.device_kind}',
            'image_size': size,
            'chroma_size': size // config.data.downsample,
            'generator': dict(
                type=method.model.generator,
                channels=method.model.generator_channels,
                blocks=method.model.generator_blocks,
                scales=(method.model.generator_scales
                        if method.model.generator == 'pixelcnnpp' else 1)),
            'num_samples_per_image': num_samples,
            'conditioning_seconds_per_image': round(conditioning_s, 4),
            'other_cpu': load.other,
            **results}
  if 'naive' in results:
    # From the unrounded timings: the rounded samples/s have as few as two
    # significant digits for the naive sampler (0.018), which moved a
    # recorded speedup by 2%.
    naive, cached = seconds_per_image['naive'], seconds_per_image['cached']
    report['speedup_cached_over_naive'] = round(naive / cached, 1)
    # The autoregressive part alone (what caching changes).
    report['speedup_generator_only'] = round(
        (naive - conditioning_s) / max(cached - conditioning_s, 1e-9), 1)
  print(json.dumps(report, indent=1))
  return report


def _sampler_bound(method, state, gray, num_samples, pixels, loop_s,
                   device):
  """The cached sampler's autoregressive part against its FLOP bound.

  Bound: a teacher-forced generator pass over the same samples (XLA's
  cost analysis of the model on gray + a chroma map, minus the
  conditioning networks, times the samples) at the device's peak. The
  cached sampler must do at least that arithmetic (each pixel's generator
  outputs computed once), spread over `pixels` sequential steps.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from colorjax import profiling  # pylint: disable=g-import-not-at-top
  model, params = method.model, state.model_state['ema']
  chroma = int(round(pixels ** 0.5))
  ab = jnp.zeros((1, chroma, chroma, 2), jnp.float32)
  full = profiling.compiled_flops(jax.jit(
      lambda p, g, ab: model.apply({'params': p}, g, ab)).lower(
          params, gray, ab).compile())
  conditioning = profiling.compiled_flops(jax.jit(
      lambda p, g: model.apply({'params': p}, g,
                               method=lambda m, g: m.conditioning(g))).lower(
                                   params, gray).compile())
  flops = (full - conditioning) * num_samples
  out = {'pixel_steps': pixels,
         'seconds_per_pixel_step': round(loop_s / pixels, 6),
         'generator_flops_teacher_forced': int(flops)}
  peak = (profiling.cpu_peak_flops()[0] if device.platform == 'cpu' else
          next((v for k, v in profiling.PEAK_BF16_FLOPS.items()
                if k in device.device_kind), None))
  if peak:
    out['flop_bound_seconds'] = float(f'{flops / peak:.4g}')
    out['times_flop_bound'] = round(loop_s / (flops / peak), 2)
  return out


def benchmark_sample_scaling():
  """The cached sampler at several image sizes (--num_samples each) and
  sample counts (the config's size): seconds, per-pixel step, bound."""
  base = FLAGS.config
  size = _load_config().data.image_size
  points = [(int(s), FLAGS.num_samples) for s in FLAGS.sizes] + [
      (size, int(n)) for n in FLAGS.sample_counts
      if (size, int(n)) not in [(int(s), FLAGS.num_samples)
                                for s in FLAGS.sizes]]
  rows = []
  for image_size, num_samples in points:
    FLAGS.set = [a for a in FLAGS.set if not a.startswith('data.image_size=')
                 ] + [f'data.image_size={image_size}']
    FLAGS.num_samples, FLAGS.naive = num_samples, False
    print(f'sample_scaling: {image_size}x{image_size}, {num_samples} '
          'samples per image...', flush=True)
    with contextlib.redirect_stdout(io.StringIO()):
      report = benchmark_sample()
    cached = report['cached']
    rows.append({'image_size': image_size,
                 'chroma_size': report['chroma_size'],
                 'num_samples': num_samples,
                 'conditioning_seconds': report[
                     'conditioning_seconds_per_image'],
                 'other_cpu': report['other_cpu'], **cached})
  FLAGS.config = base
  first = rows[0]
  for row in rows:      # per pixel step and sample, relative to the first
    row['per_pixel_and_sample_vs_first'] = round(
        (row['seconds_per_pixel_step'] / row['num_samples']) /
        (first['seconds_per_pixel_step'] / first['num_samples']), 2)
  report = {'benchmark': 'sample_scaling', 'config': FLAGS.config,
            'rows': rows}
  print(json.dumps(report, indent=1))
  return report


def _torch_peer_module(name: str):
  """benchmarks/<name>.py of this checkout (benchmark peers are not part of
  the installed package)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), 'benchmarks', f'{name}.py')
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _time_calls(fn, steps: int) -> float:
  """Seconds per call of fn() after two warm-up calls."""
  for _ in range(2):
    fn()
  start = time.perf_counter()
  for _ in range(steps):
    fn()
  return (time.perf_counter() - start) / steps


def benchmark_infer():
  """Images/s of SemanticDriven's inference (GridNet, argmax, colorizer) at
  the config's size, against the same two networks in PyTorch with the same
  weights (benchmarks/torch_semanticdriven.py), timed in the same run."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  config = _load_config()
  if config.method != 'semanticdriven':
    raise errors.ConfigError(
        'infer: --config must be configs/semanticdriven.py[:arg]')
  method = methods.get_method(config)
  batch_size = FLAGS['batch_size'].value if FLAGS['batch_size'].present \
      else 1
  size = config.data.image_size
  gray = np.random.default_rng(0).uniform(
      -1, 1, (batch_size, size, size, 1)).astype(np.float32)
  zeros = {k: jnp.zeros(v.shape, v.dtype)
           for k, v in method.batch_spec(batch_size).items()}
  state = jax.jit(method.init_state)(jax.random.PRNGKey(0), zeros)
  predict = jax.jit(method.predict)
  inputs = {'gray': jnp.asarray(gray)}
  results = {}
  with CpuShare() as load:
    seconds = _time_calls(
        lambda: jax.block_until_ready(predict(state, inputs)['ab']),
        FLAGS.steps)
  results['jax'] = {'images_per_s': round(batch_size / seconds, 2),
                    'ms_per_image': round(1000 * seconds / batch_size, 2),
                    'other_cpu': load.other}
  _warn_if_busy('the JAX predict', load.other)
  if FLAGS.torch_peer:
    import torch  # pylint: disable=g-import-not-at-top
    peer = _torch_peer_module('torch_semanticdriven')
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

    with CpuShare() as load:
      torch_seconds = _time_calls(torch_predict, FLAGS.steps)
    _warn_if_busy('the PyTorch peer', load.other)
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
  report = {'benchmark': 'infer', 'config': FLAGS.config,
            'device': f'{jax.device_count()} x {device.device_kind}',
            'image_size': size, 'batch_size': batch_size,
            'parameters': method.describe(zeros),
            'paper_ms_per_image': '8 (GeForce GT 730, paper 002 section 4.1)',
            **results}
  print(json.dumps(report, indent=1))
  return report


def _editor_photo(width=640, height=480) -> np.ndarray:
  """A synthetic scene of flat regions with some texture."""
  rng = np.random.default_rng(0)
  photo = np.zeros((height, width, 3), np.uint8)
  photo[:] = (110, 150, 210)
  photo[height // 2:] = (80, 140, 60)
  for _ in range(6):
    y, x = rng.integers(0, height - 100), rng.integers(0, width - 100)
    photo[y:y + 90, x:x + 90] = rng.integers(30, 240, 3)
  noise = rng.integers(-8, 9, photo.shape)
  return np.clip(photo.astype(np.int32) + noise, 0, 255).astype(np.uint8)


def benchmark_editor():
  """Stroke-to-update latency of `python -m colorjax.editor`: the page's
  /api/colorize round trip (map PNG in, colorize, result PNG out, JSON)
  after each stroke, against the model call alone (engine.colorize with the
  same photo and maps), in the same run."""
  import base64  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  from colorjax.datasets import imaging  # pylint: disable=g-import-not-at-top
  from colorjax.editor import engine as engine_lib  # pylint: disable=g-import-not-at-top
  from colorjax.editor import server  # pylint: disable=g-import-not-at-top
  if FLAGS.workdir:
    engine = engine_lib.WorkdirEngine(FLAGS.workdir)
    what = FLAGS.workdir
  else:
    config = _load_config()
    method = methods.get_method(config)
    zeros = {k: jnp.zeros(v.shape, v.dtype)
             for k, v in method.batch_spec(1).items()}
    state = jax.jit(method.init_state)(jax.random.PRNGKey(0), zeros)
    engine = engine_lib.WorkdirEngine(None, restored=(config, method, state))
    what = f'{FLAGS.config} (random init)'
  if engine.mode != 'edit':
    raise errors.ConfigError(f'editor: {engine.method} takes no semantic map')
  rgb = (imaging.decode_image(FLAGS.photo).array if FLAGS.photo
         else _editor_photo())
  client = server.create_app(engine).test_client()
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, format='PNG')
  start = time.perf_counter()
  body = client.post('/api/image', data={'file': (io.BytesIO(
      buffer.getvalue()), 'photo.png')},
                     content_type='multipart/form-data').get_json()
  upload_s = time.perf_counter() - start     # includes compilation
  labels = imaging.decode_label_map(base64.b64decode(
      body['labels'].split(',', 1)[1]))
  rng = np.random.default_rng(0)
  height, width = labels.shape
  yy, xx = np.mgrid[:height, :width]
  maps = []
  for i in range(FLAGS.steps + 2):        # a disc of another class each
    y, x = rng.integers(0, height), rng.integers(0, width)
    edited = labels.copy()
    edited[(yy - y) ** 2 + (xx - x) ** 2 < 20 ** 2] = i % len(
        engine.class_names)
    maps.append(edited)
  urls = []
  for edited in maps:
    out = io.BytesIO()
    Image.fromarray(edited).save(out, format='PNG')
    urls.append('data:image/png;base64,' + base64.b64encode(
        out.getvalue()).decode())

  def timed(fn):
    times = []
    for i, _ in enumerate(maps):
      start = time.perf_counter()
      fn(i)
      times.append(time.perf_counter() - start)
    return float(np.median(times[2:]))     # two warm-up calls

  with CpuShare() as load:
    model_s = timed(lambda i: engine.colorize(rgb, maps[i]))
    round_trip_s = timed(lambda i: client.post('/api/colorize', json={
        'id': body['id'], 'map': urls[i]}).get_json()['result'])
  _warn_if_busy('the editor', load.other)
  device = jax.devices()[0]
  report = {'benchmark': 'editor', 'model': what,
            'device': f'{jax.device_count()} x {device.device_kind}',
            'photo': f'{width}x{height}',
            'model_input': engine._colorizer.config.data.image_size,  # pylint: disable=protected-access
            'first_upload_s_with_compilation': round(upload_s, 2),
            'stroke_to_update_ms': round(1000 * round_trip_s, 1),
            'model_call_ms': round(1000 * model_s, 1),
            'ratio_round_trip_over_model_call': round(round_trip_s / model_s,
                                                      2),
            'other_cpu': load.other}
  print(json.dumps(report, indent=1))
  return report


BENCHMARKS = {'pipeline': benchmark_pipeline, 'train': benchmark_train,
              'model': benchmark_model, 'sample': benchmark_sample,
              'sample_scaling': benchmark_sample_scaling,
              'infer': benchmark_infer, 'editor': benchmark_editor}


def main(argv):
  if len(argv) < 2 or argv[1] not in BENCHMARKS:
    raise app.UsageError('name a benchmark: python -m colorjax.benchmark '
                         f'{{{",".join(BENCHMARKS)}}} [--flags]')
  from colorjax import console  # pylint: disable=g-import-not-at-top
  console.quiet_libraries(FLAGS.verbosity)
  report = BENCHMARKS[argv[1]]()
  if FLAGS.output and report:
    import datetime  # pylint: disable=g-import-not-at-top
    report = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds'),
              'command': ' '.join(['python -m colorjax.benchmark'] + [
                  a for a in sys.argv[1:] if not a.startswith('--output')]),
              **report}
    directory = os.path.dirname(FLAGS.output)
    if directory:
      os.makedirs(directory, exist_ok=True)
    with open(FLAGS.output, 'w') as f:
      json.dump(report, f, indent=1, default=str)


if __name__ == '__main__':
  cli.run(main)
