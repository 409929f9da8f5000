"""Every method and its ablations: the same data, budget and evaluation.

  python -m colorjax.compare --suite=demo [--seeds=N] [--images=N] \
      [--only=chromacmc,pixsem/embedding] [--output=DIR]
  python -m colorjax.compare --suite=demo --quick      # :tiny twins, minutes
  python -m colorjax.compare --suite=paper --data_dir=DIR --dry_run

The runs (`plan`), each in DIR/runs/<method>/<variant>/seed<S>:
  chromacmc       paper | no_segmentation (Table 2) | l2 (Table 3) |
                  cmc_normalised (not the paper's: eq. 9's CMC term in
                  Lab / 110 units, configs/chromacmc.py)
  scenecontext    regsoft | clasregsoft | segclasregsoft (paper; V-C)
  semanticdriven  segmentation (stage 1, GridNet; not a table row), then
                  paper (colorizer on GridNet's maps) | gt_maps (the same
                  colorizer scored under the ground-truth maps: an
                  evaluation-only workdir, see below) | no_instance_norm
  instanceaware   paper | no_classifier (Zhang et al.'s network alone)
  pixsem          embedding | semantic_embedding | semantic_generator
                  (paper) | feature_transform (Fig. 3's purple, +blue,
                  +green, feature transform)
from each config's `:demo` twin (`--quick`: `:tiny`; `--suite=paper`: the
paper-scale config), with `--config.*` overrides only (`--dry_run` prints
them as `python -m colorjax.main` commands).

Same budget: every run (each of SemanticDriven's two stages) trains on
`--images` images, `num_train_steps = ceil(images / data.batch_size)` of
its config's batch. Seeds: `--seeds=N` runs seeds 0..N-1
(`config.seed = config.data.seed = S`); the table shows mean ± sample
standard deviation over seeds. Demo suites switch the trainer's periodic
evaluations off (`eval_every_steps=0`; no demo schedule reads one): each
run is evaluated once at the end, by the suite.

One evaluation: the `suite` preset (below) for every run, on each config's
evaluation split, the first `max_images` images (demo 256, quick 16).
The model-input protocol ('model'): the demo images are 64x64, every demo
model's input too, so it is also the photos' own resolution; it is what
the trainer's evaluation and the README's ablation tables use, and under it
SemanticDriven can be fed ground-truth maps (the `semantic_map` op, as its
`val_gt_maps` evaluator). SceneContext's demo trains and is scored on
semantic_shapes 2.0.0 (scene types decide the palette), the others on
1.0.0: results are put side by side only within one evaluation dataset
(colorjax.compare refuses to mix protocols), so the table is split by
dataset. At paper scale 'model' means each config's own evaluation crop
(they differ between methods): compare across methods with
`--preset=full` there (no gt_maps row then; it needs the model protocol).

Also measured, per run, on the machine that ran it: training wall-clock
(the trainer's whole call: data, compilation, steps, checkpoints; stage 1
included for SemanticDriven's rows) and train images/s (median of the
logged steps/s windows after the first, which holds the compilation, x
batch); parameters (every network the method trains or holds); GFLOPs per
image of `predict` at batch 1 (XLA's cost analysis); and the latency of
the jitted `predict` on one validation image after two warm-up calls
(median). PixSem's `predict` samples with a `lax.scan`, whose body XLA's
cost analysis counts once, so its GFLOPs are those of the teacher-forced
forward pass (every chroma pixel at once: the work the cached sampler
spreads over its loop); the loop-once number is kept in suite_run.json.

Paper scale (`--suite=paper --data_dir=DIR`, not run in CI): the
datasets prepared in DIR (colorjax.datasets.prepare; SceneContext also its
scene soft labels, colorjax.datasets.scene_labels), the trainer's own
evaluation cadence kept (SceneContext's plateau schedule reads it), default
budget 1,058,200 images (100 epochs of VOC 2012 train_aug) and 5,000
evaluation images. Weights files go in with `--override=METHOD:KEY=VALUE`,
e.g. `--override=chromacmc:model.pretrained_branch=PATH`,
`--override=instanceaware:init_from.model.pretrained=eccv16:PATH`.
SceneContext runs its stage 1 config only (not the cyclic stage 2).

Cost (`--dry_run --cost`): each training run's FLOPs from XLA's cost
analysis of its train step, lowered on abstract arrays at the config's
batch (nothing is allocated or compiled, so it runs on a laptop for the
paper configs), times its steps; and the device-hours that takes at a
device's dense bf16 peak (H100/H200: 989 TFLOP/s) and at an assumed
utilisation (ASSUMED_MFU, not a measurement). Data loading, evaluation,
checkpoints and compilation are not in it.

Resuming: a rerun skips a run whose training, evaluation and profile are
recorded (DIR/runs/.../suite_run.json and eval/<preset>/metrics.json); the
trainer resumes a run stopped midway from its last checkpoint.

Outputs in DIR: suite.md (the table, the command, date, machine), suite.csv
(every metric, mean and std per configuration), suite_runs.csv (every run),
suite.json, suite.png (the same validation images colorized by every run,
seed 0, one block per evaluation dataset).
"""

import contextlib
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import platform
import shlex
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from colorjax import compare
from colorjax import protocols

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUITE_PRESET = 'suite'
RUN_RECORD = 'suite_run.json'
SUITES = ('demo', 'paper')


# Table columns after the method/variant/seeds columns: (key, header).
COLUMNS = (
    ('psnr', 'PSNR dB'), ('delta_psnr', 'Δ PSNR vs paper'), ('ssim', 'SSIM'),
    ('rmse_ab', 'ab RMSE'), ('l2ab_auc', 'AuC'),
    ('colorfulness', 'colourfulness'), ('delta_colorfulness', 'dCF'),
    ('miou', 'own mIoU'), ('top1', 'tag/scene top-1'),
    ('train_s', 'train s'), ('train_images_per_s', 'train img/s'),
    ('parameters', 'parameters'), ('gflops', 'GFLOPs/img'),
    ('latency_ms', 'latency ms'))


