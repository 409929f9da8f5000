"""optimizers: schedules against closed forms, reduce-on-plateau against
PyTorch, frozen parameters, weight decay, clipping and per-network configs."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from colorjax import optimizers


def _config(schedule, learning_rate=1.0, name='sgd', **fields):
  return dict(name=name, learning_rate=learning_rate, schedule=schedule,
              **fields)


def _rates(config, steps, num_train_steps=100, steps_per_epoch=None):
  return [float(optimizers.learning_rate(config, None, s, num_train_steps,
                                         steps_per_epoch)) for s in steps]


def _cosine(step, base, warmup, decay, end_fraction):
  if step < warmup:
    return base * step / warmup
  progress = min((step - warmup) / (decay - warmup), 1.0)
  end = base * end_fraction
  return end + (base - end) * 0.5 * (1 + math.cos(math.pi * progress))


def _triangular(step, low, high, half, halving):
  cycle = math.floor(1 + step / (2 * half))
  height = (high - low) * max(0.0, 1 - abs(step / half - 2 * cycle + 1))
  return low + (height / 2 ** (cycle - 1) if halving else height)


STEPS = (0, 1, 7, 10, 19, 20, 33, 40, 59, 60, 99, 100, 150)


@pytest.mark.parametrize('schedule, steps_per_epoch, expected', [
    (dict(type='constant'), None, lambda t: 0.3),
    (dict(type='step', boundaries_steps=[20, 40], factor=0.5), None,
     lambda t: 0.3 * 0.5 ** ((t >= 20) + (t >= 40))),
    (dict(type='step', boundaries_epochs=[2, 4]), 10,
     lambda t: 0.3 * 0.1 ** ((t >= 20) + (t >= 40))),
    (dict(type='cosine'), None, lambda t: _cosine(t, 0.3, 0, 100, 0.0)),
    (dict(type='cosine', warmup_steps=10, end_fraction=0.1), None,
     lambda t: _cosine(t, 0.3, 10, 100, 0.1)),
    (dict(type='cosine', warmup_epochs=2, decay_epochs=6), 10,
     lambda t: _cosine(t, 0.3, 20, 60, 0.0)),
    (dict(type='linear_warmup', warmup_epochs=1.5), 20,
     lambda t: 0.3 * min(t / 30, 1.0)),
    (dict(type='cyclic', min_learning_rate=0.1, step_size_steps=10), None,
     lambda t: _triangular(t, 0.1, 0.3, 10, False)),
    (dict(type='cyclic', min_learning_rate=0.1, step_size_epochs=2,
          mode='triangular2'), 5, lambda t: _triangular(t, 0.1, 0.3, 10, True)),
    (dict(type='plateau', metric='train/loss'), None, lambda t: 0.3),
    (dict(type='exponential', decay_rate=0.99), None,
     lambda t: 0.3 * 0.99 ** t),
])
def test_schedules_match_closed_forms(schedule, steps_per_epoch, expected):
  config = _config(schedule, learning_rate=0.3)
  np.testing.assert_allclose(_rates(config, STEPS, 100, steps_per_epoch),
                             [expected(t) for t in STEPS], rtol=1e-5,
                             atol=1e-7)


def test_cyclic_peaks_and_valleys():
  rates = lambda mode: _rates(_config(dict(
      type='cyclic', min_learning_rate=0.1, step_size_steps=10, mode=mode)),
      [0, 10, 20, 30, 40, 50])
  np.testing.assert_allclose(rates('triangular'), [0.1, 1, 0.1, 1, 0.1, 1],
                             rtol=1e-6)
  np.testing.assert_allclose(rates('triangular2'),
                             [0.1, 1, 0.1, 0.55, 0.1, 0.325], rtol=1e-6)

  # start='high' (paper 001's stage 2 starts at its top rate): half a period
  # later than Smith's cycle.
  high = _rates(_config(dict(type='cyclic', min_learning_rate=0.1,
                             step_size_steps=10, start='high')),
                [0, 5, 10, 20, 30])
  np.testing.assert_allclose(high, [1, 0.55, 0.1, 1, 0.1], rtol=1e-6)


def test_cyclic_matches_pytorch():
  import torch  # pylint: disable=g-import-not-at-top
  for mode in ('triangular', 'triangular2'):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=0.01, max_lr=0.1, step_size_up=7, mode=mode,
        cycle_momentum=False)
    expected = []
    for _ in range(50):
      expected.append(opt.param_groups[0]['lr'])
      opt.step()        # PyTorch's order: optimizer, then scheduler
      sched.step()
    config = _config(dict(type='cyclic', min_learning_rate=0.01,
                          step_size_steps=7, mode=mode), learning_rate=0.1)
    np.testing.assert_allclose(_rates(config, range(50)), expected,
                               rtol=1e-5)


def _plateau(values, **rule):
  state = optimizers.scale_by_plateau(**rule).init(None)
  scales = []
  for value in values:
    state = optimizers.report_metric(state, value)
    scales.append(float(state.scale))
  return scales


def test_plateau_keeps_scale_while_improving():
  for convention in ('keras', 'pytorch'):
    assert _plateau([5, 4, 3, 2, 1, 0.5], patience=0,
                    convention=convention) == [1] * 6


def test_paper001_plateau_cuts_on_the_fifth_report_without_progress():
  """Paper 001 (Keras): x0.95 after five epochs without progress -- the
  fifth bad report cuts, not the sixth (PyTorch's rule)."""
  import scenecontext  # pylint: disable=g-import-not-at-top
  schedule = scenecontext.get_config('coco').optimizer.schedule.to_dict()
  rule = {k: v for k, v in schedule.items() if k not in ('type', 'metric')}
  assert rule['patience'] == 5 and rule.get('convention', 'keras') == 'keras'
  scales = _plateau([1.0] + [1.0] * 5 + [1.0] * 5, **rule)
  assert scales == pytest.approx([1] * 5 + [0.95] * 5 + [0.95 ** 2])
  assert _plateau([1.0] * 7, **dict(rule, convention='pytorch')) == (
      pytest.approx([1] * 6 + [0.95]))


def _keras_reduce_lr_on_plateau(values, mode='min', factor=0.1, patience=10,
                                threshold=1e-4, cooldown=0, min_scale=0.0):
  """Keras 2's ReduceLROnPlateau.on_epoch_end, line for line (min_delta =
  threshold, min_lr = min_scale, lr starting at 1)."""
  better = ((lambda a, b: a < b - threshold) if mode == 'min' else
            (lambda a, b: a > b + threshold))
  best = np.inf if mode == 'min' else -np.inf
  lr, wait, cooldown_counter, out = 1.0, 0, 0, []
  for current in values:
    if cooldown_counter > 0:
      cooldown_counter -= 1
      wait = 0
    if better(current, best):
      best, wait = current, 0
    elif not cooldown_counter > 0:
      wait += 1
      if wait >= patience:
        if lr > np.float32(min_scale):
          lr = max(lr * factor, min_scale)
          cooldown_counter, wait = cooldown, 0
    out.append(lr)
  return out


def test_plateau_keras_convention_matches_keras_rule():
  values = np.round(np.random.default_rng(1).uniform(size=80), 2)
  values[40:] += np.linspace(0, -3, 40)  # Improves again, then not.
  for mode, rule in (('min', dict(patience=3, cooldown=2, factor=0.5,
                                  min_scale=0.02)),
                     ('min', dict(patience=2, factor=0.7, threshold=0.05)),
                     ('max', dict(patience=1, threshold=0.0123,
                                  min_scale=1e-3)),
                     ('max', dict(patience=4, cooldown=1, factor=0.9))):
    np.testing.assert_allclose(
        _plateau(values, mode=mode, convention='keras', **rule),
        _keras_reduce_lr_on_plateau(values, mode=mode, **rule), rtol=1e-5)


def test_plateau_reduces_after_patience_plus_one_bad_reports():
  # The first report always improves on best=inf; then 3 bad ones (equal,
  # worse, better by less than the relative threshold) trigger a cut.
  scales = _plateau([1.0, 1.0, 2.0, 0.99995, 0.9, 0.9, 0.9, 0.9],
                    patience=2, factor=0.5, threshold=1e-4,
                    convention='pytorch')
  assert scales == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25])
  # A cut restarts the count: two more bad reports for the next one.
  assert _plateau([1] * 5, patience=1, factor=0.5,
                  convention='pytorch') == [1, 1, 0.5, 0.5, 0.25]


