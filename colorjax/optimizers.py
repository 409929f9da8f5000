"""Optimizers built from config, in the style of big_vision's `bv_optax.make`.

The papers differ only in "which optax optimizer, which schedule, what is
frozen", so one config section (documented on `make`) describes it instead of
each method hard-coding `optax.adam`. GANs keep one optimizer per network;
`networks.<name>` overrides the shared fields for that network.

Reduce-on-plateau (paper 001) reacts to a metric the trainer logs rather than
to gradients, so its scale lives in the optimizer state (`PlateauState`) and
the trainer feeds that metric with `report_metric` each time it logs it.
Two conventions exist and differ by one report: PyTorch's ReduceLROnPlateau
cuts after `patience` + 1 reports without progress (relative `threshold`),
Keras's after `patience` (absolute `threshold`, its min_delta). Paper 001
trained with Keras ("reduce ... on plateau at every five epochs"), so
'keras' is the default; `convention='pytorch'` gives PyTorch's rule.
"""

import dataclasses
import difflib
import inspect
import re
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

# Each schedule type's fields; those in _DURATIONS are given as <field>_steps
# or <field>_epochs (converted with steps_per_epoch).
_SCHEDULES = {
    'constant': (),
    'step': ('boundaries', 'factor'),
    'cosine': ('warmup', 'decay', 'end_fraction'),
    'linear_warmup': ('warmup',),
    'exponential': ('decay_rate',),
    'cyclic': ('step_size', 'min_learning_rate', 'mode', 'start'),
    'plateau': ('metric', 'mode', 'factor', 'patience', 'threshold',
                'cooldown', 'min_scale', 'convention'),
}
_DURATIONS = ('boundaries', 'warmup', 'decay', 'step_size')
# Top-level fields; others (e.g. a method's `ema_decay`) are left alone.
_FIELDS = ('name', 'kwargs', 'learning_rate', 'schedule', 'clip_grad_norm',
           'weight_decay', 'weight_decay_mask', 'frozen', 'networks')


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class PlateauRule:
  """Reduce-on-plateau settings. A static tree node (no leaves), so that
  `report_metric` needs no config and checkpoints hold only the counters; a
  restore into a freshly built state keeps the current config's rule."""
  mode: str
  factor: float
  patience: int
  threshold: float
  cooldown: int
  min_scale: float
  convention: str = 'keras'


class PlateauState(NamedTuple):
  """State of `scale_by_plateau`: `report_metric` updates it, `update` only
  reads `scale`."""
  scale: jax.Array           # float32, multiplies the rate.
  best: jax.Array            # float32, best metric so far.
  num_bad: jax.Array         # int32, reports since it last improved.
  cooldown_count: jax.Array  # int32, reports left before counting again.
  rule: PlateauRule


def _is_plateau(node) -> bool:
  return isinstance(node, PlateauState)


def scale_by_plateau(mode='min', factor=0.1, patience=10, threshold=1e-4,
                     cooldown=0, min_scale=0.0, convention='keras'
                     ) -> optax.GradientTransformation:
  """Multiplies the updates by a scale that only `report_metric` changes
  (module docstring: the 'keras' and 'pytorch' conventions)."""
  if (mode not in ('min', 'max') or not 0.0 < factor < 1.0
      or convention not in ('keras', 'pytorch')):
    raise ValueError("plateau needs mode 'min' or 'max', 0 < factor < 1 and "
                     "convention 'keras' or 'pytorch', got "
                     f'mode={mode!r}, factor={factor}, '
                     f'convention={convention!r}')
  rule = PlateauRule(mode, float(factor), int(patience), float(threshold),
                     int(cooldown), float(min_scale), convention)

  def init(params):
    del params
    best = jnp.inf if mode == 'min' else -jnp.inf
    return PlateauState(jnp.ones([], jnp.float32),
                        jnp.full([], best, jnp.float32),
                        jnp.zeros([], jnp.int32), jnp.zeros([], jnp.int32),
                        rule)

  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u: (u * state.scale).astype(u.dtype),
                        updates), state

  return optax.GradientTransformation(init, update)


def _report(state: PlateauState, value) -> PlateauState:
  """One report: PyTorch's ReduceLROnPlateau.step (threshold_mode='rel') or
  Keras's ReduceLROnPlateau.on_epoch_end, by `rule.convention`."""
  if state.rule.convention == 'keras':
    return _report_keras(state, value)
  rule, value = state.rule, jnp.asarray(value, jnp.float32)
  if rule.mode == 'min':
    better = value < state.best * (1.0 - rule.threshold)
  else:
    better = value > state.best * (1.0 + rule.threshold)
  num_bad = jnp.where(better | (state.cooldown_count > 0), 0,
                      state.num_bad + 1)
  reduce = num_bad > rule.patience
  scale = jnp.maximum(state.scale * rule.factor, rule.min_scale)
  return state._replace(
      scale=jnp.where(reduce, scale, state.scale),
      best=jnp.where(better, value, state.best),
      num_bad=jnp.where(reduce, 0, num_bad),
      cooldown_count=jnp.where(reduce, rule.cooldown,
                               jnp.maximum(state.cooldown_count - 1, 0)))