@dataclasses.dataclass(frozen=True)
class Variant:
  name: str
  description: str
  overrides: Tuple[Tuple[str, Any], ...] = ()
  paper: bool = False           # the paper's full model: the reference row
  gt_maps: bool = False         # evaluation-only: the paper run, true maps


@dataclasses.dataclass(frozen=True)
class Method:
  name: str
  config: str                   # configs/<file>.py
  arg: Dict[str, str]           # suite kind ('demo', 'quick', 'paper') -> arg
  variants: Tuple[Variant, ...]
  stage1_arg: Optional[Dict[str, str]] = None   # SemanticDriven's GridNet


METHODS = (
    Method('chromacmc', 'chromacmc.py',
           dict(demo='demo', quick='tiny', paper='voc'), (
               Variant('paper', 'CMC + segmentation head (paper)',
                       paper=True),
               Variant('no_segmentation', 'without segmentation (Table 2)',
                       (('model.use_segmentation', False),)),
               Variant('l2', 'L2 instead of CMC (Table 3)',
                       (('loss.colour', 'l2'),)),
               Variant('cmc_normalised', 'CMC in Lab / 110 units (ours)',
                       (('loss.cmc_scale', 'normalised'),)))),
    Method('scenecontext', 'scenecontext.py',
           dict(demo='demo', quick='tiny', paper='coco'), (
               Variant('regsoft', 'RegSoft', (('model.variant', 'regsoft'),)),
               Variant('clasregsoft', 'ClasRegSoft',
                       (('model.variant', 'clasregsoft'),)),
               Variant('segclasregsoft', 'SegClasRegSoft (paper)',
                       (('model.variant', 'segclasregsoft'),), paper=True))),
    Method('semanticdriven', 'semanticdriven.py',
           dict(demo='colorization_demo', quick='colorization_tiny',
                paper='colorization'), (
               Variant('paper', 'GridNet maps, instance norm (paper)',
                       paper=True),
               Variant('gt_maps', 'ground-truth maps (same colorizer)',
                       gt_maps=True),
               Variant('no_instance_norm', 'without instance norm (4.1)',
                       (('model.instance_norm', 'none'),))),
           stage1_arg=dict(demo='segmentation_demo',
                           quick='segmentation_tiny', paper='segmentation')),
    Method('instanceaware', 'instanceaware.py',
           dict(demo='demo', quick='tiny', paper='voc'), (
               Variant('paper', 'with classification branch (paper)',
                       paper=True),
               Variant('no_classifier', "Zhang et al.'s network alone",
                       (('model.use_classifier', False),)))),
    Method('pixsem', 'pixsem.py',
           dict(demo='demo', quick='tiny', paper='voc'), (
               Variant('embedding', 'embedding only (purple)',
                       (('model.variant', 'embedding'),)),
               Variant('semantic_embedding', '+ semantic (purple+blue)',
                       (('model.variant', 'semantic_embedding'),)),
               Variant('semantic_generator',
                       '+ generator semantics (purple+blue+green, paper)',
                       (('model.variant', 'semantic_generator'),),
                       paper=True),
               Variant('feature_transform', 'feature transform',
                       (('model.variant', 'feature_transform'),)))),
)
METHOD_NAMES = tuple(m.name for m in METHODS)

# Suite-level budget (training images per run) and evaluation size.
DEFAULT_IMAGES = {'demo': 12_800,      # 800 steps of batch 16, as the demos
                  'quick': 48,         # 12 steps of the :tiny batch of 4
                  'paper': 1_058_200}  # 100 epochs of VOC 2012 train_aug
DEFAULT_EVAL_IMAGES = {'demo': 256, 'quick': 16, 'paper': 5_000}
LATENCY_CALLS = {'demo': 20, 'quick': 3, 'paper': 10}
FIGURE_IMAGES = 6


@dataclasses.dataclass
class Run:
  """One planned training (or evaluation-only) run."""
  method: str
  variant: str
  seed: int
  config: str                         # 'configs/x.py:arg'
  overrides: Dict[str, Any]           # --config.<key>=<value>, in order
  workdir: str
  description: str = ''
  paper: bool = False
  row: bool = True                    # a table row (stage 1 is not)
  source: Optional[str] = None        # gt_maps: the trained workdir
  needs: Tuple[str, ...] = ()         # workdirs trained before this one
  steps: int = 0
  batch_size: int = 0

  @property
  def name(self) -> str:
    return f'{self.method}/{self.variant}'

  @property
  def eval_only(self) -> bool:
    return self.source is not None

  def command(self) -> str:
    """The equivalent `python -m colorjax.main` command line."""
    if self.eval_only:
      return (f'# {self.name}: {self.source} evaluated with '
              "--config.data.preprocess_eval+='|semantic_map'")
    parts = ['python', '-m', 'colorjax.main', f'--config={self.config}',
             f'--workdir={self.workdir}']
    parts += [f'--config.{k}={_flag_value(v)}'
              for k, v in self.overrides.items()]
    return ' '.join(shlex.quote(p) for p in parts)


def _flag_value(value) -> str:
  return str(value)


# ------------------------------------------------------------------ plan
def load_config(config: str):
  """configs/<file>.py[:arg] -> its ConfigDict."""
  path, _, arg = config.partition(':')
  if not os.path.isabs(path):
    path = os.path.join(REPO, path)
  spec = importlib.util.spec_from_file_location(
      'suite_config_' + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg or None)


def apply_overrides(config, overrides: Dict[str, Any]):
  """Sets each dotted key of `overrides` (as --config.<key>=value does)."""
  for key, value in overrides.items():
    target = config
    *parents, leaf = key.split('.')
    for parent in parents:
      target = target[parent]
    if leaf not in target:
      raise KeyError(f'{key}: no such config field')
    target[leaf] = value
  return config