def test_plateau_cooldown_min_scale_and_max_mode():
  torch_rule = dict(convention='pytorch')
  assert _plateau([1] * 6, patience=0, cooldown=2,
                  **torch_rule) == pytest.approx([1, 0.1, 0.1, 0.1, 0.01, 0.01])
  assert _plateau([1] * 5, patience=0, min_scale=0.05,
                  **torch_rule) == pytest.approx([1, 0.1, 0.05, 0.05, 0.05])
  assert _plateau([1, 2, 3, 3, 2], mode='max', patience=1, factor=0.5,
                  **torch_rule) == [1, 1, 1, 1, 0.5]


def test_plateau_matches_pytorch():
  import torch  # pylint: disable=g-import-not-at-top
  values = np.round(np.random.default_rng(0).uniform(size=80), 2)
  values[40:] += np.linspace(0, -3, 40)  # Improves again, then not.
  for mode, rule in (('min', dict(patience=3, cooldown=2, factor=0.5,
                                  min_scale=0.02)),
                     ('min', dict(patience=2, factor=0.7)),
                     ('max', dict(patience=0, threshold=0.0123,
                                  min_scale=1e-3))):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=mode, threshold_mode='rel', min_lr=rule.get('min_scale', 0),
        **{k: v for k, v in rule.items() if k != 'min_scale'})
    expected = []
    for value in values:
      sched.step(float(value))
      expected.append(opt.param_groups[0]['lr'])
    np.testing.assert_allclose(
        _plateau(values, mode=mode, convention='pytorch', **rule), expected,
        rtol=1e-5)