def _report_keras(state: PlateauState, value) -> PlateauState:
  """Keras 2's rule: progress is beating the best by `threshold` (absolute
  min_delta); the cut comes on the `patience`-th report without it; during
  cooldown nothing counts."""
  rule, value = state.rule, jnp.asarray(value, jnp.float32)
  cooling = state.cooldown_count > 0
  cooldown_count = jnp.where(cooling, state.cooldown_count - 1, 0)
  num_bad = jnp.where(cooling, 0, state.num_bad)
  if rule.mode == 'min':
    better = value < state.best - rule.threshold
  else:
    better = value > state.best + rule.threshold
  still_cooling = cooldown_count > 0
  num_bad = jnp.where(better, 0, jnp.where(still_cooling, num_bad,
                                           num_bad + 1))
  reduce = ~better & ~still_cooling & (num_bad >= rule.patience)
  # Keras cuts only while the rate is above its floor.
  reduce = reduce & (state.scale > rule.min_scale)
  scale = jnp.maximum(state.scale * rule.factor, rule.min_scale)
  return state._replace(
      scale=jnp.where(reduce, scale, state.scale),
      best=jnp.where(better, value, state.best),
      num_bad=jnp.where(reduce, 0, num_bad),
      cooldown_count=jnp.where(reduce, rule.cooldown, cooldown_count))


def report_metric(opt_state, value):
  """Applies the reduce-on-plateau rule to every PlateauState in `opt_state`
  (however nested: chains, multi_transform, dicts of networks). Jit-able."""
  return jax.tree.map(lambda n: _report(n, value) if _is_plateau(n) else n,
                      opt_state, is_leaf=_is_plateau)


