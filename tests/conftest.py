import fcntl
import importlib.util
import os
import pickle
import shutil
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The suite compiles hundreds of small programs and runs each a few times.
# XLA:CPU's LLVM backend at -O0 compiles them several times faster (measured
# on ChromaCMC's tiny init: 32.5 s -> 6.8 s), at a run-time cost tiny shapes
# barely feel; no fast-math either way. Set before jax starts its backend,
# and inherited by the commands tests start. COLORJAX_TEST_XLA_OPT=default
# keeps XLA's default; the demo tests drop it (users' run times).
# XLA:CPU's older elemental emitters instead of its MLIR fusion emitters
# halve the compile again (tiny twins' train steps, one core: ChromaCMC
# 6.5 -> 2.5 s, PixSem 4.4 -> 2.3 s; inits 4.6 -> 3.2 s), steps as fast.
TEST_XLA_FLAGS = ('--xla_backend_optimization_level=0 '
                  '--xla_cpu_use_fusion_emitters=false')
if os.environ.get('COLORJAX_TEST_XLA_OPT', '') != 'default' and (
    'xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', '')):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' +
                             TEST_XLA_FLAGS).strip()
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(REPO, "configs"))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

# The test oracles (setup.cfg's `test` extra, and timm, which setup.sh
# installs with --no-deps): import name -> what to install.
TEST_REQUIREMENTS = {
    'torch': 'torch==2.13.0 (CPU build)', 'timm': 'timm==1.0.31 --no-deps',
    'skimage': 'scikit-image', 'colour': 'colour-science',
    'pytorch_msssim': 'pytorch-msssim', 'selenium': 'selenium',
    'tensorboard': 'tensorboard', 'yaml': 'pyyaml',
    'huggingface_hub': 'huggingface_hub'}


def pin_worker_to_its_core():
  """Under pytest-xdist with one worker per core, each worker (and every
  process it starts) runs on its own core. Unpinned, each worker's XLA
  and PyTorch size their thread pools to the whole machine, so two
  workers oversubscribe two cores, and a demo's step (its parallel ops
  wait for a descheduled thread) took 1.7x its quiet time in CI. Measured
  on the 2-core machine (2026-12-07, `benchmark train`, demo configs,
  batch 16): one core per step costs 17-20% less CPU than two threads
  (ChromaCMC 0.406 s vs 2 x 0.245 s; PixSem 0.494 s vs 2 x 0.307 s).
  COLORJAX_TEST_PIN=0 leaves the workers unpinned."""
  worker = os.environ.get('PYTEST_XDIST_WORKER', '')
  count = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
  if (not worker.startswith('gw') or count < 2 or
      os.environ.get('COLORJAX_TEST_PIN', '1') == '0' or
      not hasattr(os, 'sched_setaffinity')):
    return
  cores = sorted(os.sched_getaffinity(0))
  if len(cores) < count:
    return
  share = len(cores) // count
  index = int(worker[2:])
  os.sched_setaffinity(0, cores[index * share:(index + 1) * share])


def pytest_sessionstart(session):
  """One message, not collection errors, when the test extras are missing;
  each xdist worker on its own core(s)."""
  del session
  pin_worker_to_its_core()
  missing = [f'{name} ({package})' for name, package in
             TEST_REQUIREMENTS.items()
             if importlib.util.find_spec(name) is None]
  if missing:
    pytest.exit('the test requirements are not installed: missing '
                + ', '.join(missing) + '. Run `bash setup.sh --test` (it '
                'sets up .venv) and test with .venv/bin/python -m pytest.',
                returncode=2)
  # timm imports torchvision at module level; PyPI's torchvision wheels are
  # CUDA builds that do not load beside the CPU torch, so every test
  # process gets the stub (benchmarks/torchvision_stub.py) first.
  import torchvision_stub  # pylint: disable=g-import-not-at-top,unused-import