def model_resolution(preset: str) -> bool:
  """Whether the preset scores colours at the model's input."""
  return all(cfg.get('resolution', 'model') == 'model'
             for cfg in protocols.get(preset).evals.values()
             if cfg['type'] == 'colour')


def parse_only(only: Optional[Sequence[str]]):
  """'chromacmc', 'pixsem/embedding' -> {method: set of variants or None}."""
  if not only:
    return None
  selected: Dict[str, Optional[set]] = {}
  for item in only:
    item = item.strip()
    if not item:
      continue
    method, _, variant = item.partition('/')
    known = {m.name: m for m in METHODS}
    if method not in known:
      raise ValueError(f'--only: unknown method {method!r}; known: '
                       f'{", ".join(METHOD_NAMES)}')
    if variant:
      names = [v.name for v in known[method].variants]
      if variant not in names:
        raise ValueError(f'--only: {method} has no variant {variant!r}; '
                         f'known: {", ".join(names)}')
      if selected.get(method, set()) is not None:
        selected.setdefault(method, set()).add(variant)
    else:
      selected[method] = None
  return selected


def _shapes_dataset(dataset: str, shapes: Optional[str]) -> str:
  """'semantic_shapes/64:1.0.0' -> 'semantic_shapes/<shapes>:1.0.0'."""
  if not shapes or not dataset.startswith('semantic_shapes/'):
    return dataset
  _, _, version = dataset.partition(':')
  return f'semantic_shapes/{shapes}' + (f':{version}' if version else '')


def plan(suite: str = 'demo', output: str = 'suite', quick: bool = False,
         images: Optional[int] = None, seeds: int = 1,
         only: Optional[Sequence[str]] = None,
         data_dir: Optional[str] = None, shapes: Optional[str] = None,
         extra: Sequence[str] = ()) -> List[Run]:
  """The runs of a suite, in an order that trains dependencies first.

  extra: 'METHOD:KEY=VALUE' (or '*:KEY=VALUE') overrides added to the
  runs of that method (e.g. a weights file at paper scale).
  """
  if suite not in SUITES:
    raise ValueError(f'unknown suite {suite!r}; known: {", ".join(SUITES)}')
  if quick and suite != 'demo':
    raise ValueError('--quick is the demo suite on the :tiny twins')
  if seeds < 1:
    raise ValueError(f'--seeds must be at least 1, not {seeds}')
  kind = 'quick' if quick else suite
  images = images or DEFAULT_IMAGES[kind]
  selected = parse_only(only)
  additions = _parse_extra(extra)
  output = os.path.abspath(output)
  runs: List[Run] = []
  for method in METHODS:
    if selected is not None and method.name not in selected:
      continue
    wanted = selected.get(method.name) if selected else None
    variants = [v for v in method.variants
                if wanted is None or v.name in wanted]
    if any(v.gt_maps for v in variants) and not any(
        v.paper for v in variants):
      variants.insert(0, next(v for v in method.variants if v.paper))
    for seed in range(seeds):
      def common(config_arg, config=None, seed=seed, method=method):
        config = config or load_config(
            f'configs/{method.config}:{config_arg}')
        steps = -(-images // config.data.batch_size)
        overrides = {'num_train_steps': steps, 'seed': seed,
                     'data.seed': seed}
        if suite == 'demo':
          overrides['eval_every_steps'] = 0
          overrides['checkpoint_every_steps'] = min(
              config.checkpoint_every_steps, steps) if not quick else steps
          dataset = _shapes_dataset(config.data.dataset, shapes)
          if dataset != config.data.dataset:
            overrides['data.dataset'] = dataset
        if data_dir:
          overrides['data.data_dir'] = data_dir
        for target in (method.name, '*'):
          overrides.update(additions.get(target, {}))
        return overrides, steps, config.data.batch_size

      stage1 = None
      if method.stage1_arg:
        arg = method.stage1_arg[kind]
        overrides, steps, batch = common(arg)
        stage1 = os.path.join(output, 'runs', method.name, 'segmentation',
                              f'seed{seed}')
        runs.append(Run(method.name, 'segmentation', seed,
                        f'configs/{method.config}:{arg}', overrides, stage1,
                        'stage 1: GridNet', row=False, steps=steps,
                        batch_size=batch))
      arg = method.arg[kind]
      base = load_config(f'configs/{method.config}:{arg}')
      for variant in variants:
        workdir = os.path.join(output, 'runs', method.name, variant.name,
                               f'seed{seed}')
        overrides, steps, batch = common(arg, base)
        overrides.update(dict(variant.overrides))
        needs = ()
        if stage1:
          overrides['init_from.gridnet.workdir'] = stage1
          needs = (stage1,)
        source = None
        if variant.gt_maps:
          source = os.path.join(output, 'runs', method.name, 'paper',
                                f'seed{seed}')
          needs = (source,)
        runs.append(Run(method.name, variant.name, seed,
                        f'configs/{method.config}:{arg}', overrides, workdir,
                        variant.description, variant.paper, source=source,
                        needs=needs, steps=steps, batch_size=batch))
  return runs


def _parse_extra(extra: Sequence[str]) -> Dict[str, Dict[str, Any]]:
  import ast  # pylint: disable=g-import-not-at-top
  out: Dict[str, Dict[str, Any]] = {}
  for item in extra or ():
    target, sep, assignment = item.partition(':')
    key, eq, value = assignment.partition('=')
    if not sep or not eq or (target != '*' and target not in METHOD_NAMES):
      raise ValueError(f'--override {item!r}: expected METHOD:KEY=VALUE '
                       f'(METHOD one of {", ".join(METHOD_NAMES)} or *)')
    try:
      parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      parsed = value
    out.setdefault(target, {})[key] = parsed
  return out


# ------------------------------------------------------------ running
@contextlib.contextmanager
def _output_to(path: str):
  """Everything written to this process's stdout/stderr (and by its child
  processes) goes to `path` meanwhile: the trainer's lines, library
  warnings, XLA's C++ logs."""
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(1), os.dup(2)
  with open(path, 'a', buffering=1) as log:
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
      # sys.stdout need not be file descriptor 1 (a captured stream).
      with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      os.close(saved[0])
      os.close(saved[1])


def _read_json(path: str) -> Optional[dict]:
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def _write_json(path: str, value) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=1, sort_keys=True, default=_jsonable)
  os.replace(tmp, path)