def _params():
  return {'branch': {'conv': {'kernel': jnp.ones((3, 5)),
                              'bias': jnp.ones((5,))}},
          'trunk': {'dense': {'kernel': jnp.full((4, 2), 2.0),
                              'bias': jnp.full((2,), 3.0)}}}


@jax.jit(static_argnums=0)
def _step(tx, params, state, grads):
  updates, state = tx.update(grads, state, params)
  return optax.apply_updates(params, updates), state, updates


def test_plateau_nested_in_networks_under_jit():
  def config(lr):
    return _config(dict(type='plateau', metric='eval/psnr', mode='max',
                        patience=0), learning_rate=lr, frozen=('branch/.*',),
                   clip_grad_norm=10.0)
  txs = {'generator': optimizers.make(config(0.1), 100),
         'discriminator': optimizers.make(config(0.2), 100)}
  params = _params()
  states = {k: tx.init(params) for k, tx in txs.items()}
  assert optimizers.plateau_metric(config(0.1)) == ('eval/psnr', 'max')
  assert optimizers.plateau_metric(_config('cosine')) is None
  report = jax.jit(optimizers.report_metric)
  for value in (20.0, 19.0, 18.0):
    states = report(states, value)
  grads = jax.tree.map(jnp.ones_like, params)
  for name, base in (('generator', 0.1), ('discriminator', 0.2)):
    rate = jax.jit(lambda s, t, base=base: optimizers.learning_rate(
        config(base), s, t, 100))(states[name], 0)
    np.testing.assert_allclose(rate, base * 0.01, rtol=1e-6)
    _, _, updates = _step(txs[name], params, states[name], grads)
    np.testing.assert_allclose(updates['trunk']['dense']['kernel'],
                               -rate * np.ones((4, 2)), rtol=1e-6)