def user_environment():
  """os.environ without the suite's XLA setting: what a user's command
  runs with (the demo tests, whose run time matters)."""
  env = dict(os.environ)
  flags = env.get('XLA_FLAGS', '').replace(TEST_XLA_FLAGS, '').strip()
  if flags:
    env['XLA_FLAGS'] = flags
  else:
    env.pop('XLA_FLAGS', None)
  return env


def tiny_config(data_dir, name='chromacmc', **overrides):
  """A config's `tiny` twin on the session's small semantic_shapes build."""
  import importlib  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(name).get_config('tiny')
  # The version the twin pins (1.0.0 for all but paper 001's 2.0.0).
  version = config.data.dataset.partition(':')[2]
  config.data.dataset = 'semantic_shapes/test' + (f':{version}' if version
                                                    else '')
  config.data.data_dir = data_dir
  return apply_overrides(config, overrides)


def fit_fixed_batch(method, batch, steps, seed=0):
  """`steps` jitted train steps on one batch from a fresh state: (final
  state, every step's metrics as floats). The overfit tests' loop."""
  import jax  # pylint: disable=g-import-not-at-top
  state = method.init_state(jax.random.PRNGKey(seed), batch)
  step = jax.jit(method.train_step)
  history = []
  for i in range(steps):
    state, metrics = step(state, batch, jax.random.PRNGKey(i))
    history.append({k: float(v) for k, v in metrics.items()})
  return state, history


def apply_overrides(config, overrides):
  """Sets each dotted key ('data.batch_size') of `overrides` in `config`."""
  for key, value in overrides.items():
    target = config
    *parents, leaf = key.split('.')
    for parent in parents:
      target = target[parent]
    target[leaf] = value
  return config


# Minutes each slow test takes alone on the 2-core machine (2026-12-06),
# to start the longest first; unlisted slow tests count as 3.
SLOW_MINUTES = {'test_pixsem_demo_models_colour_and_samples_every_mode': 6,
                'test_demo_command_trains_evaluates_and_colorizes': 5,
                'test_whole_quick_suite_every_method_and_ablation': 4}


def pytest_collection_modifyitems(config, items):
  """Under pytest-xdist's worksteal (test.sh runs fast and slow tests in one
  run on both cores) each worker starts with a contiguous share of this
  list: the slow tests go to the heads of the shares, longest first, each
  to the share with the fewest slow minutes so far, so that no worker
  starts one last."""
  workers = int(getattr(config, 'workerinput', {}).get('workercount', 1))
  slow = [item for item in items if item.get_closest_marker('slow')]
  if workers < 2 or not slow:
    return
  minutes = lambda item: SLOW_MINUTES.get(item.originalname, 3)  # pylint: disable=unnecessary-lambda-assignment
  heads = [[] for _ in range(workers)]
  for item in sorted(slow, key=minutes, reverse=True):
    min(heads, key=lambda head: sum(map(minutes, head))).append(item)
  rest = [item for item in items if not item.get_closest_marker('slow')]
  ordered, remaining = [], len(items)
  for worker, head in enumerate(heads):
    share = remaining // (workers - worker)   # as worksteal splits
    take = max(share - len(head), 0)
    ordered += head + rest[:take]
    rest = rest[take:]
    remaining -= share
  items[:] = ordered + rest


@pytest.fixture
def rng():
  return np.random.default_rng(1234)