def _jsonable(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  return str(value)


def _latest_step(workdir: str) -> Optional[int]:
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return None
  steps = [int(d) for d in os.listdir(directory) if d.isdigit()]
  return max(steps) if steps else None


def train_images_per_s(workdir: str, after_step: int,
                       batch_size: int) -> Optional[float]:
  """Median logged steps/s after `after_step` x batch, over the log
  windows after the attempt's first (which holds the compilation); None
  with fewer than two windows."""
  path = os.path.join(workdir, 'metrics.jsonl')
  rates = []
  if os.path.isfile(path):
    with open(path) as f:
      for line in f:
        record = json.loads(line)
        if (record.get('step', 0) > after_step and
            'train/steps_per_sec' in record):
          rates.append(record['train/steps_per_sec'])
  if len(rates) < 2:
    return None
  return float(np.median(rates[1:])) * batch_size


def _example_batch(config, count: int, source_index: int = 0):
  """The first `count` evaluation examples, preprocessed as the model
  protocol does, with the keys predict reads (and `l`, `ab`)."""
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  from colorjax.data import pipeline  # pylint: disable=g-import-not-at-top
  from colorjax.data import preprocess  # pylint: disable=g-import-not-at-top
  data = config.data
  source = pipeline.data_source(data.dataset, data.eval_split,
                                data.get('data_dir'),
                                tuple(data.get('joins') or ()))
  spec = data.preprocess_eval
  if data.get('label_ops'):
    spec = f'{data.label_ops}|{spec}'
  ops = preprocess.parse(spec)
  method = methods.get_method(config)
  keys = (set(method.predict_keys) | set(method.predict_optional_keys) |
          {'l', 'ab'})
  examples = [preprocess.apply(ops, source[source_index + i])
              for i in range(min(count, len(source)))]
  return method, {k: np.stack([np.asarray(e[k]) for e in examples])
                  for k in keys if k in examples[0]}


def profile(workdir: str, calls: int) -> Dict[str, Any]:
  """Parameters, predict GFLOPs per image and latency (batch 1)."""
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = workdir_lib.load_config(workdir)
  method, state = workdir_lib.restore_for_inference(workdir, config)
  _, batch = _example_batch(config, 1)
  inputs = {k: v for k, v in batch.items()
            if k in method.predict_keys or k in method.predict_optional_keys}
  by_network = {name: int(sum(x.size for x in jax.tree.leaves(params)))
                for name, params in state.params.items()}
  compiled = jax.jit(method.predict).lower(state, inputs).compile()
  flops = _flops(compiled)
  record = {}
  if method.samples:
    # XLA's cost analysis counts a loop body once: the autoregressive
    # sampler's loop is priced as one pixel. A teacher-forced forward pass
    # computes every pixel at once: the work the cached sampler spreads
    # over its loop (each row / pixel computed once), which it is counted
    # as instead.
    record['gflops_predict_xla'] = flops / 1e9
    flops = _teacher_forced_flops(method, state, batch, config)

  def call():
    jax.block_until_ready(compiled(state, inputs))

  for _ in range(2):
    call()
  times = []
  for _ in range(max(calls, 1)):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  record.update(parameters=sum(by_network.values()),
                parameters_by_network=by_network, gflops=flops / 1e9,
                latency_ms=1000 * float(np.median(times)))
  return record


# Device-hours in `--cost`: dense bf16 peak FLOP/s and an assumed share of
# it (a utilisation typical of convnets on GPUs, not one measured here).
COST_DEVICE = 'H100/H200 bf16'
ASSUMED_MFU = 0.3


def abstract_train_step(run: Run):
  """(method, state, batch) of a run's config, state and batch abstract
  (jax.ShapeDtypeStruct: nothing allocated), to lower its train step."""
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import methods  # pylint: disable=g-import-not-at-top
  from colorjax.data import prior  # pylint: disable=g-import-not-at-top
  config = apply_overrides(load_config(run.config), run.overrides)
  if config.get('loss') and config.loss.get('rebalance'):
    config.loss.prior_file = prior.uniform_prior_file()   # no dataset read
  method = methods.get_method(config)
  method.prepare_training(None)
  batch = method.batch_spec(run.batch_size)
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  return method, state, batch


def train_cost(run: Run) -> Dict[str, float]:
  """Training FLOPs of one run: XLA's cost analysis of its train step
  (forward, backward, every network the step updates, the optimizer),
  lowered on abstract arrays of the config's batch, x its steps."""
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import profiling  # pylint: disable=g-import-not-at-top
  method, state, batch = abstract_train_step(run)
  lowered = jax.jit(method.train_step).lower(state, batch,
                                             jax.random.PRNGKey(0))
  step_flops = _flops(lowered)
  total = step_flops * run.steps
  peak = profiling.PEAK_BF16_FLOPS['H200']
  return {'train_gflops_per_image': step_flops / run.batch_size / 1e9,
          'train_pflop': total / 1e15,
          'hours_at_peak': total / peak / 3600,
          'hours_at_assumed_mfu': total / (peak * ASSUMED_MFU) / 3600}


def _flops(compiled) -> float:
  from colorjax import profiling  # pylint: disable=g-import-not-at-top
  return profiling.compiled_flops(compiled)


def _teacher_forced_flops(method, state, batch, config) -> float:
  """FLOPs of a sampling method's network on the gray image and a given
  chroma map (PixSem: its Polyak-averaged model on `ab_small`), the
  pass its training step differentiates; NaN when the method has none."""
  import jax  # pylint: disable=g-import-not-at-top
  model = getattr(method, 'model', None)
  if model is None or 'ema' not in state.model_state:
    return math.nan
  small = config.data.image_size // config.data.get('downsample', 1)
  ab = np.zeros((1, small, small, 2), np.float32)
  forward = jax.jit(lambda s, gray, ab: model.apply(
      {'params': s.model_state['ema']}, gray, ab))
  return _flops(forward.lower(state, batch['gray'], ab).compile())


def auxiliary_heads(workdir: str, max_images: int) -> Dict[str, float]:
  """Top-1 of the config's own classification evaluators (003's image
  tags, 001's scene head) on the same images: {evaluator: top1}. Not part
  of the preset: each reads a target only its config's preprocessing
  makes (multi-hot tags, scene one-hot)."""
  from colorjax import evaluate  # pylint: disable=g-import-not-at-top
  from colorjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = workdir_lib.load_config(workdir)
  names = [n for n, c in (config.get('evals') or {}).items()
           if c.get('type') == 'classification']
  if not names:
    return {}
  results = evaluate.evaluate_workdir(workdir, names=names,
                                      resolution='model',
                                      max_images=max_images)
  return {n: float(v['top1']) for n, v in results['evals'].items()
          if 'top1' in v}


def _gt_maps_view(run: Run) -> None:
  """An evaluation-only workdir: the source run's checkpoints (a link) and
  its config with the ground-truth map added to the evaluation input, so
  every evaluator scores the colorizer under the true maps."""
  from colorjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = workdir_lib.load_config(run.source)
  config.data.preprocess_eval = config.data.preprocess_eval + '|semantic_map'
  os.makedirs(run.workdir, exist_ok=True)
  link = os.path.join(run.workdir, 'checkpoints')
  if not os.path.lexists(link):
    os.symlink(os.path.relpath(os.path.join(run.source, 'checkpoints'),
                               run.workdir), link)
  workdir_lib.save_config(config, run.workdir)


def _finished(run: Run, record: Optional[dict], eval_path: str,
              max_images: int) -> bool:
  """Trained to the planned step, evaluated there on as many images, and
  profiled."""
  if not (record and record.get('profile')):
    return False
  if not run.eval_only and record.get('trained_steps') != run.steps:
    return False
  if not run.row:
    return True
  metrics = _read_json(eval_path)
  return bool(metrics and metrics.get('step') == run.steps and all(
      entry.get('max_images') == max_images
      for entry in metrics.get('protocol', {}).values()))


def execute(run: Run, preset: str, max_images: int,
            latency_calls: int) -> Dict[str, Any]:
  """Trains (unless done), evaluates and profiles one run; returns its
  record (RUN_RECORD in its workdir). 'skipped' is True when everything
  was done before."""
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import evaluate  # pylint: disable=g-import-not-at-top
  from colorjax import train  # pylint: disable=g-import-not-at-top
  record_path = os.path.join(run.workdir, RUN_RECORD)
  eval_dir = os.path.join(run.workdir, 'eval', preset)
  eval_path = os.path.join(eval_dir, 'metrics.json')
  record = _read_json(record_path) or {}
  if _finished(run, record, eval_path, max_images):
    return dict(record, skipped=True)
  os.makedirs(run.workdir, exist_ok=True)
  log = os.path.join(run.workdir, 'suite.log')
  record.update(method=run.method, variant=run.variant, seed=run.seed,
                config=run.config, overrides=run.overrides,
                command=run.command(), steps=run.steps,
                batch_size=run.batch_size)
  with _output_to(log):
    if run.eval_only:
      _gt_maps_view(run)
    elif record.get('trained_steps') != run.steps:
      latest = _latest_step(run.workdir)
      if latest is not None and latest > run.steps:
        raise ValueError(f'{run.workdir} holds step {latest}, more than the '
                         f'{run.steps} planned: use another --output')
      start_step = latest or 0
      if start_step < run.steps:
        config = apply_overrides(load_config(run.config), run.overrides)
        train.ensure_dataset(config)        # generated once, not timed
        started = time.perf_counter()
        train.train_and_evaluate(config, run.workdir)
        seconds = time.perf_counter() - started
        record.update(train_s=seconds, resumed_from_step=start_step,
                      train_images_per_s=train_images_per_s(
                          run.workdir, start_step, run.batch_size))
      record['trained_steps'] = run.steps
      _write_json(record_path, record)
    if run.row:
      started = time.perf_counter()
      results = evaluate.evaluate_workdir(run.workdir, preset=preset,
                                          max_images=max_images,
                                          plots_dir=eval_dir)
      _write_json(eval_path, results)
      with open(os.path.join(eval_dir, 'metrics.md'), 'w') as f:
        f.write(evaluate.markdown(results))
      record['eval_s'] = time.perf_counter() - started
      started = time.perf_counter()
      record['aux'] = auxiliary_heads(run.workdir, max_images)
      record['profile'] = profile(run.workdir, latency_calls)
      record['profile_s'] = time.perf_counter() - started
    else:
      record['profile'] = {'stage': 'trained'}
    _write_json(record_path, record)
  jax.clear_caches()
  return dict(record, skipped=False)


# -------------------------------------------------------------- results
def run_row(run: Run, record: dict, metrics: dict,
            stage1: Optional[dict] = None) -> Dict[str, Any]:
  """The table's values of one run (one seed)."""
  row = {'method': run.method, 'variant': run.variant, 'seed': run.seed,
         'description': run.description, 'paper': run.paper}
  row.update(compare.numbers(metrics))
  tops = list(record.get('aux', {}).values())
  row['top1'] = tops[0] if tops else None
  row['data'] = _data_of(metrics)
  row['step'] = metrics.get('step')
  prof = record.get('profile', {})
  for key in ('parameters', 'gflops', 'latency_ms'):
    row[key] = prof.get(key)
  train_record = record
  if run.eval_only:
    train_record = _read_json(os.path.join(run.source, RUN_RECORD)) or {}
  row['train_s'] = train_record.get('train_s')
  row['resumed_from_step'] = train_record.get('resumed_from_step') or None
  row['train_images_per_s'] = train_record.get('train_images_per_s')
  if stage1 and row['train_s'] is not None and stage1.get('train_s'):
    row['train_s'] += stage1['train_s']
  return {k: v for k, v in row.items() if v is not None}


def _data_of(metrics: dict) -> str:
  entry = metrics.get('protocol', {}).get('colour', {})
  return entry.get('data', '?')


def group_rows(rows: Sequence[dict]) -> Dict[str, List[dict]]:
  """{'method/variant': [row per seed]} in the rows' order, with
  delta_psnr: each seed's PSNR minus the mean PSNR of its method's paper
  variant on the same data."""
  groups: Dict[str, List[dict]] = {}
  for row in rows:
    groups.setdefault(f'{row["method"]}/{row["variant"]}', []).append(row)
  reference = {}
  for label, members in groups.items():
    if members[0].get('paper'):
      mean, _, n = compare.mean_std([r.get('psnr') for r in members])
      if n:
        reference[(members[0]['method'], members[0]['data'])] = mean
  for members in groups.values():
    for row in members:
      ref = reference.get((row['method'], row['data']))
      if ref is not None and 'psnr' in row:
        row['delta_psnr'] = row['psnr'] - ref
  return groups


def tables(rows: Sequence[dict], runs_metrics: Dict[str, dict]
           ) -> Tuple[str, str, str]:
  """(markdown, suite.csv, suite_runs.csv): one markdown table per
  evaluation dataset, each checked to share one protocol."""
  by_data: Dict[str, List[dict]] = {}
  for row in rows:
    by_data.setdefault(row['data'], []).append(row)
  # The dataset most runs share first (stable otherwise).
  by_data = dict(sorted(by_data.items(), key=lambda item: -len(item[1])))
  parts = []
  for data, members in by_data.items():
    labelled = {f'{r["method"]}/{r["variant"]}/seed{r["seed"]}':
                runs_metrics[f'{r["method"]}/{r["variant"]}/seed{r["seed"]}']
                for r in members}
    compare.check_same_protocol(labelled)
    text, _ = compare.seed_tables(
        group_rows(members), COLUMNS,
        label_keys=('method', 'variant', 'description'))
    first = next(iter(labelled.values()))
    gray = compare.mean_std([r.get('psnr_gray_baseline') for r in members])
    gt_cf = compare.mean_std([r.get('colorfulness_gt') for r in members])
    parts.append(
        f'### {data}\n\n{text}\nProtocol: preset {first.get("preset")}, '
        f'{first.get("num_images")} images of {data}, resolution '
        f'{first["protocol"]["colour"]["resolution"]}; gray baseline '
        f'(ab = 0) PSNR {compare.format_number(gray[0])} dB, ground-truth '
        f'colourfulness {compare.format_number(gt_cf[0])}.\n')
  _, suite_csv = compare.seed_tables(
      group_rows(rows), COLUMNS, label_keys=('method', 'variant', 'data'))
  runs_csv = compare.runs_csv(
      rows, ('method', 'variant', 'seed', 'data', 'step'))
  return '\n'.join(parts), suite_csv, runs_csv


FIGURE_FILE = 'suite_figure.npz'


def figure_images(workdir: str, count: int) -> Dict[str, np.ndarray]:
  """sRGB [count, H, W, 3] in [0, 1] of a run's latest checkpoint on the
  first `count` evaluation images ('colorized'), with the gray input and
  ground truth; cached in the workdir per checkpoint step."""
  import jax  # pylint: disable=g-import-not-at-top
  from colorjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  from colorjax.evaluators import base  # pylint: disable=g-import-not-at-top
  cache = os.path.join(workdir, FIGURE_FILE)
  step = _latest_step(workdir)
  if os.path.isfile(cache):
    with np.load(cache) as cached:
      if int(cached['step']) == step and int(cached['count']) == count:
        return {k: cached[k] for k in ('gray', 'truth', 'colorized')}
  config = workdir_lib.load_config(workdir)
  method, state = workdir_lib.restore_for_inference(workdir, config)
  _, batch = _example_batch(config, count)
  inputs = {k: v for k, v in batch.items()
            if k in method.predict_keys or k in method.predict_optional_keys}
  ab = jax.jit(method.predict)(state, inputs)['ab']
  ab = np.asarray(base.resize_like(ab, batch['l']))
  scale = config.data.ab_scale
  images = {
      'gray': base.to_rgb(batch['l'], np.zeros_like(batch['ab']), scale),
      'truth': base.to_rgb(batch['l'], batch['ab'], scale),
      'colorized': base.to_rgb(batch['l'], ab, scale)}
  images = {k: np.clip(np.asarray(v, np.float32), 0, 1)
            for k, v in images.items()}
  np.savez(cache, step=step, count=count, **images)
  jax.clear_caches()
  return images


def figure(path: str, runs: Sequence[Run], count: int = FIGURE_IMAGES
           ) -> Optional[str]:
  """Seed 0 of every row run on the same first `count` validation images
  of its evaluation data: a block per dataset, gray input and ground truth
  first, one row per run."""
  from colorjax import plots  # pylint: disable=g-import-not-at-top
  from colorjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  blocks: Dict[str, List[Tuple[str, np.ndarray]]] = {}
  for run in runs:
    if not run.row or run.seed != 0:
      continue
    config = workdir_lib.load_config(run.workdir)
    images = figure_images(run.workdir, count)
    data = f'{config.data.dataset}:{config.data.eval_split}'
    block = blocks.setdefault(data, [])
    if not block:
      block += [('gray input', images['gray']),
                ('ground truth', images['truth'])]
    block.append((run.name, images['colorized']))
  if not blocks:
    return None
  blocks = dict(sorted(blocks.items(), key=lambda item: -len(item[1])))
  plt = plots._pyplot()  # pylint: disable=protected-access
  # One grid row per image row, a thin empty row between dataset blocks.
  layout = []
  for b, block in enumerate(blocks.values()):
    layout += ([None] if b else []) + [(b, i) for i in range(len(block))]
  cols = max(len(images) for b in blocks.values() for _, images in b)
  tile, label, gap = 1.0, 2.3, 0.3      # inches
  ratios = [gap if cell is None else tile for cell in layout]
  width, height = label + tile * cols, sum(ratios) + 0.25
  fig, axes = plt.subplots(len(layout), cols, figsize=(width, height),
                           squeeze=False, dpi=100,
                           gridspec_kw={'height_ratios': ratios})
  fig.subplots_adjust(left=label / width, right=0.995, bottom=0.005,
                      top=1 - 0.22 / height, wspace=0.04, hspace=0.06)
  names = list(blocks)
  for r, cell in enumerate(layout):
    for c in range(cols):
      ax = axes[r, c]
      ax.set_xticks([])
      ax.set_yticks([])
      for spine in ax.spines.values():
        spine.set_visible(False)
      if cell is not None and c < len(blocks[names[cell[0]]][cell[1]][1]):
        ax.imshow(blocks[names[cell[0]]][cell[1]][1][c],
                  interpolation='nearest')
    if cell is None:
      continue
    axes[r, 0].set_ylabel(blocks[names[cell[0]]][cell[1]][0], rotation=0,
                          ha='right', va='center', fontsize=8)
    if cell[1] == 0:
      axes[r, 0].set_title(names[cell[0]], loc='left', fontsize=8)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path)
  plt.close(fig)
  return path