def _plain(value):
  """ConfigDicts and FieldReferences -> plain dicts, lists and values."""
  if isinstance(value, ml_collections.FieldReference):
    value = value.get()
  if hasattr(value, 'to_dict'):
    value = value.to_dict()
  if isinstance(value, dict):
    return {key: _plain(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return type(value)(_plain(item) for item in value)
  return value


def _merge(base: dict, override: dict) -> dict:
  """Recursive merge; a schedule of another `type` replaces the old one,
  whose fields would not fit."""
  merged = dict(base)
  for key, value in override.items():
    old = base.get(key)
    if (isinstance(value, dict) and isinstance(old, dict)
        and value.get('type', old.get('type')) == old.get('type')):
      value = _merge(old, value)
    merged[key] = value
  return merged


def _resolve(opt_config, network: Optional[str]) -> dict:
  """The config as a plain dict with `networks[network]` merged in and its
  schedule checked."""
  config = _plain(opt_config)
  override = (config.pop('networks', None) or {}).get(network) or {}
  if override.get('name', config.get('name')) != config.get('name'):
    config.pop('kwargs', None)  # Another optimizer's arguments would not fit.
  config = _merge(config, override)
  schedule = config.get('schedule') or 'constant'
  schedule = {'type': schedule} if isinstance(schedule, str) else schedule
  kind = schedule.setdefault('type', 'constant')
  if kind not in _SCHEDULES:
    raise ValueError(f'unknown schedule type {kind!r}; known: '
                     f'{", ".join(_SCHEDULES)}')
  known = {'type'}.union(*(
      (f'{f}_steps', f'{f}_epochs') if f in _DURATIONS else (f,)
      for f in _SCHEDULES[kind]))
  if set(schedule) - known:
    raise ValueError(f'schedule {kind!r} has no field(s) '
                     f'{sorted(set(schedule) - known)}; its fields: '
                     f'{sorted(known)}')
  if kind == 'plateau' and not schedule.get('metric'):
    raise ValueError("a 'plateau' schedule needs `metric`, the name of the "
                     "logged metric to watch (e.g. 'train/loss')")
  config['schedule'] = schedule
  return config


def _steps(schedule: dict, field: str, steps_per_epoch, default=None):
  """`<field>_steps`, or `<field>_epochs` times steps_per_epoch (rounded)."""
  steps = schedule.get(f'{field}_steps')
  epochs = schedule.get(f'{field}_epochs')
  if steps is not None and epochs is not None:
    raise ValueError(f'schedule gives both {field}_steps and {field}_epochs')
  if epochs is None:
    return default if steps is None else steps
  if steps_per_epoch is None:
    raise ValueError(f'schedule.{field}_epochs needs steps_per_epoch (pass '
                     f'it to make / learning_rate) or use {field}_steps')
  convert = lambda e: int(round(e * steps_per_epoch))
  if isinstance(epochs, (list, tuple)):
    return [convert(e) for e in epochs]
  return convert(epochs)


def _schedule(config: dict, num_train_steps: int, steps_per_epoch):
  """The schedule as a jit-able `step -> float32 rate` (for plateau the
  constant base: `scale_by_plateau` applies the scale)."""
  schedule, base = config['schedule'], float(config['learning_rate'])
  kind = schedule['type']
  get = lambda field, default=None: _steps(schedule, field, steps_per_epoch,
                                           default)
  if kind == 'step':
    boundaries = np.asarray(get('boundaries', ()), np.float32)
    factor = float(schedule.get('factor', 0.1))
    rate = lambda t: base * factor ** jnp.sum(t >= boundaries)
  elif kind in ('cosine', 'linear_warmup'):  # linear_warmup: end = base.
    warmup, decay = get('warmup', 0), get('decay', num_train_steps)
    if kind == 'cosine' and warmup > decay:
      raise ValueError(f'warmup ({warmup} steps) outlasts the decay '
                       f'({decay} steps)')
    end = (base if kind == 'linear_warmup'
           else base * float(schedule.get('end_fraction', 0.0)))

    def rate(t):
      ramp = jnp.minimum(t / warmup, 1.0) if warmup else 1.0
      progress = jnp.clip((t - warmup) / max(decay - warmup, 1), 0.0, 1.0)
      cosine = 0.5 * (1 + jnp.cos(jnp.pi * progress))
      return ramp * (end + (base - end) * cosine)
  elif kind == 'exponential':  # PixelCNN++'s lr_decay: base * rate^step.
    decay_rate = float(schedule.get('decay_rate', 1.0))
    if not 0.0 < decay_rate <= 1.0:
      raise ValueError(f'exponential schedule decay_rate must be in (0, 1], '
                       f'not {decay_rate}')
    rate = lambda t: base * decay_rate ** t
  elif kind == 'cyclic':
    half, mode = get('step_size'), schedule.get('mode', 'triangular')
    if not half or mode not in ('triangular', 'triangular2'):
      raise ValueError('a cyclic schedule needs step_size_steps or '
                       "step_size_epochs, and mode 'triangular' or "
                       f"'triangular2' (got {mode!r})")
    low = float(schedule.get('min_learning_rate', 0.0))
    start = schedule.get('start', 'low')
    if start not in ('low', 'high'):
      raise ValueError(f"cyclic schedule start must be 'low' (Smith) or "
                       f"'high' (begin at the top), not {start!r}")
    phase = half if start == 'high' else 0

    def rate(t):  # Smith 2017, "Cyclical learning rates", section 3.1.
      t = t + phase
      cycle = jnp.floor(1 + t / (2 * half))
      height = (base - low) * jnp.maximum(0.0, 1 - jnp.abs(
          t / half - 2 * cycle + 1))
      if mode == 'triangular2':  # The amplitude halves every cycle.
        height = height / 2 ** (cycle - 1)
      return low + height
  else:  # constant, plateau
    rate = lambda t: base
  return lambda step: jnp.asarray(rate(jnp.asarray(step, jnp.float32)),
                                  jnp.float32)


def _path_mask(params, patterns):
  """True where a leaf's '/'-joined path fully matches one of `patterns`."""
  patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
  path = lambda p: jax.tree_util.keystr(p, simple=True, separator='/')
  return jax.tree_util.tree_map_with_path(
      lambda p, _: any(re.fullmatch(x, path(p)) for x in patterns), params)


def frozen_mask(params, patterns):
  """Tree of bools, True = frozen. A pattern that matches no parameter
  raises: a typo would otherwise silently train everything."""
  patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
  for pattern in patterns:
    if not any(jax.tree.leaves(_path_mask(params, pattern))):
      paths = [jax.tree_util.keystr(p, simple=True, separator='/')
               for p, _ in jax.tree_util.tree_leaves_with_path(params)]
      raise ValueError(f'frozen pattern {pattern!r} matches no parameter; '
                       f'parameters look like {paths[:4]}')
  return _path_mask(params, patterns)


def _decoupled_weight_decay(rate: float, schedule, patterns):
  """updates -= schedule(step) * rate * param where `patterns` match: AdamW
  decay, which follows the learning rate yet bypasses the optimizer's moments
  (optax.add_decayed_weights before the optimizer is an L2 term that Adam
  would rescale)."""
  def init(params):
    del params
    return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError('weight_decay needs the params: update(g, s, params)')
    shrink = schedule(state.count) * rate
    updates = jax.tree.map(
        lambda u, p, m: (u - shrink * p).astype(u.dtype) if m else u,
        updates, params, _path_mask(updates, patterns))
    return updates, optax.ScaleByScheduleState(
        count=optax.safe_increment(state.count))

  return optax.GradientTransformation(init, update)


def _factory(config: dict):
  """`optax.<name>`, checked to be an optimizer taking a learning_rate."""
  takes_rate = lambda f: (inspect.isfunction(f) and 'learning_rate'
                          in inspect.signature(f).parameters)
  name = config.get('name')
  factory = getattr(optax, name, None) if isinstance(name, str) else None
  if not takes_rate(factory):
    valid = [n for n in dir(optax) if not n.startswith('_')
             and takes_rate(getattr(optax, n))]
    guess = difflib.get_close_matches(str(name), valid, n=3)
    hint = f' (did you mean {" or ".join(guess)}?)' if guess else ''
    raise ValueError(f'unknown optimizer name {name!r}{hint}; optax '
                     f'optimizers: {", ".join(valid)}')
  misplaced = sorted(k for k in config if k not in _FIELDS
                     and k in inspect.signature(factory).parameters)
  if misplaced:
    raise ValueError(f'optimizer fields {misplaced} are arguments of '
                     f'optax.{name}: put them in optimizer.kwargs')
  return factory


def make(opt_config, num_train_steps: int,
         steps_per_epoch: Optional[int] = None,
         network: Optional[str] = None) -> optax.GradientTransformation:
  """The optimizer `opt_config` describes.

  Fields: name (optax factory, e.g. 'adam'), kwargs (its other arguments),
  learning_rate (base/peak), schedule (dict with a `type` of _SCHEDULES),
  clip_grad_norm, weight_decay with weight_decay_mask (regexes, default
  kernels), frozen (regexes of '/'-joined paths: zero updates, no moments),
  networks (per-network overrides, merged recursively).
  Chain: clip -> optimizer(schedule) -> weight decay -> plateau scale, inside
  multi_transform when something is frozen (so clipping sees only the
  trainable gradients).
  """
  config = _resolve(opt_config, network)
  factory = _factory(config)
  schedule = _schedule(config, num_train_steps, steps_per_epoch)
  chain = []
  if config.get('clip_grad_norm'):
    chain.append(optax.clip_by_global_norm(float(config['clip_grad_norm'])))
  chain.append(factory(learning_rate=schedule, **(config.get('kwargs') or {})))
  if config.get('weight_decay'):
    chain.append(_decoupled_weight_decay(
        float(config['weight_decay']), schedule,
        config.get('weight_decay_mask') or r'.*kernel$'))
  if config['schedule']['type'] == 'plateau':
    chain.append(scale_by_plateau(**{
        k: v for k, v in config['schedule'].items()
        if k not in ('type', 'metric')}))
  tx = optax.chain(*chain)
  frozen = config.get('frozen') or ()
  if not frozen:
    return tx
  labels = lambda params: jax.tree.map(lambda f: 'frozen' if f else 'train',
                                       frozen_mask(params, frozen))
  return optax.multi_transform({'train': tx, 'frozen': optax.set_to_zero()},
                               labels)


def learning_rate(opt_config, opt_state, step, num_train_steps: int,
                  steps_per_epoch: Optional[int] = None,
                  network: Optional[str] = None) -> jax.Array:
  """The rate of the update made after `step` updates: the schedule times the
  plateau scale in `opt_state` (the state of the optimizer `make` built with
  the same arguments; None: no scale). Jit-able, for logging."""
  config = _resolve(opt_config, network)
  rate = _schedule(config, num_train_steps, steps_per_epoch)(step)
  states = [n for n in jax.tree.leaves(opt_state, is_leaf=_is_plateau)
            if _is_plateau(n)]
  if len(states) > 1:
    raise ValueError(f'opt_state holds {len(states)} PlateauStates; pass the '
                     "state of one network's optimizer")
  return rate * states[0].scale if states else rate


def plateau_metric(opt_config, network: Optional[str] = None
                   ) -> Optional[tuple[str, str]]:
  """(metric name, 'min' | 'max') the trainer must `report_metric`, or None."""
  schedule = _resolve(opt_config, network)['schedule']
  if schedule['type'] != 'plateau':
    return None
  return schedule['metric'], schedule.get('mode', 'min')