def shared_across_workers(tmp_path_factory, name, build):
  """build(directory) once per test run, not once per worker.

  Under pytest-xdist every worker runs each session fixture itself: two
  workers trained the same tiny workdirs side by side. The first worker to
  ask builds under a file lock in the run's common temporary root; the
  others wait for it and load its pickled result. For read-only products
  (datasets, trained workdirs that tests only read or write new files
  beside). Without xdist: build into a fresh temporary directory."""
  if not os.environ.get('PYTEST_XDIST_WORKER'):
    return build(str(tmp_path_factory.mktemp(name)))
  root = tmp_path_factory.getbasetemp().parent / 'shared'
  root.mkdir(exist_ok=True)
  done = root / f'{name}.pickle'
  with open(root / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      if done.exists():
        return pickle.loads(done.read_bytes())
      directory = root / name
      shutil.rmtree(directory, ignore_errors=True)   # a failed build's
      directory.mkdir()
      value = build(str(directory))
      done.write_bytes(pickle.dumps(value))
      return value
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope='session')
def shapes_data_dir(tmp_path_factory):
  """A small semantic_shapes build (config 'test': 32x32, versions 2.0.0 and
  1.0.0) shared by tests."""
  def build(data_dir):
    from colorjax.datasets import semantic_shapes  # pylint: disable=g-import-not-at-top
    config = semantic_shapes.SemanticShapesConfig(
        name='test', image_size=32, num_train=24, num_validation=8,
        num_test=0)
    for version in (None, '1.0.0'):   # the default (2.0.0, scenes) and 1.0.0
      builder = semantic_shapes.SemanticShapes(
          data_dir=data_dir, file_format='array_record', config=config,
          version=version)
      builder.download_and_prepare()
    return data_dir
  return shared_across_workers(tmp_path_factory, 'tfds', build)


@pytest.fixture(scope='session', autouse=True)
def compilation_cache(tmp_path_factory):
  """Runs of the same tiny config share compiled programs (also across the
  subprocesses tests start, through the environment)."""
  import jax  # pylint: disable=g-import-not-at-top
  # One cache for the whole run: under pytest-xdist every worker has its own
  # basetemp, all inside one root, and the workers compile the same tiny
  # programs.
  root = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    root = root.parent
  cache = str(root / 'jax_cache')
  os.makedirs(cache, exist_ok=True)
  jax.config.update('jax_compilation_cache_dir', cache)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = cache
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0.5'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'
  yield cache


@pytest.fixture(scope='session')
def tiny_run(shapes_data_dir, tmp_path_factory, compilation_cache):
  """ChromaCMC's tiny twin trained end to end once: (workdir, results)."""
  del compilation_cache
  from colorjax import train  # pylint: disable=g-import-not-at-top
  def build(workdir):
    return workdir, train.train_and_evaluate(tiny_config(shapes_data_dir),
                                             workdir)
  return shared_across_workers(tmp_path_factory, 'tiny_chromacmc', build)


@pytest.fixture(scope='session')
def tiny_pixsem_run(shapes_data_dir, tmp_path_factory, compilation_cache):
  """PixSem's tiny twin trained end to end once (6 steps, one evaluation):
  (workdir, results). Tests only read it (colorize, evaluate, samplers)."""
  del compilation_cache
  from colorjax import train  # pylint: disable=g-import-not-at-top
  def build(workdir):
    return workdir, train.train_and_evaluate(
        tiny_config(shapes_data_dir, 'pixsem'), workdir)
  return shared_across_workers(tmp_path_factory, 'tiny_pixsem', build)


@pytest.fixture(scope='session')
def semanticdriven_workdirs(shapes_data_dir, tmp_path_factory):
  """SemanticDriven's two stages, tiny twins, trained once: (stage 1
  GridNet workdir, stage 2 workdir with stage 1's GridNet inside)."""
  import semanticdriven  # pylint: disable=g-import-not-at-top
  from colorjax import train  # pylint: disable=g-import-not-at-top
  def build(root):
    seg = os.path.join(root, 'segmentation')
    col = os.path.join(root, 'colorization')
    for arg, workdir in (('segmentation_tiny', seg),
                         ('colorization_tiny', col)):
      config = semanticdriven.get_config(arg)
      config.data.dataset = 'semantic_shapes/test:1.0.0'
      config.data.data_dir = shapes_data_dir
      if workdir == col:
        config.num_train_steps = 8
        config.init_from.gridnet.workdir = seg
      train.train_and_evaluate(config, workdir)
    return seg, col
  return shared_across_workers(tmp_path_factory, 'semanticdriven', build)