def test_frozen_params_stay_bit_identical_and_have_no_moments():
  config = _config(None, learning_rate=0.01, name='adam', weight_decay=0.1,
                   frozen=('branch/.*',))
  tx = optimizers.make(config, 10)
  params = _params()
  state = tx.init(params)
  rng = np.random.default_rng(0)
  new = params
  for _ in range(5):
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape),
                                               p.dtype), params)
    new, state, _ = _step(tx, new, state, grads)
  for leaf in ('kernel', 'bias'):
    np.testing.assert_array_equal(new['branch']['conv'][leaf],
                                  params['branch']['conv'][leaf])
    assert not np.allclose(new['trunk']['dense'][leaf],
                           params['trunk']['dense'][leaf])
  shapes = [np.shape(x) for x in jax.tree.leaves(state)]
  assert (3, 5) not in shapes and (5,) not in shapes
  unfrozen = optimizers.make(dict(config, frozen=()), 10).init(params)
  # Adam's mu and nu for the two frozen leaves are the only difference.
  assert len(jax.tree.leaves(unfrozen)) - len(jax.tree.leaves(state)) == 4
  assert jax.tree.leaves(optimizers.frozen_mask(params, 'branch/.*')) == [
      True, True, False, False]


def test_weight_decay_is_decoupled_and_masked_to_kernels():
  # Zero gradients: Adam's own step is 0, so only the decay moves params,
  # by exactly lr * weight_decay * param (an L2 term through Adam would not).
  config = _config(dict(type='linear_warmup', warmup_steps=4),
                   learning_rate=0.5, name='adam', weight_decay=0.1)
  tx = optimizers.make(config, 10)
  params = _params()
  state = tx.init(params)
  zeros = jax.tree.map(jnp.zeros_like, params)
  for step in range(3):
    rate = float(optimizers.learning_rate(config, state, step, 10))
    new, state, _ = _step(tx, params, state, zeros)
    for group, layer in (('branch', 'conv'), ('trunk', 'dense')):
      np.testing.assert_allclose(new[group][layer]['kernel'],
                                 params[group][layer]['kernel']
                                 * (1 - rate * 0.1), rtol=1e-6)
      np.testing.assert_array_equal(new[group][layer]['bias'],
                                    params[group][layer]['bias'])
    params = new


def test_clip_grad_norm():
  tx = optimizers.make(_config(None, clip_grad_norm=1.0), 10)
  params = {'w': jnp.zeros(2)}
  for grad, expected in (([3.0, 4.0], [-0.6, -0.8]),   # norm 5: clipped
                         ([0.3, 0.4], [-0.3, -0.4])):  # norm 0.5: kept
    updates, _ = tx.update({'w': jnp.array(grad)}, tx.init(params), params)
    np.testing.assert_allclose(updates['w'], expected, rtol=1e-6)


@pytest.mark.parametrize('schedule', [
    dict(type='cosine', warmup_steps=3),
    dict(type='step', boundaries_epochs=[1, 2], factor=0.5),
    dict(type='exponential', decay_rate=0.8),
    dict(type='cyclic', min_learning_rate=0.2, step_size_steps=3,
         mode='triangular2'),
])
def test_learning_rate_is_the_rate_the_update_used(schedule):
  config = _config(schedule, learning_rate=0.7)
  tx = optimizers.make(config, 12, steps_per_epoch=4)
  params = {'w': jnp.zeros(3)}
  state = tx.init(params)
  grads = {'w': jnp.array([1.0, -2.0, 0.5])}
  rates = []
  for step in range(12):
    rate = optimizers.learning_rate(config, state, step, 12, steps_per_epoch=4)
    params, state, updates = _step(tx, params, state, grads)
    np.testing.assert_allclose(updates['w'], -rate * grads['w'], rtol=1e-6)
    rates.append(float(rate))
  assert len(set(rates)) >= 3  # The schedule did vary.


