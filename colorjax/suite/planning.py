"""The suite's plan: its methods and variants, budgets and runs.

`plan` turns a suite's settings (kind, images, seeds, --only, overrides)
into the `Run`s to train and evaluate, each a config file plus
`--config.*` overrides and a workdir, in an order that trains dependencies
first. Nothing here trains or reads a dataset: the other suite modules
execute, cost and tabulate these runs.
"""

import ast
import dataclasses
import os
import shlex
from typing import Any, Dict, List, Optional, Sequence, Tuple

from colorjax import config_lib
from colorjax import protocols

# The repository: the runs' config files (configs/...) are read from it.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

SUITE_PRESET = 'suite'
RUN_RECORD = 'suite_run.json'
SUITES = ('demo', 'paper')


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
               Variant('cmc_lab', 'CMC in Lab units (eq. 9 unbalanced)',
                       (('loss.cmc_scale', 'lab'),)))),
    Method('scenecontext', 'scenecontext.py',
           dict(demo='demo', quick='tiny', paper='coco'), (
               Variant('regsoft', 'RegSoft', (('model.variant', 'regsoft'),)),
               Variant('clasregsoft', 'ClasRegSoft',
                       (('model.variant', 'clasregsoft'),)),
               Variant('segclasregsoft', 'SegClasRegSoft (paper)',
                       (('model.variant', 'segclasregsoft'),), paper=True))),
    Method('semanticdriven', 'semanticdriven.py',
           # Paper scale: the held-out split (the paper presets train on
           # trainval, val included, so val would score in-sample).
           dict(demo='colorization_demo', quick='colorization_tiny',
                paper='colorization_heldout'), (
               Variant('paper', 'GridNet maps, instance norm (paper)',
                       paper=True),
               Variant('gt_maps', 'ground-truth maps (same colorizer)',
                       gt_maps=True),
               Variant('no_instance_norm', 'without instance norm (4.1)',
                       (('model.instance_norm', 'none'),))),
           stage1_arg=dict(demo='segmentation_demo',
                           quick='segmentation_tiny',
                           paper='segmentation_heldout')),
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
        config = config or config_lib.load_config(
            f'configs/{method.config}:{config_arg}', REPO)
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
      base = config_lib.load_config(f'configs/{method.config}:{arg}', REPO)
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