def machine() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      names = [l.split(':', 1)[1].strip() for l in f
               if l.startswith('model name')]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  return (f'{jax.device_count()} x {device.device_kind} '
          f'({device.platform}); host {os.cpu_count()} cores, {cpu}')


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  return (f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else
          f'{seconds}s')


def _summary(run: Run, record: dict, metrics: Optional[dict]) -> str:
  parts = []
  if record.get('train_s') is not None and not run.eval_only:
    rate = record.get('train_images_per_s')
    parts.append(f'trained {run.steps} steps in '
                 f'{_duration(record["train_s"])}' +
                 (f' ({rate:.1f} img/s)' if rate else ''))
  if metrics:
    shown = [f'{k} {compare.format_number(metrics[k])}'
             for k in ('psnr', 'ssim', 'miou') if k in metrics]
    parts.append(' '.join(shown))
  prof = record.get('profile', {})
  if 'latency_ms' in prof:
    parts.append(f'{prof["latency_ms"]:.1f} ms/img')
  return ', '.join(parts)


def run_suite(suite: str = 'demo', output: str = 'suite', quick: bool = False,
              images: Optional[int] = None, seeds: int = 1,
              only: Optional[Sequence[str]] = None,
              data_dir: Optional[str] = None, shapes: Optional[str] = None,
              preset: Optional[str] = None, max_images: Optional[int] = None,
              extra: Sequence[str] = (), dry_run: bool = False,
              argv: Optional[Sequence[str]] = None, say=print,
              cost: bool = False
              ) -> Dict[str, Any]:
  """Plans, trains, evaluates and tabulates a suite (module docstring).

  Returns {'runs': [...], 'failed': [run names], 'files': {...}}; with
  dry_run, only prints the plan (with cost, also each run's training FLOPs
  and device-hours, and their totals, as 'costs').
  """
  kind = 'quick' if quick else suite
  preset = preset or SUITE_PRESET
  protocols.get(preset)
  max_images = max_images or DEFAULT_EVAL_IMAGES[kind]
  runs = plan(suite, output, quick, images, seeds, only, data_dir, shapes,
              extra)
  images = images or DEFAULT_IMAGES[kind]
  left_out = not model_resolution(preset) and any(r.eval_only for r in runs)
  if left_out:
    runs = [r for r in runs if not r.eval_only]
  say(f'suite {kind}: {len(runs)} runs, {images:,} training images each, '
      f'seeds 0..{seeds - 1}, evaluation preset {preset} on '
      f'{max_images} images -> {os.path.abspath(output)}')
  if left_out:
    say(f'(gt_maps rows left out: ground-truth maps enter only the model-'
        f'input protocol, and preset {preset} scores at full resolution)')
  if dry_run:
    costs = {}
    for i, run in enumerate(runs, 1):
      what = ('evaluation only' if run.eval_only else
              f'{run.steps} steps of batch {run.batch_size}')
      if cost and not run.eval_only:
        costs[run.name, run.seed] = c = train_cost(run)
        what += (f"; {c['train_gflops_per_image']:.4g} train GFLOP/image, "
                 f"{c['train_pflop']:.4g} PFLOP")
      say(f'[{i:>2}/{len(runs)}] {run.name} seed {run.seed}: {what}')
      say(f'    {run.command()}')
      if run.row:
        say(f'    python -m colorjax.evaluate --workdir={run.workdir} '
            f'--preset={preset} --max_images={max_images}')
    if cost:
      total = {k: sum(c[k] for c in costs.values())
               for k in ('train_pflop', 'hours_at_peak',
                         'hours_at_assumed_mfu')}
      costs['total'] = total
      say(f'training, every run: {total["train_pflop"]:,.0f} PFLOP = '
          f'{total["hours_at_peak"]:,.1f} device-hours at the {COST_DEVICE} peak, '
          f'{total["hours_at_assumed_mfu"]:,.1f} at an assumed '
          f'{ASSUMED_MFU:.0%} of it (an estimate: XLA cost analysis of each '
          'train step x its steps; data, evaluation and compilation not '
          'included)')
    return {'runs': runs, 'failed': [], 'files': {}, 'costs': costs}

  started = time.time()
  failed: List[str] = []
  records: Dict[str, dict] = {}
  width = len(str(len(runs)))
  calls = LATENCY_CALLS[kind]
  for i, run in enumerate(runs, 1):
    head = f'[{i:>{width}}/{len(runs)}] {run.name} seed {run.seed}'
    missing = [n for n in run.needs if n in failed]
    if missing:
      say(f'{head}: not run ({", ".join(missing)} failed)')
      failed.append(run.workdir)
      continue
    run_start = time.time()
    # On a terminal the run's name shows while it runs, the line ends when
    # it is done (the run's own output goes to its log meanwhile).
    live = say is print and sys.stdout.isatty()
    if live:
      print(f'{head}: ', end='', flush=True)
    line = (lambda text: print(text[len(head) + 2:])) if live else say  # pylint: disable=unnecessary-lambda-assignment
    try:
      record = execute(run, preset, max_images, calls)
    except Exception as e:  # pylint: disable=broad-except
      import traceback  # pylint: disable=g-import-not-at-top
      os.makedirs(run.workdir, exist_ok=True)
      with open(os.path.join(run.workdir, 'suite.log'), 'a') as f:
        f.write(traceback.format_exc())
      message = str(e).strip().splitlines()
      line(f'{head}: FAILED after {_duration(time.time() - run_start)}: '
          f'{type(e).__name__}: {message[0] if message else ""} (log: '
          f'{os.path.join(run.workdir, "suite.log")})')
      failed.append(run.workdir)
      continue
    records[run.workdir] = record
    metrics = (_read_json(os.path.join(run.workdir, 'eval', preset,
                                       'metrics.json')) if run.row else None)
    what = 'done before' if record.get('skipped') else _duration(
        time.time() - run_start)
    line(f'{head}: {what}; {_summary(run, record, metrics)}')

  rows, runs_metrics = [], {}
  stage1_of = {(r.method, r.seed): r.workdir for r in runs if not r.row}
  for run in runs:
    if not run.row or run.workdir in failed:
      continue
    metrics = _read_json(os.path.join(run.workdir, 'eval', preset,
                                      'metrics.json'))
    stage1 = None
    if (run.method, run.seed) in stage1_of:
      stage1 = _read_json(os.path.join(stage1_of[run.method, run.seed],
                                       RUN_RECORD))
    rows.append(run_row(run, records[run.workdir], metrics, stage1))
    runs_metrics[f'{run.name}/seed{run.seed}'] = metrics
  files = {}
  if rows:
    files = write_outputs(output, rows, runs_metrics, runs, kind, images,
                          seeds, preset, max_images, argv,
                          time.time() - started)
    say(f'wrote {", ".join(sorted(files.values()))}')
  if failed:
    say(f'{len(failed)} run(s) failed: ' + ', '.join(failed))
  return {'runs': runs, 'rows': rows, 'failed': failed, 'files': files}