def test_per_network_overrides():
  config = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=ml_collections.FieldReference(0.5),
      kwargs=dict(momentum=0.9),
      schedule=dict(type='cosine', warmup_steps=10),
      networks=dict(discriminator=dict(learning_rate=0.1,
                                       kwargs=dict(nesterov=False),
                                       schedule=dict(warmup_steps=20)),
                    critic=dict(schedule=dict(type='constant')),
                    other=dict(name='adam'))))
  lr = lambda network, step: float(optimizers.learning_rate(
      config, None, step, 100, network=network))
  assert lr(None, 5) == pytest.approx(0.25)
  assert lr('generator', 5) == pytest.approx(0.25)
  assert lr('discriminator', 5) == pytest.approx(0.025)  # Warmup 20 merged.
  assert lr('discriminator', 100) == pytest.approx(0.0, abs=1e-7)
  assert lr('critic', 5) == 0.5  # Another type replaces the schedule.
  # Momentum 0.9 kept by the merge: two identical steps move 1 + 0.9 times.
  tx = optimizers.make(config, 100, network='discriminator')
  params = {'w': jnp.zeros(())}
  state = tx.init(params)
  for _ in range(2):
    _, state, updates = _step(tx, params, state, {'w': jnp.ones(())})
  rate = optimizers.learning_rate(config, None, 1, 100, network='discriminator')
  np.testing.assert_allclose(updates['w'], -rate * 1.9, rtol=1e-6)
  optimizers.make(config, 100, network='other')  # sgd's momentum dropped.


def test_field_references_are_resolved():
  base = ml_collections.FieldReference(0.4)
  plain = dict(name='sgd', learning_rate=base,
               schedule=dict(type='step', boundaries_steps=[5],
                             factor=base * 0.5),
               networks=dict(critic=dict(learning_rate=base * 2)))
  for config in (plain, ml_collections.ConfigDict(plain)):
    lr = lambda step, network=None, config=config: float(
        optimizers.learning_rate(config, None, step, 10, network=network))
    assert (lr(0), lr(5), lr(5, 'critic')) == pytest.approx((0.4, 0.08, 0.16))
    optimizers.make(config, 10, network='critic')


@pytest.mark.parametrize('config, steps_per_epoch, message', [
    (dict(name='adamm', learning_rate=1.0), None, "did you mean adam"),
    (dict(name='chain', learning_rate=1.0), None, 'optax optimizers: .*sgd'),
    (dict(name='adam', learning_rate=1.0, b1=0.5), None,
     r"\['b1'\].*optimizer.kwargs"),
    (_config('cosinus'), None, 'unknown schedule type .*cosine'),
    (_config(dict(type='cosine', warmup_step=3)), None,
     r"no field\(s\) \['warmup_step'\].*warmup_steps"),
    (_config(dict(type='step', boundaries_epochs=[3])), None,
     'boundaries_epochs needs steps_per_epoch'),
    (_config(dict(type='cosine', warmup_steps=2, warmup_epochs=1)), 5,
     'both warmup_steps and warmup_epochs'),
    (_config(dict(type='plateau')), None, 'needs `metric`'),
    (_config(dict(type='cyclic')), None, 'needs step_size_steps'),
    (_config(dict(type='exponential', decay_rate=1.5)), None,
     r'decay_rate must be in \(0, 1\]'),
    (_config(None, frozen=('brnch/.*',)), None,
     "'brnch/.*' matches no parameter.*branch/conv/bias"),
])
def test_config_errors_are_helpful(config, steps_per_epoch, message):
  with pytest.raises(ValueError, match=message):
    optimizers.make(config, 10, steps_per_epoch).init(_params())