def write_outputs(output, rows, runs_metrics, runs, kind, images, seeds,
                  preset, max_images, argv, seconds) -> Dict[str, str]:
  text, suite_csv, runs_csv = tables(rows, runs_metrics)
  command = ' '.join(shlex.quote(a) for a in (argv or ['python', '-m',
                                                       'colorjax.compare']))
  date = datetime.datetime.now().isoformat(timespec='seconds')
  stage1 = [r for r in runs if not r.row]
  notes = [f'Every run trained on {images:,} images '
           f'(num_train_steps = images / batch), seeds 0..{seeds - 1} '
           '(mean ± sample std over seeds).']
  if stage1:
    notes.append('SemanticDriven: stage 1 (GridNet) trains on the same '
                 'budget and is shared by its variants; its wall-clock is '
                 'in their "train s" (their "train img/s" is stage 2\'s), '
                 'its mIoU is "own mIoU"; gt_maps is the paper colorizer '
                 'scored under the ground-truth maps.')
  resumed = [f'{r["method"]}/{r["variant"]} seed {r["seed"]} (from step '
             f'{r["resumed_from_step"]})' for r in rows
             if r.get('resumed_from_step')]
  if resumed:
    notes.append('Resumed from a checkpoint, "train s" covers the last '
                 'attempt only: ' + ', '.join(resumed) + '.')
  notes.append('train s: wall-clock of the trainer (data, compilation, '
               'steps, checkpoints); train img/s: median of the logged '
               'windows; GFLOPs: XLA cost analysis of predict at batch 1 '
               '(PixSem: of its teacher-forced forward pass, the work its '
               'sampling loop spreads over pixels); latency: jitted '
               'predict, one image, after warm-up.')
  header = (f'# Suite {kind}\n\nCommand: `{command}`  \nDate: {date}  \n'
            f'Machine: {machine()}  \nTotal wall-clock: '
            f'{_duration(seconds)}\n\n')
  os.makedirs(output, exist_ok=True)
  files = {'markdown': os.path.join(output, 'suite.md'),
           'csv': os.path.join(output, 'suite.csv'),
           'runs_csv': os.path.join(output, 'suite_runs.csv'),
           'json': os.path.join(output, 'suite.json')}
  with open(files['markdown'], 'w') as f:
    f.write(header + text + '\n' + '\n'.join(f'- {n}' for n in notes) + '\n')
  with open(files['csv'], 'w') as f:
    f.write(suite_csv)
  with open(files['runs_csv'], 'w') as f:
    f.write(runs_csv)
  _write_json(files['json'], {'suite': kind, 'images': images,
                              'seeds': seeds, 'preset': preset,
                              'max_images': max_images, 'date': date,
                              'machine': machine(), 'command': command,
                              'rows': rows})
  path = figure(os.path.join(output, 'suite.png'), runs)
  if path:
    files['figure'] = path
  return files
